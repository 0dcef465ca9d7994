"""One lab (lab.lab.Lab) per test session: services namespace + three Pacemaker controllers with
salt-minions, the formula applied from the master to all three at once.

Skipped (with the reason) unless root with Pacemaker, Corosync, MariaDB, RabbitMQ and the venvs.
The lab dies with the pytest process (tied=True: every PID 1 of the lab has PDEATHSIG=KILL) and is
torn down at session end; LAB_KEEP_RUN=1 keeps its run dir (logs of every node) for a post-mortem.
"""

import collections
import contextlib
import os
import secrets
import shutil
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lab.lab import VENV, VENV_OS, Lab, remove_empty_namespaces
from lab.probes import wait_for

RESOURCE = "p_glance-api"
CLONE = "cl_glance-api"
MODES = ("active-passive", "active-active")
# Parametrised over both modes (cluster:mode): every test of these files that takes `cluster_mode`.
MODE_FILES = ("test_faults_cluster.py", "test_faults_salt.py", "test_faults_services.py")
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
_ORDER = {"test_crm_live.py": 0, "test_lab.py": 1, "test_day0.py": 2, "test_secrets.py": 2.5, "test_clean.py": 4}


def pytest_generate_tests(metafunc):
    """The fault tests run in both cluster modes, on the same lab (``cluster_mode``)."""
    if "cluster_mode" in metafunc.fixturenames and Path(str(metafunc.definition.fspath)).name in MODE_FILES:
        metafunc.parametrize("cluster_mode", MODES, ids=["ap", "aa"], scope="session")


def _mode_of(item) -> str:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("cluster_mode", MODES[0]) if callspec else MODES[0]


def pytest_collection_modifyitems(session, config, items):
    """Within test/ha: test_crm_live.py (a cluster of its own), test_lab.py on the fresh lab, then
    test_day0.py, test_secrets.py, the other files (test_faults*.py among them) in active-passive, the
    same fault tests in active-active (one switch there and one back), test_clean.py (file order, then
    definition order), then the tests with a lab of their own (OWN_LAB_FIXTURES); other directories keep
    their places. Every file the order names must exist, so a rename cannot silently reorder."""
    here = Path(__file__).resolve().parent
    missing = [name for name in _ORDER if not (here / name).exists()]
    assert not missing, f"test/ha/conftest.py orders files that do not exist: {missing}"
    slots = [i for i, it in enumerate(items) if Path(str(it.fspath)).resolve().parent == here]
    ours = [items[i] for i in slots]
    ranked = sorted(ours, key=lambda it: _ORDER.get(Path(str(it.fspath)).name, 3)
                    + (0.5 if _mode_of(it) == "active-active" else 0))
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


def holders(lab):
    """{vip: [controllers whose eth0 carries it]} (read with `ip -n`, so a crashed node holds none)."""
    m = lab.vip_map()
    return {vip: sorted(n for n, addrs in m.items() if vip in addrs)
            for vip in (lab.vip_internal, lab.vip_public)}


class VipWatch:
    """Samples every controller's addresses every 100 ms in a thread: [(time.monotonic(), holders)]."""

    def __init__(self, lab):
        self.lab, self.samples, self._stop = lab, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            t = time.monotonic()
            self.samples.append((t, holders(self.lab)))
            self._stop.wait(max(0.0, 0.1 - (time.monotonic() - t)))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)

    def changes(self, t0):
        out, last = [], None
        for t, h in self.samples:
            if h != last:
                out.append((round(t - t0, 2), h))
                last = h
        return out


class Poller:
    """lab/client.py `poll` through the public VIP: a request every 100 ms, 2 s timeout."""

    def __init__(self, lab, token):
        self.lab, self.token = lab, token
        base = lab.run_dir / f"poll-{secrets.token_hex(3)}"
        self.stop, self.ready = Path(f"{base}.stop"), Path(f"{base}.ready")

    def __enter__(self):
        self.job = self.lab.client_start("poll", url=self.lab.image_url(True) + "/v2/images", token=self.token,
                                         interval=0.1, timeout=2, stop=str(self.stop), ready=str(self.ready),
                                         duration=900)
        wait_for("the poller's first answer", self.ready.exists, 30, 0.05)
        return self

    def __exit__(self, *exc):
        time.sleep(0.5)
        self.stop.touch()
        self.polls = self.lab.client_finish(self.job, timeout=120)["polls"]
        self.failed = [p for p in self.polls if p[2] != 200]
        self.stop.unlink(missing_ok=True)
        self.ready.unlink(missing_ok=True)

    def summary(self):
        return f"{len(self.failed)} failed of {len(self.polls)} requests"


