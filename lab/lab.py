"""The glance-ha lab: a services namespace and three Pacemaker controllers on one machine.

Topology (network namespaces only; nothing of the lab runs in the host's network namespace)::

    <pfx>-br    bridge br0, one veth port per namespace below
    <pfx>-svc   .10       MariaDB 3306, RabbitMQ 5672, Keystone 5000 (lab/services.py), the Salt master
                          (file_roots = the repo, pillar_roots = lab/pillar + the run's pillar dir) and
                          the shared image store (a directory bind-mounted into every controller at
                          /var/lib/glance/images, standing in for NFS)
    <pfx>-n1..3 .11-.13   controllers ctl1..ctl3: corosync + pacemaker + salt-minion; glance-api is started
                          by Pacemaker through the formula's OCF agent
    <pfx>-cl    .50       the client (curl, the openstack client)
    VIPs        .100 internal, .101 public

Addresses come from LAB_NET (default 198.51.100.0/24); the lab refuses to start when that range
overlaps an address or a route of the host. Each controller and the services namespace also get their
own mount, UTS, IPC and pid namespaces (lab/node-init.sh, lab/svc-init.sh are their PID 1): killing a
PID 1 kills everything of that namespace, which is how `crash` works and why teardown is complete.
STONITH is disabled in the lab only (a node "crash" here cannot be fenced); real sites must fence.

CLI (root)::

    python -m lab.lab up | status | down
    python -m lab.lab exec N CMD...        # in controller N (nsenter into all its namespaces)
    python -m lab.lab svc CMD...           # in the services namespace
    python -m lab.lab client CMD...        # in the client namespace
    python -m lab.lab salt TARGET FUN ...  # the salt CLI against the lab's master
    python -m lab.lab crash|stop|start|isolate|heal N

Env: LAB_PREFIX (gl), LAB_NET (198.51.100.0/24), LAB_RUN (lab/run/<prefix>), LAB_TOKEN (corosync
token in ms, 1000). Python: `Lab(...)` with the same operations, for the demo, test/ha and bench/.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LAB_DIR = REPO / "lab"
VENV = Path(os.environ.get("LAB_VENV", REPO / ".venv"))
VENV_OS = Path(os.environ.get("LAB_VENV_OS", REPO / ".venv-os"))
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NODE_NS_FLAGS = ["-n", "-m", "-u", "-i", "-p"]

# Host offsets inside the lab network.
OFF_SVC, OFF_NODE0, OFF_CLIENT, OFF_VIP_INTERNAL, OFF_VIP_PUBLIC = 10, 10, 50, 100, 101


class LabError(RuntimeError):
    pass


# The lab's fence agent (Lab.enable_fencing): installed as /usr/sbin/fence_lab inside the controllers
# only (a read-only overlay of /usr/sbin in each node's mount namespace). Fencing a node = asking the
# Python process that owns the lab (a watcher thread) to power it off, i.e. Lab.crash(): SIGKILL of
# its PID 1 and deletion of its netns. `reboot` is carried out as `off` (the node stays down until
# Lab.start), which Pacemaker accepts as a completed fence.
FENCE_AGENT = r"""#!/bin/sh
# fence_lab: the glance-ha lab's fence agent (written by lab/lab.py; never install it on a real system)
reqdir=@REQDIR@
action=reboot port=
while [ $# -gt 0 ]; do
    case "$1" in
        -o|--action) action=$2; shift ;; --action=*) action=${1#*=} ;;
        -n|--plug) port=$2; shift ;; --plug=*) port=${1#*=} ;;
    esac
    shift
done
if [ ! -t 0 ]; then
    while IFS= read -r line; do
        case "$line" in
            action=*|option=*) action=${line#*=} ;;
            port=*|plug=*|nodename=*) port=${line#*=} ;;
        esac
    done
fi
case "$action" in
    metadata)
        cat <<'XML'
<?xml version="1.0" ?>
<resource-agent name="fence_lab" shortdesc="glance-ha lab: power a lab controller off">
<longdesc>Asks the process that owns the glance-ha lab to kill the controller's PID 1 and delete its
network namespace. Test lab only.</longdesc>
<vendor-url>https://example.invalid/glance-ha-lab</vendor-url>
<parameters>
<parameter name="action" unique="0" required="1"><getopt mixed="-o, --action=[action]"/>
<content type="string" default="reboot"/><shortdesc lang="en">Fencing action</shortdesc></parameter>
<parameter name="plug" unique="0" required="0"><getopt mixed="-n, --plug=[id]"/>
<content type="string"/><shortdesc lang="en">Node name</shortdesc></parameter>
</parameters>
<actions>
<action name="on"/><action name="off"/><action name="reboot"/><action name="status"/>
<action name="list"/><action name="monitor"/><action name="metadata"/>
</actions>
</resource-agent>
XML
        exit 0 ;;
    monitor|list|status|on) exit 0 ;;
    off|reboot)
        [ -n "$port" ] || { echo "fence_lab: no node given" >&2; exit 1; }
        rm -f "$reqdir/$port.done"
        echo "$action" > "$reqdir/$port.req.tmp" && mv "$reqdir/$port.req.tmp" "$reqdir/$port.req"
        i=0
        while [ $i -lt 600 ]; do
            if [ -e "$reqdir/$port.done" ]; then rm -f "$reqdir/$port.done"; exit 0; fi
            sleep 0.1; i=$((i + 1))
        done
        echo "fence_lab: no answer from the lab for $port" >&2
        exit 1 ;;
    *) echo "fence_lab: unsupported action $action" >&2; exit 1 ;;
esac
"""


def run(cmd, check=True, timeout=120, **kw) -> subprocess.CompletedProcess:
    """Run a command (argv list), capture text output; raise LabError with its output on failure."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    proc = subprocess.run(cmd, check=False, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(map(str, cmd))} -> rc {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


