"""The project's OCF agent (glance_ha/files/glance-api) against real glance, MariaDB and Keystone.

Everything is real: ocf-tester and xmllint from resource-agents, glance 33 under gunicorn and under
Debian's uwsgi (the OpenStack venv), Debian's glance 25 classic daemon (and under Debian's uwsgi),
MariaDB and Keystone from test/plugins/services.py. The agent runs straight from the checkout with OCF_ROOT=/usr/lib/ocf.

Every instance gets its own config dir, random loopback port and PID file under one module work dir
(/tmp/gocf-*, traversable so that the glance user can read its config). The PID file is always given
explicitly: the default ($HA_RSCTMP=/run/resource-agents) is outside the sandbox's overlays. So is
the log file (under the instance's dir, created by the agent for the glance user). glance-api.conf
holds no listen options: the agent gives bind_host, bind_port and workers to the server (to
glance 25's daemon in a second config file).
"""

import contextlib
import hashlib
import http.client
import json
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

try:
    from lab.services import free_port
except ImportError:  # run without pytest.ini's pythonpath
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from lab.services import free_port

REPO = Path(__file__).resolve().parents[2]
AGENT = REPO / "glance_ha" / "files" / "glance-api"
OS_VENV = Path(os.environ.get("GLANCE_HA_OS_VENV") or REPO / ".venv-os")
OCF_ROOT = "/usr/lib/ocf"
DTD_DIR = "/usr/share/resource-agents"
SYS_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEB_GLANCE_API = Path("/usr/bin/glance-api")
DEB_GLANCE_MANAGE = Path("/usr/bin/glance-manage")
DEB_UWSGI = Path("/usr/bin/uwsgi")

OCF_SUCCESS, OCF_ERR_GENERIC, OCF_ERR_UNIMPLEMENTED = 0, 1, 3
OCF_ERR_PERM, OCF_ERR_INSTALLED, OCF_ERR_CONFIGURED, OCF_NOT_RUNNING = 4, 5, 6, 7

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def reset_loaders_state():
    """This module uses no Salt loader: override test/functional/conftest.py's autouse fixture."""
    yield


def need(condition, reason):
    if not condition:
        pytest.skip(reason)


need_root = pytest.mark.skipif(os.geteuid() != 0, reason="the agent's tests need root")


# ------------------------------------------------------------------------------------------------
# running the agent

def run_agent(action, params, *, interval=None, timeout=30, env=None, path_prefix=None):
    """Run the agent like pacemaker-execd does: OCF_RESKEY_* environment, op timeout in ms."""
    full = agent_env(params, interval=interval, timeout=timeout, env=env, path_prefix=path_prefix)
    return subprocess.run([str(AGENT), action], env=full, capture_output=True, text=True,
                          timeout=timeout + 30, check=False)


def agent_env(params, *, interval=None, timeout=30, env=None, path_prefix=None):
    """The environment pacemaker-execd gives the agent for an operation on ``params``."""
    full = {"PATH": f"{path_prefix}:{SYS_PATH}" if path_prefix else SYS_PATH, "LANG": "C",
            "OCF_ROOT": OCF_ROOT, "OCF_RA_VERSION_MAJOR": "1", "OCF_RA_VERSION_MINOR": "0",
            "OCF_RESOURCE_INSTANCE": params.get("_name", "p_glance-api"),
            "OCF_RESOURCE_TYPE": "glance-api",
            "OCF_RESKEY_CRM_meta_timeout": str(timeout * 1000)}
    if interval is not None:
        full["OCF_RESKEY_CRM_meta_interval"] = str(interval * 1000)
    for key, value in params.items():
        if not key.startswith("_"):
            full[f"OCF_RESKEY_{key}"] = str(value)
    full.update(env or {})
    return full


def ocf_tester(name, params, timeout=240):
    cmd = ["ocf-tester", "-n", name]
    for key, value in params.items():
        if not key.startswith("_"):
            assert "'" not in str(value)       # ocf-tester evals the values in single quotes
            cmd += ["-o", f"{key}={value}"]
    cmd.append(str(AGENT))
    return subprocess.run(cmd, env={"PATH": SYS_PATH, "OCF_ROOT": OCF_ROOT, "LANG": "C"},
                          capture_output=True, text=True, timeout=timeout, check=False)


def read_pid(params):
    return int(Path(params["pid"]).read_text().split()[0])


