"""The crm states against a live single-node Pacemaker cluster started in a network namespace.

One node (corosync + pacemaker as PID 1 of its own net/mount/uts/ipc/pid namespaces, private /run,
/dev/shm, /var/lib/pacemaker, the stand-in glance-api agent overlaid on /usr/lib/ocf/resource.d),
a VIP in 198.51.100.0/24 on a veth pair inside that namespace only. The Salt loader runs here; a PATH
shim sends the Pacemaker tools into the node with nsenter, as they would run on a real controller.
Teardown: SIGKILL of the node's PID 1 (its whole pid namespace dies), then `ip netns del` of this
test's own namespace (random prefix).
"""

import os
import secrets
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
import salt.config
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
FORMULA = os.path.dirname(os.path.dirname(HERE))
STANDIN = os.path.join(FORMULA, "test", "functional", "crm", "standin-glance-api")
NODE_IP, VIP = "198.51.100.11", "198.51.100.100"
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SHIMMED = ("cibadmin", "crm_resource", "crmadmin", "crm_node", "crm_mon", "crm_verify", "crm_diff")

NODE_INIT = r"""#!/bin/bash
# PID 1 of the test node: private mounts, then corosync and pacemaker.
set -euo pipefail
dir=$1
[ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/2/ns/net)" ] && exit 1   # never in the host netns
read -r hostpid _ < /proc/self/stat
hostname node1
mount -t proc proc /proc
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock /run/resource-agents /run/crm
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /var/lib/pacemaker
install -d -o hacluster -g haclient -m 0750 /var/lib/pacemaker/{cib,pengine,blackbox,cores,bundles}
install -o hacluster -g haclient -m 0600 "$dir/cib.xml" /var/lib/pacemaker/cib/cib.xml
mount -t tmpfs -o mode=0755 tmpfs /var/lib/corosync
mount --bind "$dir/log" /var/log/pacemaker
mount --bind "$dir/etc-corosync" /etc/corosync
mount --bind "$dir/hosts" /etc/hosts
mount -t overlay overlay -o "lowerdir=$dir/ocf:/usr/lib/ocf/resource.d" /usr/lib/ocf/resource.d
ip link set lo up
ip link add eth0 type veth peer name eth1
ip addr add __NODE_IP__/24 dev eth0
ip link set eth0 up; ip link set eth1 up
corosync -f &
for _ in $(seq 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done
PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none pacemakerd &
echo "$hostpid" > "$dir/pid"
while :; do sleep 3600 & wait $! || true; done
""".replace("__NODE_IP__", NODE_IP)

COROSYNC = f"""totem {{
    version: 2
    cluster_name: crmlive
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: 1000
}}
nodelist {{
    node {{
        ring0_addr: {NODE_IP}
        name: node1
        nodeid: 1
    }}
}}
quorum {{
    provider: corosync_votequorum
}}
logging {{
    to_logfile: yes
    logfile: /var/log/pacemaker/corosync.log
    to_syslog: no
    to_stderr: no
}}
"""
SEED = ('<cluster_property_set id="cib-bootstrap-options">'
        '<nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>'
        '<nvpair id="cib-bootstrap-options-dc-deadtime" name="dc-deadtime" value="2s"/>'
        '</cluster_property_set>')

SLS = f"""
cib:
  crm.configured:
    - objects:
      - primitive: p_ip_glance-api
        agent: ocf:heartbeat:IPaddr2
        params: {{ip: {VIP}, cidr_netmask: 24, nic: eth0}}
        ops: [{{name: monitor, interval: 5s, timeout: 20s}}]
      - primitive: p_glance-api
        agent: ocf:openstack:glance-api
        params: {{config: /etc/glance/glance-api.conf, monitor_level: process}}
        meta: {{migration-threshold: 3}}
        ops: [{{name: monitor, interval: 5s, timeout: 20s}}, {{name: start, timeout: 20s}}]
      - colocation: col_p_glance-api_with_p_ip_glance-api
        rsc: p_glance-api
        with_rsc: p_ip_glance-api
      - order: ord_p_ip_glance-api_before_p_glance-api
        first: p_ip_glance-api
        then: p_glance-api
      - property: stickiness
        type: rsc_defaults
        properties: {{resource-stickiness: 100}}
"""


