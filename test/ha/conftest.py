"""One lab (lab.lab.Lab) per test session: services namespace + three Pacemaker controllers with
salt-minions, the formula applied from the master to all three at once.

Skipped (with the reason) unless root with Pacemaker, Corosync, MariaDB, RabbitMQ and the venvs.
The lab dies with the pytest process (tied=True: every PID 1 of the lab has PDEATHSIG=KILL) and is
torn down at session end; LAB_KEEP_RUN=1 keeps its run dir (logs of every node) for a post-mortem.
"""

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from lab.lab import VENV, VENV_OS, Lab, remove_empty_namespaces
from lab.probes import wait_for

RESOURCE = "p_glance-api"
# The session's lab while it runs: a module with a lab of its own (another number of controllers) stops
# it first, so that two labs never run at once; such modules run last (pytest_collection_modifyitems).
SESSION_LABS: list = []
OWN_LAB_FIXTURES = ("lab4",)


def _skip_reason():
    if os.geteuid() != 0:
        return "the lab needs root (network, mount and pid namespaces)"
    for tool in ("pacemakerd", "corosync", "crm_mon", "cibadmin", "nsenter", "unshare"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            return f"{tool} missing (scripts/bootstrap installs Pacemaker/Corosync)"
    for exe in (VENV / "bin/salt-master", VENV_OS / "bin/gunicorn"):
        if not exe.exists():
            return f"{exe} missing (scripts/bootstrap)"
    from lab.services import missing

    return missing()


@contextlib.contextmanager
def new_lab(letter, **kw):
    """A Lab object (prefix ``letter`` + 4 hex digits, run dir under /tmp, dying with this process),
    torn down on exit; LAB_KEEP_RUN=1 keeps its run dir. Skips the test without root or the tools."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    remove_empty_namespaces(f"{letter}[0-9a-f]{{4}}")  # left by a session that was killed (its lab died with it)
    run_dir = tempfile.mkdtemp(prefix="glha-", dir="/tmp")  # short: Salt's unix sockets live below it
    the_lab = Lab(prefix=letter + secrets.token_hex(2), run_dir=run_dir, tied=True,
                  log=lambda msg: print(msg, flush=True), **kw)
    try:
        yield the_lab
    finally:
        the_lab.down()
        if os.environ.get("LAB_KEEP_RUN") == "1":
            print(f"lab run dir kept: {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def lab():
    with new_lab("t") as the_lab:
        SESSION_LABS.append(the_lab)
        try:
            the_lab.up()
            yield the_lab
        finally:
            if the_lab in SESSION_LABS:
                SESSION_LABS.remove(the_lab)


def apply_all(lab):
    """state.apply glance_ha on every controller at once (one publish from the master)."""
    rc, data = lab.salt("ctl*", "state.apply", "glance_ha", timeout=900)
    return rc, data


def keystone_get(lab, token, path):
    """GET <Keystone>/v3<path> from the client namespace; the JSON body (asserts HTTP 200)."""
    r = lab.client_call("request", url=f"{lab.auth_url}{path}", token=token)
    assert r["status"] == 200, r
    return r["body"]


# Debian's glance-api in a controller: its pidfile, its init script's status, its start links.
PACKAGED_PROBE = """
echo "pid=$(cat /run/glance/glance-api.pid 2>/dev/null)"
/etc/init.d/glance-api status >/dev/null 2>&1; echo "status=$?"
for f in /etc/rc[0-6S].d/S[0-9]*glance-api; do [ -e "$f" ] && echo "link=$f"; done; true
"""


def packaged_glance(lab, n):
    """Debian's glance-api in controller n: {'pid': its pidfile's pid or None, 'running': its init
    script's status says so, 'start_links': its /etc/rc?.d/S* links, 'port': port_holders(:9292)}."""
    lines = [line.partition("=") for line in lab.exec(n, ["sh", "-c", PACKAGED_PROBE]).stdout.splitlines()]
    pid = next(v for k, _, v in lines if k == "pid").strip()
    return {"pid": int(pid) if pid.isdigit() else None,
            "running": [v for k, _, v in lines if k == "status"] == ["0"],
            "start_links": [v for k, _, v in lines if k == "link"], "port": lab.port_holders(n, 9292)}


@pytest.fixture(scope="session")
def bare(lab):
    """What the lab looks like before the first highstate (recorded once, right before it): the
    databases, Keystone's users and image services, Debian's glance-api in every controller."""
    token = lab.admin_token()
    return {
        "databases": [row[0] for row in lab.db_sql("SHOW DATABASES")],
        "users": [u["name"] for u in keystone_get(lab, token, "/users")["users"]],
        "projects": [p["name"] for p in keystone_get(lab, token, "/projects")["projects"]],
        "image_services": keystone_get(lab, token, "/services?type=image")["services"],
        "packaged": {lab.node_name(n): packaged_glance(lab, n) for n in lab.node_range},
    }


@pytest.fixture(scope="session")
def first_apply(lab, bare):
    """The first highstate, from bare, on the three controllers at once."""
    rc, data = lab.salt("ctl*", "saltutil.sync_all", timeout=300)
    assert rc == 0 and len(data) == lab.nodes, data
    rc, data = apply_all(lab)
    lab.wait_settled(180)
    return rc, data


@pytest.fixture(scope="session")
def second_apply(lab, first_apply):
    return apply_all(lab)


@pytest.fixture(scope="session")
def token(lab, first_apply):
    return lab.admin_token()


@pytest.fixture(scope="session")
def uploaded_image(lab, token):
    """A 4 MiB random image uploaded through the public VIP."""
    img = lab.run_dir / "test-image.raw"
    img.write_bytes(os.urandom(4 << 20))
    return lab.client_call("upload", url=lab.image_url(public=True), token=token, file=str(img),
                           name="ha-test")


# ---- fault injection (test_faults_*.py) ------------------------------------------------------------
# The lab tests run first on the fresh lab, then the fault tests, then the clean; every fault test
# starts from (and leaves) a restored lab; a ledger of uploaded images is checked after every fault.

PIDFILE = "/run/resource-agents/p_glance-api.pid"
_ORDER = {"test_crm_live.py": 0, "test_lab.py": 1, "test_day0.py": 2, "test_clean.py": 4}


def pytest_collection_modifyitems(session, config, items):
    """Within test/ha: test_lab.py on the fresh lab first, then test_day0.py, test_faults*.py, test_clean.py
    (file order, then definition order), then the tests with a lab of their own (OWN_LAB_FIXTURES);
    other directories keep their places."""
    here = Path(__file__).resolve().parent
    slots = [i for i, it in enumerate(items) if Path(str(it.fspath)).resolve().parent == here]
    ours = [items[i] for i in slots]
    ranked = sorted(ours, key=lambda it: _ORDER.get(Path(str(it.fspath)).name, 3))
    ranked = sorted(ranked, key=lambda it: any(f in it.fixturenames for f in OWN_LAB_FIXTURES))
    for i, it in zip(slots, ranked):
        items[i] = it


def stop_session_lab():
    """Stop the session's lab if it runs (a module is about to start a lab of its own)."""
    while SESSION_LABS:
        SESSION_LABS.pop().down()


class Ledger:
    """Images whose upload returned success, with their sha256: all of them must download intact
    (same checksum) after every fault."""

    def __init__(self, lab, token):
        self.lab, self.token, self.images = lab, token, []

    def add(self, tag: str, size: int = 256 << 10) -> dict:
        path = self.lab.run_dir / f"ledger-{len(self.images)}.raw"
        path.write_bytes(os.urandom(size))
        r = self.lab.client_call("upload", url=self.lab.image_url(public=True), token=self.token,
                                 file=str(path), name=f"ledger-{tag}")
        path.unlink()
        assert r["status"] == "active", r
        self.images.append({"id": r["id"], "sha256": r["sha256"], "tag": tag})
        return r

    def verify(self) -> list:
        """The images that do not download with their recorded checksum ([] = nothing lost)."""
        r = self.lab.client_call("verify", url=self.lab.image_url(public=True), token=self.token,
                                 images=[{"id": i["id"], "sha256": i["sha256"]} for i in self.images])
        tags = {i["id"]: i["tag"] for i in self.images}
        return [dict(x, tag=tags[x["id"]]) for x in r["results"] if not x["ok"]]


@pytest.fixture(scope="session")
def ledger(lab, token):
    return Ledger(lab, token)


class Baseline:
    """Where things were when a fault test started: the node that runs glance-api, the DC."""

    def __init__(self, lab, status):
        self.lab = lab
        where = status["resources"].get(RESOURCE, [])
        assert len(where) == 1, status
        self.active = where[0]
        self.n = lab.node_number(self.active)
        self.dc = status["dc"]

    def others(self):
        return [n for n in self.lab.node_range if n != self.n]


def glance_pid(lab, n):
    """PID (in the node's pid namespace) of the glance-api the agent started on controller n."""
    out = lab.exec(n, ["cat", PIDFILE], check=False).stdout.strip()
    return int(out) if out.isdigit() else None


def restore(lab):
    """Bring the lab back to normal: every controller booted and connected, none in standby, the
    services running, fencing off, glance-api's fail counts cleared, the cluster settled with one
    copy of glance-api, the API answering through the VIP. Idempotent (cheap when nothing is wrong)."""
    for name, running in lab.services_running().items():
        if not running:
            lab.service(name, "start")
    for n in lab.live_nodes():
        lab.heal(n)
    if lab.fencing_enabled:
        lab.disable_fencing()
    for n in lab.node_range:
        if not lab.is_running(n):
            lab.start(n, wait=False)
    lab.wait_cluster(120)
    for n in lab.node_range:
        if lab.exec(n, ["pgrep", "-x", "pacemakerd"], check=False).returncode != 0:
            start_pacemaker(lab, n)
    lab.wait_cluster(120)
    first = lab.live_nodes()[0]
    for n in lab.node_range:
        lab.exec(first, ["crm_standby", "-N", lab.node_name(n), "-v", "off"], check=False)
    lab.exec(first, ["crm_resource", "--cleanup", "-r", RESOURCE], check=False)
    lab.wait_settled(180)
    wait_for("one copy of glance-api", lambda: len(lab.locate(RESOURCE)) == 1, 120)
    token = lab.admin_token()
    wait_for("the image API through the VIP",
             lambda: lab.client_call("request", url=f"{lab.image_url(True)}/v2/images", token=token,
                                     request_timeout=5)["status"] == 200, 120, 0.5)


def start_pacemaker(lab, n):
    """Start pacemakerd again on controller n (after `pacemakerd --shutdown`), as node-init does."""
    cmd = ("PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none "
           "setsid -f pacemakerd </dev/null >/dev/null 2>&1")
    lab.exec(n, ["sh", "-c", cmd])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.glha_call_failed = report.failed
    return report


@pytest.fixture
def baseline(request, lab, first_apply):
    """A restored lab before the test, and after it when it failed (so it does not spoil the next)."""
    restore(lab)
    yield Baseline(lab, lab.cluster_status())
    if getattr(request.node, "glha_call_failed", True):
        restore(lab)