def tracked(mode: str) -> str:
    """The resource whose node a fault hits: glance-api itself in active-passive; in active-active,
    where glance runs everywhere, the public VIP (the node the clients' requests go to)."""
    return RESOURCE if mode == "active-passive" else PUB_VIP


class Baseline:
    """Where things were when a fault test started: ``active`` (the node of ``tracked(mode)``), the
    nodes with a glance-api (``instances``), the DC."""

    def __init__(self, lab, status):
        self.lab, self.mode = lab, lab.mode
        self.instances = sorted(status["resources"].get(RESOURCE, []))
        where = status["resources"].get(tracked(self.mode), [])
        assert len(where) == 1, status
        self.active = where[0]
        self.n = lab.node_number(self.active)
        self.dc = status["dc"]
        want = [self.active] if self.mode == "active-passive" else sorted(status["online"])
        assert self.instances == want, status

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
    booted = [n for n in lab.node_range if not lab.is_running(n)]
    for n in booted:
        lab.start(n, wait=False)
    # a node that kept running with Pacemaker stopped (its boot starts it on the others)
    for n in lab.node_range:
        if n not in booted and lab.exec(n, ["pgrep", "-x", "pacemakerd"], check=False).returncode != 0:
            start_pacemaker(lab, n)
    lab.wait_cluster(120)
    first = lab.live_nodes()[0]
    for n in lab.node_range:
        lab.exec(first, ["crm_standby", "-N", lab.node_name(n), "-v", "off"], check=False)
    lab.exec(first, ["crm_resource", "--cleanup", "-r", RESOURCE], check=False)
    lab.wait_settled(180)
    if lab.mode == "active-passive":
        wait_for("one copy of glance-api", lambda: len(lab.locate(RESOURCE)) == 1, 120)
    else:
        wait_for("glance-api on every controller",
                 lambda: sorted(lab.locate(RESOURCE)) == sorted(lab.node_name(n) for n in lab.node_range), 120)
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


@pytest.fixture(scope="session")
def cluster_mode():
    """The lab's cluster:mode a test wants (parametrised over MODES for MODE_FILES)."""
    return MODES[0]


def switch_mode(lab, mode):
    """cluster:mode changed in the lab's pillar and applied to every controller at once: every state
    succeeds, the CIB's configuration is written once (epoch + 1), no VIP is on two controllers at any
    poll (every 100 ms) and once settled the API answers through the VIP; then the lab is restored in
    the new mode. Prints the VIP holders over time."""
    epoch = int(cib(lab).get("epoch"))
    lab.set_mode(mode)
    with Poller(lab, lab.admin_token()) as poll, VipWatch(lab) as watch:
        t0 = time.monotonic()
        rc, data = apply_all(lab)
        lab.wait_settled(180)
        wait_for("the image API through the VIP", lambda: lab.client_call(
            "request", url=f"{lab.image_url(True)}/v2/images", token=poll.token, request_timeout=5)["status"] == 200,
            120, 0.5)
    failed = {m: [s.get("__id__") for s in r.values() if s.get("result") is not True] if isinstance(r, dict)
              else [str(r)[:300]] for m, r in data.items()}
    assert rc == 0 and not any(failed.values()), f"switch to {mode}: {failed}"
    print(f"switch to {mode}: {poll.summary()}, VIP holders over time:", watch.changes(t0))
    assert int(cib(lab).get("epoch")) == epoch + 1, "the switch is one CIB write"
    assert watch.samples and all(len(h) <= 1 for _t, hs in watch.samples for h in hs.values()), watch.changes(t0)
    restore(lab)