def _write_private(path: Path, text: str) -> None:
    """Write a file that may hold secrets: 0600 from its creation on, replaced atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


def proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks after boot) of a live, non-zombie process, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def kill_recorded(pid: int, start: int | None, sig=signal.SIGKILL) -> bool:
    """Signal a PID only if it is still the process we recorded (same start time)."""
    if not pid or proc_start_time(pid) is None or (start is not None and proc_start_time(pid) != start):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_gone(pids, timeout=15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(proc_start_time(p) is not None for p in pids):
        time.sleep(0.05)


def host_netns() -> str:
    """The host's network namespace: the one of the kernel threads (PID 2, kthreadd); PID 1 may be
    a protected init whose /proc entries root cannot read."""
    return os.readlink("/proc/2/ns/net")


def check_range(net: ipaddress.IPv4Network) -> None:
    """Refuse a lab network that overlaps an address or a route of the host's network namespace."""
    if os.readlink("/proc/self/ns/net") != host_netns():
        raise LabError("run the lab from the host's network namespace (it checks the host's addresses)")
    for link in json.loads(run(["ip", "-j", "-4", "addr"]).stdout):
        for a in link.get("addr_info", []):
            iface = ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
            if iface.network.overlaps(net):
                raise LabError(f"lab network {net} overlaps {iface} on host interface {link['ifname']}; "
                               "choose another with LAB_NET")
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout):
        dst = route.get("dst", "default")
        if dst != "default":
            dnet = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
            if dnet.overlaps(net):
                raise LabError(f"lab network {net} overlaps host route {dst} (dev {route.get('dev')}); "
                               "choose another with LAB_NET")
        gw = route.get("gateway")
        if gw and ":" not in gw and ipaddress.ip_address(gw) in net:
            raise LabError(f"lab network {net} contains the host gateway {gw}")


def remove_empty_namespaces(prefix_regex: str) -> list[str]:
    """Delete lab namespaces (`<prefix>-br|svc|cl|nN`, prefix matching prefix_regex) in which no
    process runs any more: what a lab killed with its parent (tied=True) leaves behind."""
    pat = re.compile(rf"^(?:{prefix_regex})-(br|svc|cl|n\d+)$")
    gone = []
    for line in run(["ip", "netns", "list"]).stdout.splitlines():
        ns = line.split()[0] if line.strip() else ""
        if pat.match(ns) and not run(["ip", "netns", "pids", ns], check=False).stdout.split():
            run(["ip", "netns", "del", ns], check=False)
            gone.append(ns)
    return gone