def _skip_reason():
    if os.geteuid() != 0:
        return "needs root (network, mount and pid namespaces)"
    for tool in ("pacemakerd", "corosync", "corosync-cfgtool", "crm_mon", "cibadmin", "nsenter", "unshare",
                 "setpriv", "ip"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            return f"{tool} missing"
    return None


def _read(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


class Node:
    corosync = COROSYNC

    def __init__(self, tmp):
        self.dir = str(tmp)
        self.netns = f"crm{secrets.token_hex(3)}-n1"
        self.proc = None
        self.pid = None

    def start(self):
        for sub in ("log", "etc-corosync", "ocf/openstack"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        shutil.chown(os.path.join(self.dir, "log"), "hacluster", "haclient")
        os.chmod(os.path.join(self.dir, "log"), 0o770)
        with open(os.path.join(self.dir, "etc-corosync", "corosync.conf"), "w", encoding="utf-8") as handle:
            handle.write(self.corosync)
        with open(os.path.join(self.dir, "hosts"), "w", encoding="utf-8") as handle:
            handle.write(f"127.0.0.1 localhost\n{NODE_IP} node1\n")
        shutil.copyfile(STANDIN, os.path.join(self.dir, "ocf", "openstack", "glance-api"))
        os.chmod(os.path.join(self.dir, "ocf", "openstack", "glance-api"), 0o755)
        cib = os.path.join(self.dir, "cib.xml")
        with open(cib, "w", encoding="utf-8") as handle:
            handle.write(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout)
        env = dict(os.environ, CIB_file=cib)
        subprocess.run(["cibadmin", "--create", "--scope", "crm_config", "--xml-text", SEED], env=env, check=True)
        init = os.path.join(self.dir, "node-init.sh")
        with open(init, "w", encoding="utf-8") as handle:
            handle.write(NODE_INIT)
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        err_path = os.path.join(self.dir, "init.err")
        with open(err_path, "w", encoding="utf-8") as err:
            self.proc = subprocess.Popen(
                ["setpriv", "--pdeathsig", "KILL", "ip", "netns", "exec", self.netns, "unshare", "--mount",
                 "--uts", "--ipc", "--pid", "--fork", "--kill-child", "--propagation", "private", "bash", init,
                 self.dir], start_new_session=True, stdout=subprocess.DEVNULL, stderr=err)
        pid_file = os.path.join(self.dir, "pid")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = _read(pid_file)
            if text.strip():
                self.pid = int(text)
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"node-init exited: {_read(err_path)}")
            time.sleep(0.1)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            out = self.run("crm_mon", "-1", check=False).stdout
            if "Current DC: node1" in out and "Online: [ node1 ]" in out:
                return
            time.sleep(0.3)
        raise RuntimeError(f"no DC after 90 s: {out} {_read(err_path)}"
                           f" {_read(os.path.join(self.dir, 'log', 'pacemaker.log'))[-2000:]}")

    def run(self, *args, check=True):
        # The system PATH, not the test's: the PATH shims would re-enter the node from inside it.
        cmd = ["nsenter", "-t", str(self.pid), "-n", "-m", "-u", "-i", "-p", "--", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False,
                              env=dict(os.environ, PATH=SYSTEM_PATH))
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(args)}: rc={proc.returncode} {proc.stdout}{proc.stderr}")
        return proc

    def shims(self, shim_dir):
        os.makedirs(shim_dir, exist_ok=True)
        for tool in SHIMMED:
            path = os.path.join(shim_dir, tool)
            with open(path, "w", encoding="utf-8") as handle:
                real = shutil.which(tool, path=SYSTEM_PATH)
                handle.write(f'#!/bin/sh\nexec nsenter -t {self.pid} -n -m -u -i -p -- {real} "$@"\n')
            os.chmod(path, 0o755)

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, 9)
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)


def _running(cls, tmp_path_factory, name):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    the_node = cls(tmp_path_factory.mktemp(name))
    try:
        the_node.start()
        yield the_node
    finally:
        the_node.stop()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    yield from _running(Node, tmp_path_factory, "crmnode")


@pytest.fixture(scope="module")
def loaders(tmp_path_factory, node):
    from saltfactories.utils.functional import Loaders

    root = tmp_path_factory.mktemp("crmlive-minion")
    conf = {"id": "node1-minion", "root_dir": str(root), "file_client": "local",
            "file_roots": {"base": [str(root / "states")]}, "pillar_roots": {"base": [str(root / "pillar")]},
            "module_dirs": [os.path.join(FORMULA, "_modules")], "states_dirs": [os.path.join(FORMULA, "_states")],
            "utils_dirs": [os.path.join(FORMULA, "_utils")]}
    (root / "minion").write_text(yaml.safe_dump(conf))
    return Loaders(salt.config.minion_config(str(root / "minion")))