@pytest.fixture(scope="module", autouse=True)
def _module_lab_mode(request):
    """A module outside MODE_FILES runs in the default mode, and so do its module-scoped fixtures,
    which pytest sets up before any test's own (``_lab_mode`` would come too late for them): the
    session's lab, if it runs, is switched back here when the fault tests left it in the other mode."""
    if Path(str(request.node.fspath)).name in MODE_FILES:
        return
    for lab in SESSION_LABS:
        if lab.mode != MODES[0]:
            switch_mode(lab, MODES[0])


@pytest.fixture(autouse=True)
def _lab_mode(request):
    """Every test on the session's lab finds it in the mode it wants (``cluster_mode``): the first test
    of the other mode switches it (after the first highstate), and the first test after them back."""
    if "lab" not in request.fixturenames:
        return
    wanted = request.getfixturevalue("cluster_mode")
    lab = request.getfixturevalue("lab")
    if lab.mode != wanted:
        request.getfixturevalue("first_apply")
        switch_mode(lab, wanted)


@pytest.fixture
def baseline(request, lab, first_apply, ledger, token):
    """A restored lab before the test, with an image of the test's own in the ledger (so no "no image
    lost" check depends on another test having run); after it, restored again if it failed, then the
    shared audit (``audit``), as Pacemaker's CTS audits after each test."""
    restore(lab)
    ledger.add(f"before-{request.node.name}")
    yield Baseline(lab, lab.cluster_status())
    if getattr(request.node, "glha_call_failed", True):
        restore(lab)
    audit(lab, ledger, token, request.node.name)


# ---- the shared audit ------------------------------------------------------------------------------
INT_VIP, PUB_VIP = "p_ip_glance-api", "p_ip_glance-api-public"
# The constraint that keeps the public VIP in place, and the formula's constraints, per mode.
PUB_COLOCATION = {"active-passive": f"col_{PUB_VIP}_with_{INT_VIP}",
                  "active-active": f"col_{PUB_VIP}_with_{CLONE}"}
CONSTRAINTS = {
    "active-passive": {f"col_{RESOURCE}_with_{INT_VIP}", f"ord_{INT_VIP}_before_{RESOURCE}",
                       PUB_COLOCATION["active-passive"], f"ord_{PUB_VIP}_before_{RESOURCE}",
                       f"ord_{RESOURCE}_stops_before_{INT_VIP}", f"ord_{RESOURCE}_stops_before_{PUB_VIP}"},
    "active-active": {f"col_{vip}_with_{CLONE}" for vip in (INT_VIP, PUB_VIP)}
                     | {f"ord_{CLONE}_before_{vip}" for vip in (INT_VIP, PUB_VIP)},
}
# The formula's default when the pillar sets none (a failed instance under a VIP in active-active sends
# the VIP to a running instance at once).
MIGRATION_THRESHOLD = {"active-passive": "3", "active-active": "1"}
# The formula's own resources besides the primitives, per mode.
WRAPPERS = {"active-passive": set(), "active-active": {CLONE}}


def cib(lab, n=None):
    return ET.fromstring(lab.exec(n or lab.live_nodes()[0], ["cibadmin", "--query"]).stdout)


def meta(root, rsc, name):
    prim = root.find(f".//primitive[@id='{rsc}']")
    return next((nv.get("value") for nv in prim.iterfind("./meta_attributes/nvpair")
                 if nv.get("name") == name), None)


def catalog(lab, token):
    """[(interface, url, region)] of the image service(s), and the number of image services."""
    r = lab.client_call("request", url=f"{lab.auth_url}/services?type=image", token=token)
    services = r["body"]["services"]
    eps = []
    for s in services:
        r = lab.client_call("request", url=f"{lab.auth_url}/endpoints?service_id={s['id']}", token=token)
        eps += [(e["interface"], e["url"], e["region_id"]) for e in r["body"]["endpoints"]]
    return len(services), sorted(eps)


# Elements whose `id` names another object (an IDREF in Pacemaker's schemas: tag members, resource-set
# members, ACL roles): not ids of their own, so not counted as duplicates.
REFERENCES = {"obj_ref", "resource_ref", "role", "role_ref"}