class Lab:
    """One lab: namespaces, processes and state under run_dir (see the module docstring)."""

    def __init__(self, prefix: str | None = None, net: str | None = None, run_dir=None, nodes: int = 3,
                 token: int | None = None, tied: bool = False, log=None):
        self.prefix = prefix or os.environ.get("LAB_PREFIX", "gl")
        if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", self.prefix):
            raise LabError(f"prefix {self.prefix!r}: 1-8 lowercase letters/digits (interface names <= 15)")
        self.net = ipaddress.ip_network(net or os.environ.get("LAB_NET", "198.51.100.0/24"))
        if self.net.version != 4 or self.net.num_addresses < 128:
            raise LabError(f"lab network {self.net}: need an IPv4 network of /25 or larger")
        self.nodes = nodes
        self.token = int(token or os.environ.get("LAB_TOKEN", "1000"))
        self.run_dir = Path(run_dir or os.environ.get("LAB_RUN") or LAB_DIR / "run" / self.prefix).resolve()
        self.tied = tied  # the lab dies with this Python process (pytest); the CLI leaves it running
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._popen: dict[str, subprocess.Popen] = {}
        self._fencer: threading.Thread | None = None
        self._fencer_stop = threading.Event()
        self.fenced: list[tuple[str, float]] = []  # (node, time.monotonic()) of every fence carried out
        self.timings: dict[str, float] = {}
        self.state: dict = {"prefix": self.prefix, "net": str(self.net), "nodes": nodes,
                            "token": self.token, "procs": {}}

    # ---- names and addresses -------------------------------------------------------------
    def addr(self, offset: int) -> str:
        return str(self.net.network_address + offset)

    @property
    def svc_addr(self) -> str:
        return self.addr(OFF_SVC)

    @property
    def client_addr(self) -> str:
        return self.addr(OFF_CLIENT)

    @property
    def vip_internal(self) -> str:
        return self.addr(OFF_VIP_INTERNAL)

    @property
    def vip_public(self) -> str:
        return self.addr(OFF_VIP_PUBLIC)

    def node_addr(self, n: int) -> str:
        return self.addr(OFF_NODE0 + n)

    def node_name(self, n: int) -> str:
        return f"ctl{n}"

    def node_number(self, name: str) -> int:
        return int(name.removeprefix("ctl"))

    def ns(self, what) -> str:
        return f"{self.prefix}-n{what}" if isinstance(what, int) else f"{self.prefix}-{what}"

    def port(self, what) -> str:  # the bridge-side veth of a namespace
        return f"v{self.prefix}-n{what}" if isinstance(what, int) else f"v{self.prefix}-{what}"

    def node_dir(self, n: int) -> Path:
        return self.run_dir / self.node_name(n)

    @property
    def svc_dir(self) -> Path:
        return self.run_dir / "svc"

    @property
    def all_namespaces(self) -> list[str]:
        return [self.ns("br"), self.ns("svc"), self.ns("cl")] + [self.ns(i) for i in self.node_range]

    @property
    def node_range(self) -> range:
        return range(1, self.nodes + 1)

    # ---- state file ------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.run_dir / "lab.json"

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1))
        tmp.replace(self.state_file)

    @classmethod
    def attach(cls, prefix=None, run_dir=None, **kw) -> Lab:
        """A Lab object for a lab that is already up (CLI commands after `up`)."""
        lab = cls(prefix=prefix, run_dir=run_dir, **kw)
        if not lab.state_file.exists():
            raise LabError(f"no lab state in {lab.run_dir} (run `python -m lab.lab up` first)")
        state = json.loads(lab.state_file.read_text())
        lab = cls(prefix=state["prefix"], net=state["net"], run_dir=lab.run_dir, nodes=state["nodes"],
                  token=state["token"], **kw)
        lab.state = state
        return lab

    def _record(self, key: str, popen: subprocess.Popen, init_pid: int | None) -> None:
        self.state["procs"][key] = {"launcher": [popen.pid, proc_start_time(popen.pid)],
                                    "init": [init_pid, proc_start_time(init_pid) if init_pid else None]}
        self._save()

    def init_pid(self, key) -> int:
        """Host PID of the PID 1 of controller N (int) or of 'svc'."""
        key = self.node_name(key) if isinstance(key, int) else key
        rec = self.state["procs"].get(key)
        if not rec or not rec["init"][0] or proc_start_time(rec["init"][0]) != rec["init"][1]:
            raise LabError(f"{key} is not running")
        return rec["init"][0]

    def is_running(self, key) -> bool:
        try:
            self.init_pid(key)
            return True
        except LabError:
            return False

    # ---- preflight and cleanup ---------------------------------------------------------------
    def preflight(self) -> None:
        if os.geteuid() != 0:
            raise LabError("the lab needs root (network, mount and pid namespaces)")
        missing = [t for t in ("corosync", "pacemakerd", "crm_mon", "cibadmin", "crm_attribute", "ip",
                               "nsenter", "unshare", "setpriv") if not shutil.which(t, path=PATH)]
        for exe in (VENV / "bin/salt-master", VENV / "bin/salt-minion", VENV_OS / "bin/gunicorn"):
            if not exe.exists():
                missing.append(str(exe))
        if missing:
            raise LabError(f"missing: {', '.join(missing)} (run scripts/bootstrap)")
        try:
            run(["id", "glance"])
        except LabError as exc:
            raise LabError("user glance missing (Debian's glance-api package creates it; "
                           "run scripts/bootstrap)") from exc
        check_range(self.net)

    def lab_namespaces(self) -> list[str]:
        """Existing network namespaces that belong to this prefix."""
        out = run(["ip", "netns", "list"]).stdout
        pat = re.compile(rf"^{re.escape(self.prefix)}-(br|svc|cl|n\d+)$")
        return [line.split()[0] for line in out.splitlines() if line and pat.match(line.split()[0])]

    def cleanup(self) -> None:
        """End every process this prefix's lab started (by recorded PID, then by namespace) and
        delete its namespaces. Safe to call on a lab that is half up or already gone."""
        self._fencer_stop.set()
        pids = []
        state = self.state
        if not state["procs"] and self.state_file.exists():
            try:
                state = json.loads(self.state_file.read_text())
            except ValueError:
                pass
        for rec in state.get("procs", {}).values():
            for pid, start in (rec["init"], rec["launcher"]):
                if pid and kill_recorded(pid, start):
                    pids.append(pid)
        # Anything still inside one of our namespaces (e.g. recorded state lost with a killed run).
        for ns in self.lab_namespaces():
            for pid in run(["ip", "netns", "pids", ns], check=False).stdout.split():
                if kill_recorded(int(pid), None):
                    pids.append(int(pid))
        for p in self._popen.values():
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        self._popen.clear()
        wait_gone(pids)
        for ns in self.lab_namespaces():
            run(["ip", "netns", "del", ns], check=False)
        self.state["procs"] = {}
        if self.state_file.exists():
            self._save()

    # ---- bring-up ----------------------------------------------------------------------------
    def up(self, services: bool = True, wait: bool = True) -> Lab:
        t0 = time.monotonic()
        self.preflight()
        self.cleanup()
        self._write_config()
        self._timed("namespaces", self._make_network)
        self._start_svc()
        svc_proc = self._services_start() if services else None
        for n in self.node_range:
            self.start(n, wait=False)
        if wait:
            self._timed("cluster formed", self.wait_cluster)
            self._timed("minions answer", self.wait_minions)
            if svc_proc is not None:
                self._timed("services ready", lambda: self._services_wait(svc_proc))
        self.timings["bring-up total"] = time.monotonic() - t0
        self.state["up_seconds"] = round(self.timings["bring-up total"], 2)
        self._save()
        return self

    def _timed(self, label, fn):
        t = time.monotonic()
        res = fn()
        self.timings[label] = time.monotonic() - t
        self.log(f"lab: {label} ({self.timings[label]:.1f} s)")
        return res

    def _write_config(self) -> None:
        if self.run_dir.exists():
            shutil.rmtree(self.run_dir)
        self.run_dir.mkdir(parents=True)
        os.chmod(self.run_dir, 0o700)
        (self.run_dir / "images").mkdir()
        shutil.chown(self.run_dir / "images", "glance", "glance")
        os.chmod(self.run_dir, 0o711)  # the glance user traverses it to reach the image store
        # Generated per run; lab/services.py adds the Keystone admin and RabbitMQ ones it generates.
        self.secrets = {k: secrets.token_urlsafe(18) for k in ("db_glance", "keystone_glance")}
        self.secrets.update(keystone_admin="", rabbit="")
        _write_private(self.run_dir / "secrets.json", json.dumps(self.secrets, indent=1))
        self._write_salt_config()
        hosts = ["127.0.0.1 localhost", f"{self.svc_addr} svc", f"{self.client_addr} client"]
        hosts += [f"{self.node_addr(n)} {self.node_name(n)}" for n in self.node_range]
        corosync = self._corosync_conf()
        cib = self.run_dir / "cib.xml"
        cib.write_text(run(["cibadmin", "--empty"]).stdout)
        env = dict(os.environ, CIB_file=str(cib))
        for name, value in (("stonith-enabled", "false"), ("dc-deadtime", "2s")):
            run(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value], env=env)
        for n in self.node_range:
            d = self.node_dir(n)
            (d / "etc-corosync").mkdir(parents=True)
            (d / "log").mkdir()
            (d / "etc-corosync/corosync.conf").write_text(corosync)
            (d / "hosts").write_text("\n".join(hosts) + "\n")
            shutil.copy(cib, d / "cib.xml")
            minion = {"id": self.node_name(n), "master": self.svc_addr, "ipv6": False,
                      "acceptance_wait_time": 1, "acceptance_wait_time_max": 2, "random_reauth_delay": 0,
                      "recon_default": 200, "recon_max": 2000, "recon_randomize": False,
                      "auth_timeout": 10, "log_level_logfile": "info", "enable_fqdns_grains": False,
                      "enable_gpu_grains": False, "grains_refresh_every": 0}
            (d / "minion.conf").write_text(json.dumps(minion, indent=1))

    def _corosync_conf(self) -> str:
        nodes = "".join(f"  node {{\n    ring0_addr: {self.node_addr(n)}\n    name: {self.node_name(n)}\n"
                        f"    nodeid: {n}\n  }}\n" for n in self.node_range)
        two = "  two_node: 1\n" if self.nodes == 2 else ""
        return (f"totem {{\n  version: 2\n  cluster_name: {self.prefix}lab\n  transport: knet\n"
                f"  crypto_cipher: none\n  crypto_hash: none\n  token: {self.token}\n}}\n"
                f"nodelist {{\n{nodes}}}\n"
                f"quorum {{\n  provider: corosync_votequorum\n{two}}}\n"
                "logging {\n  to_logfile: yes\n  logfile: /var/log/corosync/corosync.log\n"
                "  to_syslog: no\n  to_stderr: no\n  timestamp: on\n}\n")

    def _write_salt_config(self) -> None:
        sd = self.svc_dir
        (sd / "salt").mkdir(parents=True)
        (sd / "log").mkdir()
        # The master serves the formula from the repo through links (glance_ha/, _modules/, _states/):
        # a file root at the repo itself would make the fileserver walk the venvs (~40k files) on
        # every file-list refresh, because ignored directories are still descended into.
        states = self.run_dir / "states"
        states.mkdir()
        for name in ("glance_ha", "_modules", "_states", "_utils"):
            (states / name).symlink_to(REPO / name)
        (states / "top.sls").write_text("base:\n  'ctl*':\n    - glance_ha\n")
        (states / "lab_empty.sls").write_text("# intentionally empty: the baseline of bench/bench_lab.py\n")
        pillar = self.run_dir / "pillar"
        pillar.mkdir(mode=0o700)
        master = {
            "id": f"{self.prefix}-master", "interface": self.svc_addr, "ipv6": False,
            "root_dir": str(sd / "salt-root"), "auto_accept": True, "worker_threads": 3,
            "file_roots": {"base": [str(states)]},
            "pillar_roots": {"base": [str(LAB_DIR / "pillar"), str(pillar)]},
            "file_ignore_regex": [r"__pycache__", r"\.pyc$"],
            "log_level_logfile": "info", "keep_jobs_seconds": 3600, "timeout": 10,
        }
        (sd / "salt/master").write_text(json.dumps(master, indent=1))
        self.write_pillar()

    def write_pillar(self) -> None:
        """The run's pillar data (addresses, generated passwords): imported by lab/pillar/glance_ha.sls."""
        s = getattr(self, "secrets", None) or json.loads((self.run_dir / "secrets.json").read_text())
        data = {
            "vip_internal": self.vip_internal, "vip_public": self.vip_public,
            "cidr_netmask": self.net.prefixlen, "nic": "eth0", "svc": self.svc_addr,
            "db_password": s["db_glance"], "rabbit_user": "openstack", "rabbit_password": s["rabbit"],
            "admin_password": s["keystone_admin"], "glance_password": s["keystone_glance"],
            "gunicorn": str(VENV_OS / "bin/gunicorn"), "venv_os": str(VENV_OS),
        }
        _write_private(self.run_dir / "pillar/lab_run.yaml", json.dumps(data, indent=1) + "\n")

    def _make_network(self) -> None:
        br = self.ns("br")
        run(["ip", "netns", "add", br])
        for cmd in (["link", "add", "br0", "type", "bridge"], ["link", "set", "br0", "up"],
                    ["link", "set", "lo", "up"]):
            run(["ip", "-n", br, *cmd])
        for what, addr in (("svc", self.svc_addr), ("cl", self.client_addr)):
            run(["ip", "netns", "add", self.ns(what)])
            self._plug(what, addr)

    def _plug(self, what, addr: str) -> None:
        """veth from the bridge namespace into namespace `what`, named eth0 there."""
        br, ns, port = self.ns("br"), self.ns(what), self.port(what)
        run(["ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", br, "link", "set", port, "master", "br0", "up"])
        run(["ip", "-n", ns, "addr", "add", f"{addr}/{self.net.prefixlen}", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def _launch(self, key: str, ns: str, script: str, args: list[str], logfile: Path) -> subprocess.Popen:
        cmd = ["ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "--ipc", "--pid", "--fork",
               "--kill-child", "--propagation", "private", "bash", str(LAB_DIR / script), *args]
        if self.tied:
            cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
        env = {"PATH": PATH, "LANG": "C.UTF-8", "LAB_VENV": str(VENV), "HOME": "/root"}
        with open(logfile, "ab") as out:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     env=env, cwd="/", start_new_session=True)
        self._popen[key] = popen
        return popen

    def _wait_init(self, key: str, popen: subprocess.Popen, pidfile: Path, logfile: Path) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                raise LabError(f"{key} init exited rc {popen.returncode}:\n{logfile.read_text()[-3000:]}")
            if pidfile.exists() and pidfile.read_text().strip():
                pid = int(pidfile.read_text())
                self._record(key, popen, pid)
                return pid
            time.sleep(0.02)
        raise LabError(f"{key} init did not start:\n{logfile.read_text()[-3000:]}")

    def _start_svc(self) -> None:
        log = self.svc_dir / "log/init.log"
        (self.svc_dir / "init.pid").unlink(missing_ok=True)
        popen = self._launch("svc", self.ns("svc"), "svc-init.sh", [str(self.svc_dir)], log)
        self._wait_init("svc", popen, self.svc_dir / "init.pid", log)

    # ---- services (lab/services.py in the svc namespace) -----------------------------------------
    def _services_start(self) -> subprocess.Popen:
        """`python -m lab.lab provision-services` inside the svc namespace, in the background: MariaDB,
        RabbitMQ, Keystone on the standard ports, then what a site prepares before the formula runs
        (glance database + schema, glance service user). Its daemons stay in the svc pid namespace."""
        log = self.svc_dir / "log/services.log"
        cmd = ["nsenter", "-t", str(self.init_pid("svc")), *NODE_NS_FLAGS, "--",
               str(VENV / "bin/python"), "-m", "lab.lab", "--run-dir", str(self.run_dir), "provision-services"]
        if self.tied:
            cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
        env = self._env({"PYTHONPATH": str(REPO)})
        with open(log, "ab") as out:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     env=env, cwd="/")
        self._popen["services"] = popen
        return popen

    def _services_wait(self, popen: subprocess.Popen, timeout: float = 300) -> None:
        try:
            rc = popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            rc = popen.wait()
        self._popen.pop("services", None)
        if rc != 0:
            raise LabError(f"services did not come up (rc {rc}):\n"
                           f"{(self.svc_dir / 'log/services.log').read_text()[-4000:]}")
        self.state["services"] = json.loads((self.svc_dir / "services.json").read_text())
        self._save()

    def provision_services(self) -> dict:
        """Runs INSIDE the svc namespace (see _services_start)."""
        import logging

        from lab.services import STANDARD_PORTS, ServiceError, Services

        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="lab.services: %(message)s")
        s = json.loads((self.run_dir / "secrets.json").read_text())
        svc = Services(self.svc_dir / "services", host=self.svc_addr, ports=dict(STANDARD_PORTS),
                       os_venv=str(VENV_OS))
        t0 = time.monotonic()
        timings: dict[str, float] = {}
        errors: list[BaseException] = []

        def glance_db():  # as soon as MariaDB answers, while Keystone is still being set up
            try:
                deadline = time.monotonic() + 240
                while True:
                    try:
                        svc.mariadb.sql("SELECT 1")
                        break
                    except (ServiceError, OSError, subprocess.SubprocessError):  # not up yet
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
                svc.mariadb.create_database("glance", "glance", s["db_glance"])
                conf_dir = self.svc_dir / "glance-manage"
                conf_dir.mkdir(mode=0o700, exist_ok=True)
                _write_private(conf_dir / "glance-api.conf", "[database]\nconnection = "
                               f"{svc.mariadb.url('glance', 'glance', s['db_glance'])}\n")
                sync = run([str(VENV_OS / "bin/glance-manage"), "--config-file", str(conf_dir / "glance-api.conf"),
                            "db_sync"], check=False, timeout=600,
                           env=self._env({"OS_GLANCE_CONFIG_DIR": str(conf_dir)}))
                if sync.returncode != 0:
                    raise LabError(f"glance-manage db_sync failed:\n{(sync.stdout + sync.stderr)[-3000:]}")
                timings["glance database ready"] = time.monotonic() - t0
            except BaseException as exc:  # noqa: BLE001 -- re-raised in the main thread below
                errors.append(exc)

        db = threading.Thread(target=glance_db, daemon=True)
        db.start()
        desc = svc.up()
        timings["services up"] = time.monotonic() - t0
        svc.keystone.ensure_service_user("glance", s["keystone_glance"])
        db.join()
        if errors:
            raise errors[0]
        timings["provisioned"] = time.monotonic() - t0
        s.update(keystone_admin=svc.keystone.admin_password, rabbit=svc.rabbitmq.password,
                 rabbit_amqp_url=svc.rabbitmq.amqp_url)
        self.secrets = s
        _write_private(self.run_dir / "secrets.json", json.dumps(s, indent=1))
        self.write_pillar()
        desc["lab_timings"] = timings
        (self.svc_dir / "services.json").write_text(json.dumps(desc, indent=1))
        return desc

    # ---- controllers -----------------------------------------------------------------------------
    def start(self, n: int, wait: bool = True) -> None:
        """Boot controller N: fresh netns + veth, then its PID 1 (node-init.sh)."""
        if self.is_running(n):
            raise LabError(f"{self.node_name(n)} is already running")
        ns = self.ns(n)
        if ns in self.lab_namespaces():
            run(["ip", "netns", "del", ns])
        run(["ip", "netns", "add", ns])
        # A netns deleted just before (crash, fencing) is freed asynchronously by the kernel: its veth's
        # bridge end may linger for a moment. Wait for it, then remove it if it is still there.
        deadline = time.monotonic() + 5
        while run(["ip", "-n", self.ns("br"), "link", "show", self.port(n)], check=False).returncode == 0:
            if time.monotonic() > deadline:
                run(["ip", "-n", self.ns("br"), "link", "del", self.port(n)], check=False)
                break
            time.sleep(0.05)
        self._plug(n, self.node_addr(n))
        d = self.node_dir(n)
        (d / "init.pid").unlink(missing_ok=True)
        log = d / "log/init.log"
        popen = self._launch(self.node_name(n), ns, "node-init.sh",
                             [self.node_name(n), str(d), str(self.run_dir)], log)
        self._wait_init(self.node_name(n), popen, d / "init.pid", log)
        if self._fencer is not None:
            self._mount_fence_agent(n)
        if wait:
            self.wait_cluster()
            self.wait_minions([self.node_name(n)])

    def crash(self, n: int) -> None:
        """Power-cut controller N: SIGKILL its PID 1 (the whole pid namespace dies) and delete its
        netns, so its NIC and any VIP it held vanish at once."""
        key = self.node_name(n)
        rec = self.state["procs"].get(key)
        if rec:
            pids = [p for p, s in (rec["init"], rec["launcher"]) if kill_recorded(p, s)]
            self._reap(key)
            wait_gone(pids)
        run(["ip", "netns", "del", self.ns(n)], check=False)
        self.state["procs"].pop(key, None)
        self._save()

    def stop(self, n: int, timeout: float = 90) -> None:
        """Graceful stop of controller N: SIGTERM to its PID 1 (pacemakerd --shutdown, corosync off)."""
        key = self.node_name(n)
        pid = self.init_pid(n)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc_start_time(pid) is not None:
            time.sleep(0.1)
        self.crash(n)  # whatever is left, and the netns
        self.log(f"lab: {key} stopped")

    def _reap(self, key: str) -> None:
        p = self._popen.pop(key, None)
        if p is not None:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass

    def isolate(self, n: int) -> None:
        """Network partition: take controller N's bridge port down."""
        run(["ip", "-n", self.ns("br"), "link", "set", self.port(n), "down"])

    def heal(self, n: int) -> None:
        run(["ip", "-n", self.ns("br"), "link", "set", self.port(n), "up"])

    def down(self) -> None:
        t = time.monotonic()
        self.cleanup()
        self.timings["teardown"] = time.monotonic() - t
        self.log(f"lab: down ({self.timings['teardown']:.1f} s)")

    # ---- running things inside -------------------------------------------------------------
    def exec(self, n: int, cmd: list[str], check: bool = True, timeout: float = 300, **kw):
        """Run argv `cmd` in controller N (all of its namespaces)."""
        return run(["nsenter", "-t", str(self.init_pid(n)), *NODE_NS_FLAGS, "--", *cmd], check=check,
                   timeout=timeout, env=self._env(kw.pop("env", None)), cwd="/", **kw)

    def svc_exec(self, cmd: list[str], check: bool = True, timeout: float = 300, **kw):
        return run(["nsenter", "-t", str(self.init_pid("svc")), *NODE_NS_FLAGS, "--", *cmd], check=check,
                   timeout=timeout, env=self._env(kw.pop("env", None)), cwd="/", **kw)

    def client_exec(self, cmd: list[str], check: bool = True, timeout: float = 300, **kw):
        return run(["ip", "netns", "exec", self.ns("cl"), *cmd], check=check, timeout=timeout,
                   env=self._env(kw.pop("env", None)), cwd="/", **kw)

    @staticmethod
    def _env(extra) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CIB_", "OS_"))}
        env.update({"PATH": PATH, "LANG": "C.UTF-8", "PYTHONWARNINGS": "ignore::DeprecationWarning"})
        env.update(extra or {})
        return env

    def salt(self, target: str, fun: str, *args: str, timeout: int = 300, check: bool = False,
             opts: tuple = ()):
        """Run the salt CLI against the lab's master; returns (rc, {minion: return}).
        `opts` are extra CLI options (e.g. ("-L",) for a list target)."""
        cmd = [str(VENV / "bin/salt"), "-c", str(self.svc_dir / "salt"), "--out=json", "--static",
               "-t", str(timeout), *opts, target, fun, *args]
        proc = self.svc_exec(cmd, check=False, timeout=timeout + 60)
        try:
            data = json.loads(proc.stdout) if proc.stdout.strip() else {}
        except ValueError:
            data = {"_raw": proc.stdout, "_stderr": proc.stderr}
        if check and proc.returncode != 0:
            raise LabError(f"salt {target} {fun} {' '.join(args)} -> rc {proc.returncode}\n"
                           f"{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
        return proc.returncode, data

    def live_nodes(self) -> list[int]:
        return [n for n in self.node_range if self.is_running(n)]

    def crm_mon_xml(self, n: int | None = None) -> ET.Element:
        n = n or self.live_nodes()[0]
        return ET.fromstring(self.exec(n, ["crm_mon", "-1", "--output-as=xml"], timeout=30).stdout)

    def crm_mon(self, n: int | None = None) -> str:
        n = n or self.live_nodes()[0]
        return self.exec(n, ["crm_mon", "-1", "-r"], check=False, timeout=30).stdout

    def cluster_status(self, n: int | None = None) -> dict:
        """{'dc': name or None, 'online': [...], 'resources': {id: [nodes where active]}}."""
        root = self.crm_mon_xml(n)
        dc = root.find("./summary/current_dc")
        online = [e.get("name") for e in root.iterfind("./nodes/node") if e.get("online") == "true"]
        res: dict[str, list[str]] = {}
        for r in root.iter("resource"):
            res[r.get("id")] = [e.get("name") for e in r.iterfind("node")
                                if r.get("active") == "true" and r.get("failed") != "true"]
        return {"dc": dc.get("name") if dc is not None and dc.get("present") == "true" else None,
                "online": online, "resources": res}

    def locate(self, resource: str) -> list[str]:
        return self.cluster_status()["resources"].get(resource, [])

    def wait_cluster(self, timeout: float = 90) -> dict:
        """Until every running controller sees all running controllers online and the same DC."""
        live = self.live_nodes()
        want = sorted(self.node_name(n) for n in live)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            try:
                views = [self.cluster_status(n) for n in live]
                last = views[0]
                if all(v["dc"] and v["dc"] == last["dc"] and sorted(v["online"]) == want for v in views):
                    return last
            except (LabError, ET.ParseError, subprocess.TimeoutExpired):
                pass
            time.sleep(0.2)
        raise LabError(f"cluster did not form in {timeout} s (want {want}, last {last})\n{self.crm_mon()}")

    def wait_settled(self, timeout: int = 120) -> None:
        self.exec(self.live_nodes()[0], ["crm_resource", "--wait", f"--timeout={timeout}s"],
                  timeout=timeout + 30)

    def wait_minions(self, names=None, timeout: float = 120) -> None:
        """Until the master reaches every (running) controller's minion (manage.up: a test.ping
        with short timeouts, so an unconnected minion costs ~2 s per poll, not the CLI's 10 s)."""
        want = set(names or [self.node_name(n) for n in self.live_nodes()])
        deadline = time.monotonic() + timeout
        got: list = []
        while time.monotonic() < deadline:
            proc = self.svc_exec([str(VENV / "bin/salt-run"), "-c", str(self.svc_dir / "salt"), "--out=json",
                                  "manage.up", "timeout=1", "gather_job_timeout=1"], check=False, timeout=60)
            try:
                got = json.loads(proc.stdout)
            except ValueError:
                got = []
            if want <= set(got):
                return
            time.sleep(0.3)
        raise LabError(f"minions {sorted(want)} not answering (last {got})")

    # ---- the client side -------------------------------------------------------------------------
    @property
    def secret(self) -> dict:
        """The run's passwords (0600 file in the run dir; never printed)."""
        return json.loads((self.run_dir / "secrets.json").read_text())

    @property
    def auth_url(self) -> str:
        return f"http://{self.svc_addr}:5000/v3"

    def image_url(self, public: bool = True) -> str:
        return f"http://{self.vip_public if public else self.vip_internal}:9292"

    def client_call(self, op: str, timeout: float = 600, **req) -> dict:
        """Run one lab/client.py operation in the client namespace (request on stdin, JSON reply)."""
        proc = self.client_exec([str(VENV / "bin/python"), "-m", "lab.client"], check=False, timeout=timeout,
                                input=json.dumps({"op": op, **req}), env={"PYTHONPATH": str(REPO)})
        if proc.returncode != 0:
            raise LabError(f"client {op} failed (rc {proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        return json.loads(proc.stdout)

    def admin_token(self) -> str:
        return self.client_call("token", auth_url=self.auth_url, username="admin",
                                password=self.secret["keystone_admin"], project="admin")["token"]

    def image_catalog(self, token: str | None = None) -> list[dict]:
        """The image services of the Keystone catalog, each with its endpoints."""
        cat = self.client_call("catalog", auth_url=self.auth_url, token=token or self.admin_token())["catalog"]
        return [c for c in cat if c.get("type") == "image"]

    def glance_nodes(self) -> list[str]:
        """Controllers on which a glance-api (WSGI) process runs, by looking inside each one."""
        out = []
        for n in self.live_nodes():
            if self.exec(n, ["pgrep", "-f", "glance.wsgi.api|glance-api"], check=False).returncode == 0:
                out.append(self.node_name(n))
        return out

    def vip_holders(self, ip: str) -> list[str]:
        return [self.node_name(n) for n in self.live_nodes()
                if f" {ip}/" in self.exec(n, ["ip", "-o", "-4", "addr", "show"], check=False).stdout]

    # ---- fault injection (test/ha/test_faults*.py, bench/bench_failover.py) ------------------------
    SERVICES = ("mariadb", "rabbitmq", "keystone")
    SERVICE_ACTIONS = ("stop", "start", "freeze", "thaw", "status")

    def service(self, name: str, action: str, timeout: float = 300) -> dict:
        """stop | start | freeze | thaw | status of one daemon of the services namespace (mariadb,
        rabbitmq, keystone). freeze = SIGSTOP to all its processes: a hung daemon (the kernel still
        accepts its TCP connections, nothing answers); thaw = SIGCONT. Runs inside the svc namespace
        (the PIDs lab/services.py records are those of its pid namespace). Returns
        {name, action, running, seconds}."""
        if name not in self.SERVICES or action not in self.SERVICE_ACTIONS:
            raise LabError(f"service {name!r} {action!r}: one of {self.SERVICES} x {self.SERVICE_ACTIONS}")
        proc = self.svc_exec([str(VENV / "bin/python"), "-m", "lab.lab", "--run-dir", str(self.run_dir),
                              "service-ctl", name, action], check=False, timeout=timeout,
                             env={"PYTHONPATH": str(REPO)})
        if proc.returncode != 0:
            raise LabError(f"service {name} {action} failed (rc {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def services_running(self) -> dict[str, bool]:
        """{service: running} for the three services, in one call into the svc namespace."""
        proc = self.svc_exec([str(VENV / "bin/python"), "-m", "lab.lab", "--run-dir", str(self.run_dir),
                              "service-ctl", "all", "status"], check=False, timeout=120,
                             env={"PYTHONPATH": str(REPO)})
        if proc.returncode != 0:
            raise LabError(f"service status failed (rc {proc.returncode}): {proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def _service_ctl_inside(self, name: str, action: str) -> dict:
        """Runs INSIDE the svc namespace (see service())."""
        import logging

        from lab.services import STANDARD_PORTS, Services, _group

        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="lab.services: %(message)s")
        svc = Services(self.svc_dir / "services", host=self.svc_addr, ports=dict(STANDARD_PORTS),
                       os_venv=str(VENV_OS))
        daemon = getattr(svc, name)
        t = time.monotonic()
        if action == "stop":
            daemon.stop()
        elif action == "start":
            daemon.start()
        elif action in ("freeze", "thaw"):
            sig = signal.SIGSTOP if action == "freeze" else signal.SIGCONT
            pids = {p for rec in daemon._procs().values() for p in _group(rec["pid"], rec["start"])}
            if not pids:
                raise LabError(f"{name} is not running")
            for p in sorted(pids):
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
        return {"name": name, "action": action, "running": daemon.running(),
                "seconds": round(time.monotonic() - t, 2)}

    def vip_map(self) -> dict[str, list[str]]:
        """{node name: [addresses of its eth0]} for every running controller, read with `ip -n` from
        the host (no nsenter: ~5 ms a node, cheap enough to poll every 100 ms). A controller whose
        namespace vanished (crash) holds nothing."""
        out = {}
        for n in self.node_range:
            proc = run(["ip", "-n", self.ns(n), "-j", "-4", "addr", "show", "dev", "eth0"], check=False,
                       timeout=10)
            addrs = []
            if proc.returncode == 0 and proc.stdout.strip():
                for link in json.loads(proc.stdout):
                    addrs += [a["local"] for a in link.get("addr_info", [])]
            out[self.node_name(n)] = addrs
        return out

    def client_start(self, op: str, **req) -> subprocess.Popen:
        """Start one lab/client.py operation in the client namespace in the background (e.g. `poll`);
        collect its reply with client_finish()."""
        cmd = ["ip", "netns", "exec", self.ns("cl"), str(VENV / "bin/python"), "-m", "lab.client"]
        if self.tied:
            cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
        popen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, cwd="/", env=self._env({"PYTHONPATH": str(REPO)}))
        popen.stdin.write(json.dumps({"op": op, **req}))
        popen.stdin.close()
        popen.stdin = None  # communicate() must not flush it again
        return popen

    @staticmethod
    def client_finish(popen: subprocess.Popen, timeout: float = 120) -> dict:
        try:
            out, err = popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            out, err = popen.communicate()
        if popen.returncode != 0:
            raise LabError(f"client job failed (rc {popen.returncode}): {out[-2000:]}{err[-3000:]}")
        return json.loads(out)

    def failcount(self, resource: str, node: str) -> int:
        """Pacemaker's fail count of `resource` on `node` (0 when none; INFINITY as 1000000)."""
        proc = self.exec(self.live_nodes()[0], ["crm_failcount", "--query", "-r", resource, "-N", node, "-q"],
                         check=False, timeout=30)
        value = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "0"
        return 1000000 if value.upper() in ("INFINITY", "+INFINITY") else int(value or 0)

    # ---- fencing (opt-in; the lab runs without STONITH otherwise) ---------------------------------
    @property
    def fence_dir(self) -> Path:
        return self.run_dir / "fence"

    def _mount_fence_agent(self, n: int) -> None:
        """/usr/sbin/fence_lab inside controller N: a read-only overlay of /usr/sbin in its mount
        namespace (the host's /usr/sbin is not touched)."""
        bindir = self.run_dir / "fence-bin"
        probe = self.exec(n, ["test", "-x", "/usr/sbin/fence_lab"], check=False)
        if probe.returncode != 0:
            self.exec(n, ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={bindir}:/usr/sbin",
                          "/usr/sbin"])

    def enable_fencing(self, device: str = "st_lab") -> None:
        """Turn STONITH on with the lab's fence agent (see FENCE_AGENT): a watcher thread of this
        process powers a node off (crash()) when Pacemaker fences it. Only while this process lives
        (tests, benchmarks); disable_fencing() restores the lab's default (stonith-enabled=false)."""
        if self._fencer is not None:
            return
        bindir = self.run_dir / "fence-bin"
        bindir.mkdir(exist_ok=True)
        self.fence_dir.mkdir(mode=0o700, exist_ok=True)
        agent = bindir / "fence_lab"
        agent.write_text(FENCE_AGENT.replace("@REQDIR@", str(self.fence_dir)))
        agent.chmod(0o755)
        self._fencer_stop.clear()
        self._fencer = threading.Thread(target=self._fence_watch, name="lab-fencer", daemon=True)
        self._fencer.start()
        for n in self.live_nodes():
            self._mount_fence_agent(n)
        hosts = " ".join(self.node_name(n) for n in self.node_range)
        xml = (f'<primitive id="{device}" class="stonith" type="fence_lab">'
               f'<instance_attributes id="{device}-ia">'
               f'<nvpair id="{device}-ia-hosts" name="pcmk_host_list" value="{hosts}"/>'
               f'<nvpair id="{device}-ia-check" name="pcmk_host_check" value="static-list"/>'
               f'</instance_attributes><operations>'
               f'<op id="{device}-monitor-60s" name="monitor" interval="60s" timeout="20s"/>'
               f'</operations></primitive>')
        n = self.live_nodes()[0]
        if self.exec(n, ["cibadmin", "-Q", "--xpath", f"//primitive[@id='{device}']"],
                     check=False).returncode:
            self.exec(n, ["cibadmin", "--create", "-o", "resources", "--xml-text", xml])
        self._stonith_enabled(n, "true")

    def _stonith_enabled(self, n: int, value: str) -> None:
        self.exec(n, ["crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", value])

    def disable_fencing(self, device: str = "st_lab") -> None:
        n = self.live_nodes()[0]
        self._stonith_enabled(n, "false")
        self.exec(n, ["cibadmin", "--delete", "--xml-text", f'<primitive id="{device}"/>'], check=False)
        self._fencer_stop.set()
        if self._fencer is not None:
            self._fencer.join(timeout=5)
        self._fencer = None

    def _fence_watch(self) -> None:
        while not self._fencer_stop.is_set():
            for req in sorted(self.fence_dir.glob("*.req")):
                node = req.name[:-len(".req")]
                req.unlink(missing_ok=True)
                try:
                    n = self.node_number(node)
                    self.log(f"lab: fencing {node} (power off)")
                    self.crash(n)
                    self.fenced.append((node, time.monotonic()))
                    (self.fence_dir / f"{node}.done").write_text("ok\n")
                except (ValueError, LabError, OSError) as exc:  # the agent times out and reports failure
                    self.log(f"lab: fencing {node} failed: {exc}")
            self._fencer_stop.wait(0.1)

    # ---- memory ----------------------------------------------------------------------------------
    def memory(self) -> dict[str, dict[str, int]]:
        """Per namespace (svc, ctl1..): {'rss': bytes, 'pss': bytes, 'procs': n} of every process in
        it (its pid namespace), from /proc. RSS double-counts shared pages; PSS does not."""
        out = {}
        for key in ["svc"] + [self.node_name(n) for n in self.node_range]:
            try:
                pid_ns = os.readlink(f"/proc/{self.init_pid(key)}/ns/pid")
            except (LabError, OSError):
                continue
            tot = {"rss": 0, "pss": 0, "procs": 0}
            for p in Path("/proc").iterdir():
                if not p.name.isdigit():
                    continue
                try:
                    if os.readlink(p / "ns/pid") != pid_ns:
                        continue
                    for line in (p / "smaps_rollup").read_text().splitlines():
                        if line.startswith(("Rss:", "Pss:")):
                            tot[line[:3].lower()] += int(line.split()[1]) * 1024
                    tot["procs"] += 1
                except (OSError, ValueError):
                    continue
            out[key] = tot
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.lab", description=__doc__.split("\n\n")[0])
    ap.add_argument("--prefix")
    ap.add_argument("--net")
    ap.add_argument("--run-dir")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--no-services", action="store_true", help="cluster + salt only")
    sub.add_parser("status")
    sub.add_parser("down")
    for name in ("crash", "stop", "start", "isolate", "heal"):
        sub.add_parser(name).add_argument("n", type=int)
    ex = sub.add_parser("exec")
    ex.add_argument("n", type=int)
    for name in ("svc", "client", "salt"):
        sub.add_parser(name)
    sub.add_parser("provision-services", help=argparse.SUPPRESS)
    sc = sub.add_parser("service-ctl", help=argparse.SUPPRESS)
    sc.add_argument("name", choices=(*Lab.SERVICES, "all"))
    sc.add_argument("action", choices=Lab.SERVICE_ACTIONS)
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    for i, word in enumerate(argv):  # argparse.REMAINDER cannot pass options like `-t 5` through
        if word in ("exec", "svc", "client", "salt"):
            cut = i + 2 if word == "exec" else i + 1
            argv, rest = argv[:cut], argv[cut:]
            break
    a = ap.parse_args(argv)

    try:
        if a.cmd == "up":
            lab = Lab(prefix=a.prefix, net=a.net, run_dir=a.run_dir)
            lab.up(services=not a.no_services)
            print(f"lab {lab.prefix} up in {lab.timings['bring-up total']:.1f} s; run dir {lab.run_dir}")
            return 0
        if a.cmd == "down":
            lab = Lab(prefix=a.prefix, net=a.net, run_dir=a.run_dir)
            if lab.state_file.exists():
                lab = Lab.attach(prefix=a.prefix, run_dir=a.run_dir)
            lab.down()
            return 0
        lab = Lab.attach(prefix=a.prefix, run_dir=a.run_dir)
        if a.cmd == "provision-services":
            lab.provision_services()
            return 0
        if a.cmd == "service-ctl":
            if a.name == "all":
                print(json.dumps({name: lab._service_ctl_inside(name, "status")["running"]
                                  for name in Lab.SERVICES}))
            else:
                print(json.dumps(lab._service_ctl_inside(a.name, a.action)))
            return 0
        if a.cmd == "status":
            for key in ["svc"] + [lab.node_name(n) for n in lab.node_range]:
                print(f"{key:5} {'running' if lab.is_running(key) else 'down'}")
            if lab.live_nodes():
                print(lab.crm_mon())
                print(json.dumps(lab.salt("*", "test.ping", timeout=5)[1]))
            return 0
        if a.cmd in ("exec", "svc", "client", "salt"):
            argv = rest[1:] if rest[:1] == ["--"] else rest
            if a.cmd == "salt":
                argv = [str(VENV / "bin/salt"), "-c", str(lab.svc_dir / "salt"), *argv]
            fn = {"exec": lambda c: lab.exec(a.n, c, check=False, capture_output=False),
                  "svc": lambda c: lab.svc_exec(c, check=False, capture_output=False),
                  "salt": lambda c: lab.svc_exec(c, check=False, capture_output=False),
                  "client": lambda c: lab.client_exec(c, check=False, capture_output=False)}[a.cmd]
            return fn(argv).returncode
        getattr(lab, a.cmd)(a.n)
        return 0
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