def proc_stat(pid):
    """(state, sid, uid) of a process, or None when it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
        uid = os.stat(f"/proc/{pid}").st_uid
    except (OSError, ValueError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[3]), uid


def session_members(sid):
    """Live (non-zombie) processes whose session id is sid."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st and st[1] == sid and st[0] not in "ZX":
                out.append(int(entry))
    return out


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def wait_gone(sid, seconds):
    deadline = time.monotonic() + seconds
    while session_members(sid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return session_members(sid)


def http_get(url, token=None, timeout=20):
    req = urllib.request.Request(url, headers={"X-Auth-Token": token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def describe(result):
    """Agent output for assertion messages (the agent itself never prints a secret)."""
    return f"rc={result.returncode}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-3000:]}"


# ------------------------------------------------------------------------------------------------
# fixtures: work dir, databases, Keystone users, glance instances

@pytest.fixture(scope="module")
def workdir():
    need(os.geteuid() == 0, "the agent's tests need root")
    path = Path(tempfile.mkdtemp(prefix="gocf-", dir="/tmp"))
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def glance_gid():
    try:
        return pwd.getpwnam("glance").pw_gid
    except KeyError:
        pytest.skip("no glance user (Debian glance-common)")


@pytest.fixture(scope="module")
def secrets_for_glance():
    return {"db33": secrets.token_hex(12), "db25": secrets.token_hex(12),
            "service": secrets.token_hex(12),
            # parsed, JSON-escaped and sent by a shell script: quotes, backslash, $, blank
            "monitor": secrets.token_hex(8) + "-a\\b\"c d$e'f%s"}


@pytest.fixture(scope="module")
def keystone_users(keystone, secrets_for_glance):
    """glance's [keystone_authtoken] user, and a reader-only user for the agent's api monitor."""
    keystone.ensure_service_user("glance", secrets_for_glance["service"])
    keystone.ensure_service_user("ocf-monitor", secrets_for_glance["monitor"], project="service",
                                 roles=("reader",))
    return keystone


@pytest.fixture(scope="module")
def creds_file(workdir, keystone_users, secrets_for_glance):
    """The root-only credentials file of the api monitor (quoted value, comment, blank line)."""
    path = workdir / "ocf-credentials"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# api monitor of p_glance-api\n\n"
                "OS_USERNAME=ocf-monitor\n"
                f"OS_PASSWORD='{secrets_for_glance['monitor']}'\n"
                "OS_PROJECT_NAME=service\n"
                "OS_USER_DOMAIN_NAME=Default\n"
                "OS_PROJECT_DOMAIN_NAME=Default\n"
                f"OS_AUTH_URL={keystone_users.auth_url}\n")
    return path


def write_glance_conf(confdir, db_url, keystone, service_password, paste_ini, gid, default_backend="fs"):
    """glance-api.conf as notes/openstack-services.md "Key config": file store, notifications off."""
    confdir.mkdir(parents=True)
    run = confdir.parent / "run"
    for sub in ("images", "staging", "tasks", "lock"):
        (run / sub).mkdir(parents=True)
        os.chown(run / sub, 0, gid)
        os.chmod(run / sub, 0o770)
    shutil.copy(paste_ini, confdir / "glance-api-paste.ini")
    conf = confdir / "glance-api.conf"
    conf.write_text(f"""[DEFAULT]
enabled_backends = fs:file
[database]
connection = {db_url}
[glance_store]
default_backend = {default_backend}
[fs]
filesystem_store_datadir = {run}/images/
[os_glance_staging_store]
filesystem_store_datadir = {run}/staging/
[os_glance_tasks_store]
filesystem_store_datadir = {run}/tasks/
[oslo_concurrency]
lock_path = {run}/lock
[oslo_messaging_notifications]
driver = noop
[paste_deploy]
config_file = {confdir}/glance-api-paste.ini
flavor = keystone
[keystone_authtoken]
www_authenticate_uri = {keystone.url}
auth_url = {keystone.url}
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = glance
password = {service_password}
""")
    # as the formula installs it: 0640 root:glance in a 0750 root:glance dir
    for path in confdir.iterdir():
        os.chown(path, 0, gid)
        os.chmod(path, 0o640)
    os.chown(confdir, 0, gid)
    os.chmod(confdir, 0o750)
    os.chmod(confdir.parent, 0o711)
    return conf


KINDS = {
    # kind: (glance-manage, paste ini, what is needed)
    "g33": (OS_VENV / "bin" / "glance-manage", OS_VENV / "etc" / "glance" / "glance-api-paste.ini"),
    "g25": (DEB_GLANCE_MANAGE, Path("/etc/glance/glance-api-paste.ini")),
}


def kind_missing(kind):
    manage, paste = KINDS[kind]
    if kind == "g33" and not (OS_VENV / "bin" / "gunicorn").exists():
        return f"{OS_VENV}/bin/gunicorn missing"
    if kind == "g25" and not DEB_GLANCE_API.exists():
        return "Debian glance-api (glance 25) not installed"
    if not manage.exists() or not paste.exists():
        return f"{manage} or {paste} missing"
    return None


@pytest.fixture(scope="module")
def databases(mariadb, secrets_for_glance, keystone_users, workdir, glance_gid):
    """One database per glance version, schema synced (both db_syncs run concurrently)."""
    urls, procs = {}, {}
    with contextlib.ExitStack() as stack:
        for kind in KINDS:
            if kind_missing(kind):
                continue
            name = f"glance{kind[1:]}"
            pw = secrets_for_glance[f"db{kind[1:]}"]
            mariadb.create_database(name, name, pw)
            urls[kind] = f"mysql+pymysql://{name}:{pw}@{mariadb.host}:{mariadb.port}/{name}"
            conf = write_glance_conf(workdir / f"dbsync-{kind}" / "etc", urls[kind], keystone_users,
                                     secrets_for_glance["service"], KINDS[kind][1], glance_gid)
            log = stack.enter_context(open(workdir / f"dbsync-{kind}.log", "w"))
            procs[kind] = subprocess.Popen([str(KINDS[kind][0]), "--config-file", str(conf), "db_sync"],
                                           stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        for kind, proc in procs.items():
            assert proc.wait(timeout=300) == 0, f"{kind} db_sync failed: see {workdir}/dbsync-{kind}.log"
    return urls


@pytest.fixture(scope="module")
def gunicorn_runner(workdir):
    """(server_binary, user) for the gunicorn instances: the venv's gunicorn as the glance user, as
    in production. Where glance may not execute the venv's interpreter (here it lives under /root,
    mode 0700), Debian's python3 of the same X.Y runs the venv's packages through a two-line wrapper,
    still as glance; failing that, root."""
    gunicorn = OS_VENV / "bin" / "gunicorn"
    as_glance = ["setpriv", "--reuid=glance", "--regid=glance", "--init-groups", "env"]
    # the same chain as the agent: setpriv -> env -> the gunicorn script (-> its interpreter)
    if subprocess.run([*as_glance, str(gunicorn), "--version"], capture_output=True, check=False,
                      cwd="/").returncode == 0:
        return str(gunicorn), "glance"
    query = "import sys, sysconfig; print(sys.version_info[:2]); print(sysconfig.get_paths()['purelib'])"
    venv_version, purelib = subprocess.run([str(OS_VENV / "bin" / "python"), "-c", query], capture_output=True,
                                           text=True, check=True).stdout.splitlines()
    deb_version = subprocess.run(["/usr/bin/python3", "-c", query], capture_output=True, text=True,
                                 check=False).stdout.splitlines()[:1]
    wrapper = workdir / "bin" / "gunicorn"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={purelib} exec /usr/bin/python3 -m gunicorn "$@"\n')
    os.chmod(wrapper.parent, 0o755)
    os.chmod(wrapper, 0o755)
    if deb_version == [venv_version] and subprocess.run([*as_glance, str(wrapper), "--version"],
                                                        capture_output=True, check=False, cwd="/").returncode == 0:
        return str(wrapper), "glance"
    return str(gunicorn), "root"


class Instances:
    """Creates glance instances (config dir, port, PID file) and stops them all at module end."""

    def __init__(self, workdir, databases, keystone, secrets_for_glance, gid, gunicorn_runner, creds):
        self.workdir, self.databases, self.keystone = workdir, databases, keystone
        self.service_password = secrets_for_glance["service"]
        self.gid, self.gunicorn_runner, self.creds = gid, gunicorn_runner, creds
        self.made = []

    def new(self, name, kind="g33", server=None, default_backend="fs", **extra):
        """OCF parameters of a new instance. kind g33 = glance 33 under gunicorn (server=uwsgi: under
        Debian's uwsgi with the venv as its Python home); g25 = Debian's glance 25 classic daemon
        (server left to its default); g25 with server=uwsgi = glance 25 under Debian's uwsgi."""
        reason = kind_missing(kind)
        need(reason is None and kind in self.databases, reason or f"no {kind} database")
        port = free_port()
        base = self.workdir / name
        conf = write_glance_conf(base / "etc", self.databases[kind], self.keystone, self.service_password,
                                 KINDS[kind][1], self.gid, default_backend)
        params = {"_name": name, "_port": port, "config": str(conf), "pid": str(base / "run" / "glance-api.pid"),
                  "bind_host": "127.0.0.1", "bind_port": port, "workers": 1,
                  "logfile": str(base / "log" / "glance-api-server.log")}
        if server == "uwsgi":
            need(DEB_UWSGI.exists() and Path("/usr/lib/uwsgi/plugins/python3_plugin.so").exists(),
                 "Debian uwsgi-core + uwsgi-plugin-python3 not installed")
        if kind == "g33" and server == "uwsgi":
            params.update(server="uwsgi", server_binary=str(DEB_UWSGI),
                          server_options=f"--plugin python3 --virtualenv {OS_VENV}")
        elif kind == "g33":
            server_binary, user = self.gunicorn_runner
            params.update(server="gunicorn", server_binary=server_binary, user=user)
        elif server == "uwsgi":
            # glance 25 has no glance.wsgi.api module yet: a two-line WSGI module
            pydir = base / "py"
            pydir.mkdir()
            (pydir / "glance25_wsgi.py").write_text("from glance.common.wsgi_app import init_app\n"
                                                    "application = init_app()\n")
            os.chmod(pydir, 0o755)
            os.chmod(pydir / "glance25_wsgi.py", 0o644)
            params.update(server="uwsgi", server_binary=str(DEB_UWSGI), wsgi_app="glance25_wsgi:application",
                          server_options=f"--plugin python3 --pythonpath {pydir}")
        else:
            params.update(binary=str(DEB_GLANCE_API))
        params.update(extra)
        self.made.append(params)
        return params

    def cleanup(self):
        for params in self.made:
            run_agent("stop", params, timeout=30)
            # belt and braces: nothing of ours may outlive the module
            try:
                pid = read_pid(params)
            except (OSError, ValueError, IndexError):
                continue
            for member in session_members(pid):
                if "glance" in cmdline(member) or "gunicorn" in cmdline(member) or "uwsgi" in cmdline(member):
                    os.kill(member, signal.SIGKILL)


@pytest.fixture(scope="module")
def instances(workdir, databases, keystone_users, secrets_for_glance, glance_gid, gunicorn_runner, creds_file):
    made = Instances(workdir, databases, keystone_users, secrets_for_glance, glance_gid, gunicorn_runner,
                     creds_file)
    yield made
    made.cleanup()


@pytest.fixture(scope="module")
def g33_up(instances):
    """A glance 33 gunicorn instance started by the agent with the api monitor, shared by several tests."""
    params = instances.new("g33-main", monitor_level="api", credentials_file=str(instances.creds))
    result = run_agent("start", params, timeout=60)
    assert result.returncode == OCF_SUCCESS, describe(result)
    yield params
    result = run_agent("stop", params)
    assert result.returncode == OCF_SUCCESS, describe(result)


# ------------------------------------------------------------------------------------------------
# meta-data and usage (no services)

def test_meta_data_is_valid_ra_api_1_xml():
    result = subprocess.run([str(AGENT), "meta-data"], env={"PATH": SYS_PATH, "OCF_ROOT": OCF_ROOT},
                            capture_output=True, text=True, check=False)
    assert result.returncode == OCF_SUCCESS
    # exactly what ocf-tester runs
    lint = subprocess.run(["xmllint", "--noout", "--valid", "-"], input=result.stdout, cwd=DTD_DIR,
                          capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stderr
    import xml.etree.ElementTree as ET
    root = ET.fromstring(result.stdout)
    params = {p.get("name"): p for p in root.iter("parameter")}
    upstream = {"binary", "config", "user", "pid", "os_username", "os_password", "os_tenant_name",
                "os_auth_url", "client_binary", "additional_parameters"}
    ours = {"os_project_name", "os_user_domain_name", "os_project_domain_name", "monitor_level",
            "credentials_file", "server", "server_binary", "wsgi_app", "server_options"}
    assert upstream | ours <= set(params)
    assert params["monitor_level"].find("content").get("default") == "http"
    assert params["server"].find("content").get("default") == ""       # follows the installed glance
    assert {"bind_host", "bind_port", "workers", "logfile"} <= set(params)
    assert params["logfile"].find("content").get("default") == "/var/log/glance/glance-api-server.log"
    assert params["credentials_file"].find("content").get("default") == "/etc/glance/ocf-credentials"
    assert params["wsgi_app"].find("content").get("default") == "glance.wsgi.api:application"
    assert "Discouraged" in params["os_password"].find("longdesc").text
    actions = {a.get("name") for a in root.iter("action")}
    assert {"start", "stop", "monitor", "status", "validate-all", "meta-data"} <= actions
    # OCF 1.1: Pacemaker calls reload-agent, not a restart, when only reloadable parameters change
    assert root.find("version").text == "1.1" and {"reload", "reload-agent"} <= actions
    reloadable = {name for name, p in params.items() if p.get("reloadable") == "1"}
    assert {"workers", "monitor_level", "credentials_file", "os_password"} <= reloadable
    assert not reloadable & {"bind_host", "bind_port", "config", "server", "user", "pid", "logfile"}


def test_usage_and_unknown_action():
    env = {"PATH": SYS_PATH, "OCF_ROOT": OCF_ROOT, "OCF_RESOURCE_INSTANCE": "x"}
    usage = subprocess.run([str(AGENT), "usage"], env=env, capture_output=True, text=True, check=False)
    assert usage.returncode == OCF_SUCCESS and "validate-all" in usage.stdout
    for action in ("promote", "bogus"):
        other = subprocess.run([str(AGENT), action], env=env, capture_output=True, text=True, check=False)
        assert other.returncode == OCF_ERR_UNIMPLEMENTED


# ------------------------------------------------------------------------------------------------
# ocf-tester

@pytest.mark.parametrize("level", ["http", "healthcheck", "api"])
def test_ocf_tester_gunicorn_glance33(instances, level):
    params = instances.new(f"t33-{level}")
    if level == "api":
        params.update(monitor_level="api", credentials_file=str(instances.creds))
    result = ocf_tester(params["_name"], params)
    assert result.returncode == 0 and "passed all tests" in result.stdout, result.stdout + result.stderr
    assert not Path(params["pid"]).exists()


def test_ocf_tester_classic_glance25(instances):
    params = instances.new("t25", kind="g25")
    result = ocf_tester(params["_name"], params)
    assert result.returncode == 0 and "passed all tests" in result.stdout, result.stdout + result.stderr


# ------------------------------------------------------------------------------------------------
# WSGI mode: a real image API behind a real Keystone token

def test_gunicorn_instance_serves_images_with_keystone_token(g33_up, keystone_users):
    params = g33_up
    pid = read_pid(params)
    assert "gunicorn" in cmdline(pid) and "glance.wsgi.api:application" in cmdline(pid)
    _state, sid, uid = proc_stat(pid)
    assert sid == pid and uid == pwd.getpwnam(params["user"]).pw_uid
    assert len(session_members(pid)) >= 2            # master + worker
    base = f"http://127.0.0.1:{params['_port']}"
    assert http_get(f"{base}/v2/images") == 401   # authtoken is in the pipeline
    assert http_get(f"{base}/v2/images", token=keystone_users.token()) == 200
    for action, rc in (("monitor", OCF_SUCCESS), ("status", OCF_SUCCESS), ("start", OCF_SUCCESS)):
        result = run_agent(action, params, interval=30)
        assert result.returncode == rc, describe(result)
    assert read_pid(params) == pid                   # a start of a running instance starts nothing


def test_api_monitor_keeps_secrets_off_command_lines_and_environments(g33_up, workdir, secrets_for_glance,
                                                                       keystone_users):
    """curl is replaced on PATH by a wrapper that records its argv and environment, and /proc is
    sampled during the monitors: the password must never appear, while the token request and the
    image list demonstrably went through curl. Both sources: credentials file and os_password.
    The sampler is shown in step: the wrapper lingers 0.2 s before exec'ing curl (same argv), and a
    sampled command line with the token URL must be among those seen (checked first, then that no
    sampled command line holds the password, before curl's own log)."""
    password = secrets_for_glance["monitor"]
    wrapdir = workdir / "wrap"
    wrapdir.mkdir()
    log = wrapdir / "curl.log"
    (wrapdir / "curl").write_text(f"""#!/bin/sh
{{ printf 'ARGV'; for a in "$@"; do printf ' [%s]' "$a"; done; printf '\\n'
   printf 'ENV '; tr '\\000' ' ' < /proc/$$/environ; printf '\\n'; }} >> {log}
sleep 0.2
exec /usr/bin/curl "$@"
""")
    os.chmod(wrapdir / "curl", 0o755)

    seen, stop = set(), threading.Event()

    def sample():
        while not stop.is_set():
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    seen.add(cmdline(int(entry)))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        via_file = run_agent("monitor", g33_up, interval=30, path_prefix=wrapdir)
        via_param = dict(g33_up, credentials_file=str(workdir / "absent"), os_username="ocf-monitor",
                         os_password=password, os_tenant_name="service", os_auth_url=keystone_users.auth_url)
        via_params = run_agent("monitor", via_param, interval=30, path_prefix=wrapdir)
    finally:
        stop.set()
        sampler.join()
    assert via_file.returncode == OCF_SUCCESS, describe(via_file)
    assert via_params.returncode == OCF_SUCCESS, describe(via_params)
    assert sum("/auth/tokens" in c for c in seen) >= 1, "the sampler never saw a curl of the monitor"
    assert not any(password in c for c in seen), "password seen in a process argv"
    recorded = log.read_text()
    assert recorded.count("/auth/tokens]") == 2 and recorded.count("/v2/images?limit=1]") == 2
    assert "[--data-binary] [@-]" in recorded and "[-H] [@-]" in recorded
    assert password not in recorded, "the monitor password reached curl's argv or environment"
    assert "OCF_RESKEY_os_password" not in recorded
    assert password not in via_file.stdout + via_file.stderr + via_params.stdout + via_params.stderr


def test_trace_does_not_record_the_password(g33_up, workdir, secrets_for_glance):
    trace = workdir / "trace" / "monitor.trace"
    result = run_agent("monitor", g33_up, interval=30,
                       env={"OCF_TRACE_RA": "1", "OCF_TRACE_FILE": str(trace)})
    assert result.returncode == OCF_SUCCESS, describe(result)
    text = trace.read_text()
    assert "load_credentials" in text                 # the trace really covers the api monitor
    assert secrets_for_glance["monitor"] not in text


def test_api_monitor_keystone_refusal_fails_outage_degrades(g33_up, workdir, creds_file, keystone_users):
    lines = [line for line in creds_file.read_text().splitlines()
             if not line.startswith(("OS_PASSWORD", "OS_AUTH_URL"))]
    auth_url = keystone_users.auth_url

    def creds(name, password, url):
        path = workdir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join([*lines, f"OS_PASSWORD={password}", f"OS_AUTH_URL={url}"]) + "\n")
        return str(path)

    refused = run_agent("monitor", dict(g33_up, credentials_file=creds("c-bad", "wrong", auth_url)), interval=30)
    assert refused.returncode == OCF_ERR_GENERIC, describe(refused)
    assert "refused the monitor credentials" in refused.stderr
    closed = f"http://127.0.0.1:{free_port()}/v3"          # nothing listens there
    outage = run_agent("monitor", dict(g33_up, credentials_file=creds("c-down", "x", closed)), interval=30)
    assert outage.returncode == OCF_SUCCESS, describe(outage)
    assert "unreachable" in outage.stderr


# ------------------------------------------------------------------------------------------------
# failures and exit codes

@pytest.mark.parametrize("kind", ["g33", "g25"])
def test_kill_9_then_monitor_not_running_and_recovery(instances, kind):
    params = instances.new(f"k{kind}", kind=kind)
    result = run_agent("start", params, timeout=60)
    assert result.returncode == OCF_SUCCESS, describe(result)
    pid = read_pid(params)
    if kind == "g25":   # the classic daemon runs as the glance user, through setpriv
        assert "glance-api" in cmdline(pid) and proc_stat(pid)[2] == pwd.getpwnam("glance").pw_uid
        # server left unset: glance 25 still has its standalone server; the listen parameters
        # reach it in a second config file
        listen = Path(params["pid"]).with_name("glance-api.listen.conf")
        assert f"--config-file {listen}" in cmdline(pid)
        assert listen.read_text() == f"[DEFAULT]\nbind_host = 127.0.0.1\nbind_port = {params['_port']}\nworkers = 1\n"
        assert "Umask:\t0027" in Path(f"/proc/{pid}/status").read_text()
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while proc_stat(pid) and proc_stat(pid)[0] not in "ZX" and time.monotonic() < deadline:
        time.sleep(0.05)
    for interval in (30, 0):        # recurring monitor and probe
        result = run_agent("monitor", params, interval=interval)
        assert result.returncode == OCF_NOT_RUNNING, describe(result)
    result = run_agent("stop", params)                 # also removes orphaned workers
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert session_members(pid) == []
    assert not Path(params["pid"]).exists()
    result = run_agent("start", params, timeout=60)    # the port is free again
    assert result.returncode == OCF_SUCCESS, describe(result)
    new_pid = read_pid(params)
    assert new_pid != pid
    result = run_agent("stop", params)
    assert result.returncode == OCF_SUCCESS and session_members(new_pid) == [], describe(result)
    result = run_agent("monitor", params, interval=30)
    assert result.returncode == OCF_NOT_RUNNING, describe(result)


def test_stop_escalates_to_kill_within_the_timeout(instances):
    """A master that cannot act on TERM (SIGSTOPped: an otherwise impossible hang, injected on
    purpose) is KILLed before the stop timeout, workers included."""
    params = instances.new("stuck")
    result = run_agent("start", params, timeout=60)
    assert result.returncode == OCF_SUCCESS, describe(result)
    pid = read_pid(params)
    members = session_members(pid)
    for member in members:
        os.kill(member, signal.SIGSTOP)
    result = run_agent("stop", params, timeout=6)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert "did not stop after TERM; sending KILL" in result.stderr
    assert session_members(pid) == []


def test_uwsgi_mode_glance25(instances):
    params = instances.new("uw25", kind="g25", server="uwsgi", monitor_level="api",
                           credentials_file=str(instances.creds))
    result = run_agent("start", params, timeout=60)
    assert result.returncode == OCF_SUCCESS, describe(result)
    pid = read_pid(params)
    assert "uwsgi" in cmdline(pid) and proc_stat(pid)[2] == pwd.getpwnam("glance").pw_uid
    assert run_agent("monitor", params, interval=30).returncode == OCF_SUCCESS
    result = run_agent("stop", params)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert session_members(pid) == []


# ------------------------------------------------------------------------------------------------
# glance's output: never discarded

START_LINE = "glance-api resource agent: main PID"


def test_a_glance_error_is_found_in_the_logfile(instances):
    """A deliberate glance error (an unknown default store: glance refuses to load) fails the start,
    and what glance wrote is in logfile, after the line of this very start."""
    params = instances.new("badstore", default_backend="no-such-store")
    log = Path(params["logfile"])
    assert not log.parent.exists()                      # the agent creates it for the user
    result = run_agent("start", params, timeout=60)
    assert result.returncode == OCF_ERR_GENERIC, describe(result)
    assert f"see {log}" in result.stderr
    text = log.read_text()
    starts = [line for line in text.splitlines() if START_LINE in line]
    assert len(starts) == 1 and "glance.wsgi.api:application" in starts[0]
    assert "Store for identifier no-such-store not found" in text[text.index(starts[0]):]
    owner = pwd.getpwnam(params["user"]).pw_uid
    assert os.stat(log).st_uid == owner and stat.S_IMODE(os.stat(log).st_mode) == 0o640
    assert os.stat(log.parent).st_uid == owner
    # a second start appends: both runs are there, the second after the first
    run_agent("start", params, timeout=60)
    assert log.read_text().startswith(text) and log.read_text().count(START_LINE) == 2


# ------------------------------------------------------------------------------------------------
# a chunked upload as Nova sends snapshots, through each WSGI server

CHUNK = 4 * 1024 * 1024           # above uwsgi's default chunked-input-limit (1 MiB)
UPLOAD = 256 * 1024 * 1024


@pytest.mark.parametrize("server", ["gunicorn", "uwsgi"])
def test_chunked_upload_of_256_mib(instances, keystone_users, server):
    """256 MiB with Transfer-Encoding: chunked in 4 MiB chunks, generated while sent (nothing on
    disk but glance's own copy), downloaded back with the same sha256."""
    params = instances.new(f"chunk-{server}", kind="g33", server=server, workers=2)
    result = run_agent("start", params, timeout=90)
    assert result.returncode == OCF_SUCCESS, describe(result)
    pid = read_pid(params)
    text = Path(params["logfile"]).read_text()
    assert f"{START_LINE} {pid}:" in text, text[-2000:]
    headers = {"X-Auth-Token": keystone_users.token()}
    conn = http.client.HTTPConnection("127.0.0.1", params["_port"], timeout=300)

    def call(method, path, body=None, extra=None):
        conn.request(method, path, body=body, headers={**headers, **(extra or {})})
        resp = conn.getresponse()
        return resp.status, resp.read()

    status, body = call("POST", "/v2/images", json.dumps({"name": f"chunked-{server}", "disk_format": "raw",
                                                            "container_format": "bare"}),
                        {"Content-Type": "application/json"})
    assert status == 201, body
    image = json.loads(body)["id"]
    sent = hashlib.sha256()
    seed = os.urandom(CHUNK)

    def chunks():
        for i in range(UPLOAD // CHUNK):
            data = i.to_bytes(8, "big") + seed[8:]
            sent.update(data)
            yield data

    try:
        status, body = call("PUT", f"/v2/images/{image}/file", chunks(),
                            {"Content-Type": "application/octet-stream"})
        assert status == 204, body
        status, body = call("GET", f"/v2/images/{image}")
        assert status == 200 and json.loads(body)["status"] == "active" and json.loads(body)["size"] == UPLOAD
        conn.request("GET", f"/v2/images/{image}/file", headers=headers)
        resp = conn.getresponse()
        assert resp.status == 200
        got, size = hashlib.sha256(), 0
        while data := resp.read(1024 * 1024):
            got.update(data)
            size += len(data)
        assert size == UPLOAD and got.hexdigest() == sent.hexdigest()
    finally:
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", params["_port"], timeout=60)
        call("DELETE", f"/v2/images/{image}")
        conn.close()
        result = run_agent("stop", params)
    assert result.returncode == OCF_SUCCESS, describe(result)


def test_validate_all_exit_codes(instances, workdir, creds_file):
    good = instances.new("val")
    assert run_agent("validate-all", good).returncode == OCF_SUCCESS
    (workdir / "bad").mkdir()
    other_name = workdir / "bad" / "api.conf"
    shutil.copy(good["config"], other_name)
    glance33_api = str(OS_VENV / "bin" / "glance-api")
    cases = {
        "missing server binary": ({"server_binary": "/nonexistent/gunicorn"}, OCF_ERR_INSTALLED),
        "missing daemon binary": ({"server": "daemon", "binary": "/nonexistent/glance-api"}, OCF_ERR_INSTALLED),
        "missing config": ({"config": str(workdir / "nowhere" / "glance-api.conf")}, OCF_ERR_INSTALLED),
        "bad bind_port": ({"bind_port": "not-a-port"}, OCF_ERR_CONFIGURED),
        "bad workers": ({"workers": "0"}, OCF_ERR_CONFIGURED),
        "bad bind_host": ({"bind_host": "10.0.0.1 -x"}, OCF_ERR_CONFIGURED),
        "relative logfile": ({"logfile": "glance.log"}, OCF_ERR_CONFIGURED),
        "daemon on a glance without a standalone server": ({"server": "daemon", "binary": glance33_api},
                                                           OCF_ERR_CONFIGURED),
        "WSGI config not named glance-api.conf": ({"config": str(other_name)}, OCF_ERR_CONFIGURED),
        "unknown user": ({"user": "no-such-user-x"}, OCF_ERR_INSTALLED),
        "bad monitor_level": ({"monitor_level": "deep"}, OCF_ERR_CONFIGURED),
        "bad server": ({"server": "apache"}, OCF_ERR_CONFIGURED),
        "relative pid": ({"pid": "glance.pid"}, OCF_ERR_CONFIGURED),
        # the credentials file is this node's (the formula renders it on every node): its absence
        # is a node-local installation problem, not a bad parameter
        "api, credentials file missing": ({"monitor_level": "api", "credentials_file": str(workdir / "absent")},
                                          OCF_ERR_INSTALLED),
        "api without any credentials": ({"monitor_level": "api", "credentials_file": ""}, OCF_ERR_CONFIGURED),
        "Keystone v2.0 URL": ({"monitor_level": "api", "credentials_file": str(workdir / "absent"),
                                   "os_username": "u", "os_password": "p", "os_tenant_name": "t",
                                   "os_auth_url": "http://127.0.0.1:5000/v2.0/"}, OCF_ERR_CONFIGURED),
    }
    for what, (override, rc) in cases.items():
        result = run_agent("validate-all", dict(good, **override))
        assert result.returncode == rc, f"{what}: {describe(result)}"
        assert "ocf-exit-reason:" in result.stderr, what
    result = run_agent("validate-all", dict(good, server="daemon", binary=glance33_api))
    assert "glance 33" in result.stderr and "Standalone glance-api is no longer supported" in result.stderr
    # an unset server follows the installed glance: glance 33 -> the WSGI server (gunicorn)
    result = run_agent("validate-all", dict(good, server="", binary=glance33_api))
    assert result.returncode == OCF_SUCCESS, describe(result)
    # the same errors stop a start before anything runs
    result = run_agent("start", dict(good, bind_port="not-a-port"))
    assert result.returncode == OCF_ERR_CONFIGURED and not Path(good["pid"]).exists()


def test_probe_with_missing_config_is_not_running(instances, workdir):
    params = instances.new("probe")
    params["config"] = str(workdir / "not-mounted" / "glance-api.conf")   # shared storage not mounted
    for interval in (0, 30):
        result = run_agent("monitor", params, interval=interval)
        assert result.returncode == OCF_NOT_RUNNING, describe(result)
    assert run_agent("status", params).returncode == OCF_NOT_RUNNING
    assert run_agent("stop", params).returncode == OCF_SUCCESS          # stop needs only the PID file
    assert run_agent("start", params).returncode == OCF_ERR_INSTALLED


def test_insecure_credentials_file_is_refused(instances, workdir, creds_file):
    params = instances.new("perm", monitor_level="api")
    insecure = workdir / "creds-insecure"
    shutil.copy(creds_file, insecure)
    for mode, owner in ((0o644, 0), (0o640, 0), (0o604, 0), (0o600, pwd.getpwnam("nobody").pw_uid)):
        os.chown(insecure, owner, 0)
        os.chmod(insecure, mode)
        p = dict(params, credentials_file=str(insecure))
        result = run_agent("validate-all", p)
        assert result.returncode == OCF_ERR_PERM, f"mode {mode:o} owner {owner}: {describe(result)}"
        assert "refusing it" in result.stderr
        result = run_agent("start", p)
        assert result.returncode == OCF_ERR_PERM, describe(result)
        assert not Path(params["pid"]).exists()
    os.chown(insecure, 0, 0)
    os.chmod(insecure, 0o400)
    assert stat.S_IMODE(os.stat(insecure).st_mode) == 0o400
    result = run_agent("validate-all", dict(params, credentials_file=str(insecure)))
    assert result.returncode == OCF_SUCCESS, describe(result)


# ------------------------------------------------------------------------------------------------
# reload and reload-agent: the listening socket stays, no request is lost, the digest follows

def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def loaded_config(params):
    """{path: sha256} the running instance recorded (the agent's loaded-config action)."""
    result = run_agent("loaded-config", params)
    assert result.returncode == OCF_SUCCESS, describe(result)
    return {line.split(None, 1)[1]: line.split(None, 1)[0] for line in result.stdout.splitlines() if line.strip()}


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            rest = fields[fields.rindex(")") + 2:].split()
            if int(rest[1]) == pid and rest[0] not in "ZX":
                out.append(int(entry))
    return sorted(out)


def listen_inode(port):
    """Inode of the TCP socket listening on 127.0.0.1:port (/proc/net/tcp), or None."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == "0A":
            return fields[9]
    return None


def holds(pid, inode):
    """Whether process pid has the socket inode open."""
    return any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")
               if os.path.islink(f"/proc/{pid}/fd/{fd}"))


class Poller:
    """GET / every 50 ms, each in its own thread, 2 s timeout (the lab poller's): failures counted."""

    def __init__(self, port):
        self.url, self.results, self.stop, self.threads = f"http://127.0.0.1:{port}/", [], threading.Event(), []

    def _one(self):
        try:
            status = http_get(self.url, timeout=2)
        except OSError as exc:
            status = repr(exc)
        self.results.append(status)

    def _loop(self):
        while not self.stop.is_set():
            th = threading.Thread(target=self._one, daemon=True)
            th.start()
            self.threads.append(th)
            time.sleep(0.05)

    def __enter__(self):
        self.main = threading.Thread(target=self._loop, daemon=True)
        self.main.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.main.join()
        for th in self.threads:
            th.join(10)

    @property
    def failed(self):
        return [r for r in self.results if r != 300]


def change_config(params, line):
    conf = Path(params["config"])
    text = conf.read_text()
    conf.write_text(text.replace("[DEFAULT]\n", f"[DEFAULT]\n{line}\n", 1))


@pytest.mark.parametrize("server", ["gunicorn", "uwsgi"])
def test_reload_keeps_the_socket_and_records_what_was_loaded(instances, server):
    params = instances.new(f"reload-{server}", server=server)
    result = run_agent("start", params, timeout=90)
    assert result.returncode == OCF_SUCCESS, describe(result)
    main = read_pid(params)
    sock = listen_inode(params["_port"])
    assert sock and holds(main, sock)
    loaded = loaded_config(params)
    assert loaded[params["config"]] == sha256_of(params["config"])
    paste = str(Path(params["config"]).with_name("glance-api-paste.ini"))
    assert loaded[paste] == sha256_of(paste)
    old_workers = children(main)
    change_config(params, "debug = true")
    assert loaded_config(params)[params["config"]] != sha256_of(params["config"])   # the file moved on
    with Poller(params["_port"]) as poll:
        time.sleep(0.5)
        result = run_agent("reload", params, timeout=90)
        time.sleep(0.5)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert read_pid(params) == main and listen_inode(params["_port"]) == sock and holds(main, sock)
    assert not set(children(main)) & set(old_workers)              # every worker is new
    assert loaded_config(params)[params["config"]] == sha256_of(params["config"])
    if server == "gunicorn":    # new workers are ready before the old ones retire
        assert len(poll.results) > 10 and poll.failed == [], poll.failed
    else:                       # one worker replaced at a time; the socket queues, never refuses
        assert not [r for r in poll.failed if "refused" in str(r).lower()], poll.failed
    # workers is reloadable: reload-agent applies it without a restart
    with Poller(params["_port"]) as poll:
        result = run_agent("reload-agent", dict(params, workers=2), timeout=90)
        time.sleep(0.5)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert read_pid(params) == main and listen_inode(params["_port"]) == sock and holds(main, sock)
    deadline = time.monotonic() + 30
    while len(children(main)) != 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(children(main)) == 2
    if server == "gunicorn":
        assert poll.failed == [], poll.failed
    else:
        assert not [r for r in poll.failed if "refused" in str(r).lower()], poll.failed
    assert run_agent("monitor", dict(params, workers=2), interval=30).returncode == OCF_SUCCESS
    # only the monitor's parameters changed: nothing restarted, nothing replaced
    workers = children(main)
    result = run_agent("reload-agent", dict(params, workers=2, monitor_level="process"), timeout=30)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert children(main) == workers and read_pid(params) == main
    result = run_agent("stop", params)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert run_agent("loaded-config", params).returncode == OCF_NOT_RUNNING


def test_healthcheck_monitor_counts_a_drain_by_file_as_healthy(instances, workdir):
    """monitor_level=healthcheck asks glance's own GET /healthcheck (no token). A file named by the
    paste file's disable_by_file_path (a drain, on purpose) makes glance answer 503 DISABLED BY FILE:
    still healthy for the monitor. A /healthcheck that is missing or fails is a failure."""
    params = instances.new("hc33", monitor_level="healthcheck")
    paste = Path(params["config"]).with_name("glance-api-paste.ini")
    drain = workdir / "hc33" / "healthcheck_disable"
    text = paste.read_text()
    assert "disable_by_file_path = /etc/glance/healthcheck_disable" in text  # glance 33's own paste file
    paste.write_text(text.replace("/etc/glance/healthcheck_disable", str(drain)))
    result = run_agent("start", params, timeout=90)
    assert result.returncode == OCF_SUCCESS, describe(result)
    url = f"http://127.0.0.1:{params['_port']}/healthcheck"
    assert http_get(url) == 200
    assert run_agent("monitor", params, interval=30).returncode == OCF_SUCCESS
    drain.write_text("")
    assert http_get(url) == 503
    result = run_agent("monitor", params, interval=30)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert "disabled by file (drained)" in result.stderr + result.stdout
    drain.unlink()
    assert http_get(url) == 200
    # a glance whose paste file maps no /healthcheck (the path falls to the API, which answers its
    # versions document, 300): the monitor fails, the http level does not
    paste.write_text("".join(line for line in paste.read_text().splitlines(keepends=True)
                             if not line.startswith("/healthcheck")))
    assert run_agent("reload", params, timeout=90).returncode == OCF_SUCCESS
    assert http_get(url) == 300
    result = run_agent("monitor", params, interval=30)
    assert result.returncode == OCF_ERR_GENERIC, describe(result)
    assert run_agent("monitor", dict(params, monitor_level="http"), interval=30).returncode == OCF_SUCCESS
    assert run_agent("stop", params).returncode == OCF_SUCCESS


def test_reload_classic_daemon_with_sighup(instances):
    params = instances.new("reload-g25", kind="g25", workers=2)
    result = run_agent("start", params, timeout=90)
    assert result.returncode == OCF_SUCCESS, describe(result)
    main = read_pid(params)
    old_workers = children(main)
    change_config(params, "debug = true")
    result = run_agent("reload", params, timeout=90)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert read_pid(params) == main and not set(children(main)) & set(old_workers)
    assert loaded_config(params)[params["config"]] == sha256_of(params["config"])
    assert run_agent("stop", params).returncode == OCF_SUCCESS


def test_reload_of_a_stopped_instance_is_not_running(instances):
    params = instances.new("reload-stopped")
    assert run_agent("reload", params).returncode == OCF_NOT_RUNNING
    assert run_agent("reload-agent", params).returncode == OCF_SUCCESS   # applies at the next start


def test_exit_codes_by_scope_for_a_running_instance(instances, workdir, creds_file):
    """Node-local problems of a running instance are never OCF_ERR_CONFIGURED (fatal cluster-wide):
    without its credentials file the api monitor runs the http check and says why."""
    creds = workdir / "creds-removable"
    shutil.copy(creds_file, creds)
    os.chmod(creds, 0o600)
    params = instances.new("scope", monitor_level="api", credentials_file=str(creds))
    result = run_agent("start", params, timeout=60)
    assert result.returncode == OCF_SUCCESS, describe(result)
    creds.unlink()
    result = run_agent("monitor", params, interval=30)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert "api check skipped" in result.stderr
    assert run_agent("validate-all", params).returncode == OCF_ERR_INSTALLED
    # a bad parameter on a running instance: the monitor fails softly, never with 6
    result = run_agent("monitor", dict(params, monitor_level="deep"), interval=30)
    assert result.returncode == OCF_ERR_GENERIC, describe(result)
    assert run_agent("validate-all", dict(params, monitor_level="deep")).returncode == OCF_ERR_CONFIGURED
    assert run_agent("stop", params).returncode == OCF_SUCCESS