def object_ids(root):
    """Every id an element of <configuration> holds as its own (references excluded), in document order."""
    return [e.get("id") for e in root.find("configuration").iter() if e.get("id") and e.tag not in REFERENCES]


def assert_consistent(lab, token, corrected=True):
    """Exactly one set of the formula's CIB objects for the lab's mode (three primitives, in
    active-active inside the clone; the VIPs once each, no duplicate constraint or id), `crm_verify -L`
    clean, one image service with no duplicate endpoint; with ``corrected``, exactly the formula's
    constraints and values and the three endpoints on the VIPs."""
    mode = lab.mode
    root = cib(lab)
    prims = [p for p in root.iterfind(".//resources//primitive") if p.get("class") != "stonith"]
    assert sorted(p.get("id") for p in prims) == sorted([RESOURCE, INT_VIP, PUB_VIP])
    vips = collections.Counter(nv.get("value") for p in prims if p.get("type") == "IPaddr2"
                               for nv in p.iterfind("./instance_attributes/nvpair") if nv.get("name") == "ip")
    assert vips == {lab.vip_internal: 1, lab.vip_public: 1}
    cons = root.find(".//constraints")
    content = collections.Counter(
        (c.tag, tuple(sorted((k, v) for k, v in c.attrib.items() if k not in ("id", "score")))) for c in cons)
    assert max(content.values()) == 1, content
    ids = object_ids(root)
    assert len(ids) == len(set(ids)), [i for i, c in collections.Counter(ids).items() if c > 1]
    tagged = [ref.get("id") for ref in root.iterfind("configuration/tags/tag[@id='glance_ha']/obj_ref")]
    assert sorted(tagged) == sorted(CONSTRAINTS[mode] | WRAPPERS[mode] | {RESOURCE, INT_VIP, PUB_VIP}), tagged
    clones = [c.get("id") for c in root.iterfind(".//resources/clone")]
    assert clones == sorted(WRAPPERS[mode]), clones
    if mode == "active-active":
        assert root.find(f".//resources/clone[@id='{CLONE}']/primitive[@id='{RESOURCE}']") is not None
    assert lab.exec(lab.live_nodes()[0], ["crm_verify", "-L"], check=False).returncode == 0
    services, eps = catalog(lab, token)
    assert services == 1
    assert len(eps) == len(set(eps)), eps  # no duplicate endpoint
    if corrected:
        assert {c.get("id") for c in cons} == CONSTRAINTS[mode]
        assert meta(root, RESOURCE, "migration-threshold") == MIGRATION_THRESHOLD[mode]
        assert eps == [("admin", f"http://{lab.vip_internal}:9292", "RegionOne"),
                       ("internal", f"http://{lab.vip_internal}:9292", "RegionOne"),
                       ("public", f"http://{lab.vip_public}:9292", "RegionOne")]


def audit(lab, ledger, token, tag):
    """After every fault test, once the cluster has settled, where the mode says: in active-passive
    glance-api runs once and both VIPs on its node; in active-active glance-api runs on every online
    controller and each VIP on exactly one of them. Then exactly one set of the formula's CIB objects
    and one image service with its three endpoints (assert_consistent); every image uploaded so far
    downloads with its sha256; a fresh image round-trips through the public VIP."""
    lab.wait_settled(180)
    where = sorted(lab.locate(RESOURCE))
    holders = {vip: lab.vip_holders(vip) for vip in (lab.vip_internal, lab.vip_public)}
    if lab.mode == "active-passive":
        assert len(where) == 1, f"audit after {tag}: {RESOURCE} runs on {where}"
        assert sorted(holders[lab.vip_internal] + holders[lab.vip_public]) == where * 2, \
            f"audit after {tag}: VIPs {holders} not with {RESOURCE} on {where}"
    else:
        online = sorted(lab.cluster_status()["online"])
        assert where == online, f"audit after {tag}: {RESOURCE} runs on {where}, online {online}"
        assert all(len(h) == 1 and h[0] in where for h in holders.values()), \
            f"audit after {tag}: VIPs {holders}, {RESOURCE} on {where}"
    assert_consistent(lab, token)
    ledger.add(f"audit-{tag}")
    assert ledger.verify() == [], f"audit after {tag}: images lost"