@pytest.fixture
def modules(loaders, node, tmp_path, monkeypatch):
    node.shims(str(tmp_path / "shims"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'shims'}:{os.environ['PATH']}")
    monkeypatch.delenv("CIB_file", raising=False)
    try:
        yield loaders.modules
    finally:
        loaders.reset_state()


def apply(modules, text, test=False):
    high = {}
    for sid, body in yaml.safe_load(text).items():
        entry = {"__sls__": "crm_live", "__env__": "base"}
        for func, args in body.items():
            mod, fun = func.split(".", 1)
            entry[mod] = [fun, *(args or [])]
        high[sid] = entry
    results = {r.id: r for r in modules.state.high(high, test=test)}
    assert not [r for r in results.values() if r.result is False], {
        s: r.comment for s, r in results.items() if r.result is False}
    return results


def start_call_ids(node, rsc):
    status = ET.fromstring(node.run("cibadmin", "--query", "--scope", "status").stdout)
    return sorted(int(op.get("call-id")) for op in status.iter("lrm_rsc_op")
                  if op.get("operation") == "start" and op.get("id", "").startswith(rsc + "_"))


def test_live_cluster_apply_rerun_and_restart(node, modules):
    assert modules.crm.is_dc() is True and modules.crm.node_name() == "node1"
    assert modules.crm.writer_status("")["writer"] is True

    first = apply(modules, SLS)
    assert first["cib"].changes and "Wrote 5 object(s)" in first["cib"].comment
    modules.crm.wait(60)
    mon = node.run("crm_mon", "-1").stdout
    assert "p_ip_glance-api" in mon and "p_glance-api" in mon and mon.count("Started node1") == 2, mon
    assert modules.crm.locate("p_glance-api") == ["node1"]
    assert modules.crm.locate("p_ip_glance-api") == ["node1"]
    assert f"{VIP}/24" in node.run("ip", "-o", "addr", "show", "dev", "eth0").stdout

    before = node.run("cibadmin", "--query", "--xpath", "/cib", "--no-children").stdout
    second = apply(modules, SLS)
    assert {s: r.changes for s, r in second.items() if r.changes} == {}
    after = node.run("cibadmin", "--query", "--xpath", "/cib", "--no-children").stdout
    assert ET.fromstring(before).get("epoch") == ET.fromstring(after).get("epoch")

    # resource_restarted: active here, so restarted in place (a new start operation), then settled.
    starts = start_call_ids(node, "p_glance-api")
    dry = modules.state.single("crm.resource_restarted", name="p_glance-api", timeout=60, test=True)
    assert dry.result is None and start_call_ids(node, "p_glance-api") == starts
    ret = modules.state.single("crm.resource_restarted", name="p_glance-api", timeout=60)
    assert ret.result is True, ret.comment
    assert ret.changes == {"restarted": {"old": None, "new": "node1"}}
    assert max(start_call_ids(node, "p_glance-api")) > max(starts)
    assert modules.crm.locate("p_glance-api") == ["node1"]
    # The restart leaves no trace in the configuration: a rerun changes nothing.
    assert {s: r.changes for s, r in apply(modules, SLS).items() if r.changes} == {}

    # A resource that is not active on this node is not restarted.
    node.run("crm_resource", "--resource", "p_glance-api", "--meta", "--set-parameter", "target-role",
             "--parameter-value", "Stopped")
    modules.crm.wait(60)
    ret = modules.state.single("crm.resource_restarted", name="p_glance-api", timeout=60)
    assert ret.result is True and ret.changes == {} and "not active on this node" in ret.comment


class MinorityNode(Node):
    """A partition that holds 1 of 2 expected votes: it elects its own DC but has no quorum."""
    corosync = COROSYNC.replace("provider: corosync_votequorum", "provider: corosync_votequorum\n    expected_votes: 2")


@pytest.fixture(scope="module")
def minority(tmp_path_factory):
    yield from _running(MinorityNode, tmp_path_factory, "crmminority")


def test_writer_waits_for_a_new_dc(node, loaders, modules):
    """Right after the controller (re)starts there is no DC: the election is waited for, bounded."""
    (pid,) = node.run("pidof", "pacemaker-controld").stdout.split()
    node.run("kill", "-9", pid)                      # pacemakerd respawns it; a new election follows
    assert modules.crm.dc() is None
    loaders.context.pop("crm.writer", None)          # writer_status caches its answer for one run
    start = time.monotonic()
    status = modules.crm.writer_status("", dc_wait=60)
    waited = time.monotonic() - start
    assert status == {"writer": True, "reason": "the writer is the DC, node1, which has quorum"}, status
    assert 0 < waited < 60


def test_minority_partition_never_writes(minority, loaders, tmp_path, monkeypatch):
    """The DC of a partition without quorum never writes: the crm state and glance_ha.writer say so and the
    CIB stays as it was."""
    minority.shims(str(tmp_path / "shims"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'shims'}:{os.environ['PATH']}")
    monkeypatch.delenv("CIB_file", raising=False)
    loaders.reset_state()
    modules = loaders.modules
    try:
        assert minority.run("crm_node", "-q", check=False).stdout.strip() == "0"   # exit 106
        assert modules.crm.has_quorum() is False
        assert modules.crm.dc() == "node1"
        assert modules.crm.writer_status("") == {
            "writer": False, "reason": "this node (node1) is in a partition without quorum: it never writes"}
        before = minority.run("cibadmin", "--query", "--xpath", "/cib", "--no-children").stdout
        res = apply(modules, SLS)["cib"]
        assert res.result is True and res.changes == {}
        assert "Not the writer (this node (node1) is in a partition without quorum" in res.comment
        decision = modules.glance_ha.writer("", what="glance's database")
        assert decision["write"] is False and "without quorum" in decision["comment"]
        after = minority.run("cibadmin", "--query", "--xpath", "/cib", "--no-children").stdout
        assert ET.fromstring(before).get("epoch") == ET.fromstring(after).get("epoch"), "written without quorum"
    finally:
        loaders.reset_state()
