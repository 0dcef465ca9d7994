"""The lab's controllers: their configuration, their PID 1s, boot, crash, stop, and running commands
inside them.

Each controller (and the services namespace) is `ip netns exec <ns> unshare --mount --uts --ipc --pid
--fork --kill-child` running an init script of lab/ as PID 1: lab/node-init.sh mounts the node's
private view of the machine (copy-on-write /etc, /var, /root, OCF agents; its own /run, logs,
cluster state) and runs corosync, pacemaker and a salt-minion. Killing a PID 1 kills everything of
its pid namespace: that is how `crash` works and why teardown is complete.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from lab import VENV
from lab.procs import PATH, LabError, clean_env, kill_recorded, run, start_time, wait_gone

LAB_DIR = Path(__file__).resolve().parent
OCF_ROOT = "/usr/lib/ocf/resource.d"
NODE_NS_FLAGS = ["-n", "-m", "-u", "-i", "-p"]
CLUSTER_PROPERTIES = (("stonith-enabled", "false"), ("dc-deadtime", "2s"))


class Nodes:
    """Controllers ctl1..ctlN of one lab, and the PID 1s of its namespaces (needs Topology and the
    lab's state: self.run_dir, self.state, self.tied, self._popen, self.token, self.token_coefficient)."""

    def node_dir(self, n: int) -> Path:
        return self.run_dir / self.node_name(n)

    # ---- configuration -----------------------------------------------------------------------
    def _write_node_config(self) -> None:
        """corosync.conf, /etc/hosts, the seeded CIB and the minion config of every controller."""
        corosync = self._corosync_conf()
        cib = self.run_dir / "cib.xml"
        cib.write_text(run(["cibadmin", "--empty"]).stdout)
        env = dict(os.environ, CIB_file=str(cib))
        for name, value in CLUSTER_PROPERTIES:
            run(["crm_attribute", "--type", "crm_config", "--name", name, "--update", value], env=env)
        for n in self.node_range:
            d = self.node_dir(n)
            (d / "etc-corosync").mkdir(parents=True)
            (d / "log").mkdir()
            (d / "etc-corosync/corosync.conf").write_text(corosync)
            (d / "hosts").write_text(self.hosts_file())
            shutil.copy(cib, d / "cib.xml")
            (d / "minion.conf").write_text(json.dumps(self._minion_conf(n), indent=1))
            self._package_files(d)

    @staticmethod
    def _package_files(d: Path) -> None:
        """The controller's glance-api files are what its package installed (/etc/glance, the init
        script, the rc.d links: scripts/sandbox keeps them), not what earlier tests rendered into or
        disabled in the sandbox's /etc: they go into the upper layer of the node's /etc overlay
        (lab/node-init.sh), /etc/glance as an opaque directory."""
        sandbox = Path(os.environ.get("GLANCE_HA_SANDBOX_DIR", "/nonexistent"))
        saved = sandbox / "glance-package-etc.tar"
        if saved.is_file():
            upper = d / "cow/etc/upper"
            upper.mkdir(parents=True, exist_ok=True)
            run(["tar", "-C", str(upper), "--strip-components=1", "-xpf", str(saved)])
            if (upper / "glance").is_dir():
                os.setxattr(upper / "glance", "trusted.overlay.opaque", b"y")
        # Nor does it have the OCF providers earlier tests installed into the sandbox (the project's
        # agent): each is an empty opaque directory in the upper layer of the node's OCF overlay.
        providers = sandbox / "ocf-providers"
        if providers.is_file():
            known = set(providers.read_text().split())
            upper = d / "cow/ocf/upper"
            for name in sorted(set(os.listdir(OCF_ROOT)) - known):
                (upper / name).mkdir(parents=True, exist_ok=True)
                os.setxattr(upper / name, "trusted.overlay.opaque", b"y")

    def _minion_conf(self, n: int) -> dict:
        return {"id": self.node_name(n), "master": self.svc_addr, "ipv6": False,
                "acceptance_wait_time": 1, "acceptance_wait_time_max": 2, "random_reauth_delay": 0,
                "recon_default": 200, "recon_max": 2000, "recon_randomize": False,
                "auth_timeout": 10, "log_level_logfile": "debug", "enable_fqdns_grains": False,
                "enable_gpu_grains": False, "grains_refresh_every": 0,
                # PID 1 is lab/node-init.sh, which Salt's init grain cannot name ('unknown', as in a
                # container, where glance_ha.service has no service manager to ask). The controller's
                # daemons are started like on a sysvinit machine (init scripts through invoke-rc.d,
                # rc.d links: start_packaged_glance), so it says so.
                "grains": {"init": "sysvinit"},
                # The controllers share the host's /usr, whose systemctl (a sysvinit controller has
                # none) makes Salt load systemd_service as `service` in "offline" mode, where
                # service.dead does nothing; without it Salt loads debian_service, as on sysvinit.
                "disable_modules": ["systemd_service"]}

    def _corosync_conf(self) -> str:
        nodes = "".join(f"  node {{\n    ring0_addr: {self.node_addr(n)}\n    name: {self.node_name(n)}\n"
                        f"    nodeid: {n}\n  }}\n" for n in self.node_range)
        # Two nodes: two_node. An even number above: auto_tie_breaker, so that the half holding the highest
        # node id keeps quorum when exactly half the controllers are gone (two crashes of four).
        two = ("  two_node: 1\n" if self.nodes == 2 else
               "  auto_tie_breaker: 1\n  auto_tie_breaker_node: highest\n" if self.nodes % 2 == 0 else "")
        coefficient = ("" if self.token_coefficient is None
                       else f"  token_coefficient: {self.token_coefficient}\n")
        return (f"totem {{\n  version: 2\n  cluster_name: {self.prefix}lab\n  transport: knet\n"
                f"  crypto_cipher: none\n  crypto_hash: none\n  token: {self.token}\n{coefficient}}}\n"
                f"nodelist {{\n{nodes}}}\n"
                f"quorum {{\n  provider: corosync_votequorum\n{two}}}\n"
                "logging {\n  to_logfile: yes\n  logfile: /var/log/corosync/corosync.log\n"
                "  to_syslog: no\n  to_stderr: no\n  timestamp: on\n}\n")

    # ---- PID 1s --------------------------------------------------------------------------------
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

    def _record(self, key: str, popen: subprocess.Popen, init_pid: int | None) -> None:
        self.state["procs"][key] = {"launcher": [popen.pid, start_time(popen.pid)],
                                    "init": [init_pid, start_time(init_pid) if init_pid else None]}
        self._save()

    def init_pid(self, key) -> int:
        """Host PID of the PID 1 of controller N (int) or of 'svc'."""
        key = self.node_name(key) if isinstance(key, int) else key
        rec = self.state["procs"].get(key)
        if not rec or not rec["init"][0] or start_time(rec["init"][0]) != rec["init"][1]:
            raise LabError(f"{key} is not running")
        return rec["init"][0]

    def is_running(self, key) -> bool:
        try:
            self.init_pid(key)
            return True
        except LabError:
            return False

    def live_nodes(self) -> list[int]:
        return [n for n in self.node_range if self.is_running(n)]

    def _reap(self, key: str) -> None:
        p = self._popen.pop(key, None)
        if p is not None:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass

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
        if self.fencing_enabled:
            self._install_fence_agent(n)
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
        while time.monotonic() < deadline and start_time(pid) is not None:
            time.sleep(0.1)
        self.crash(n)  # whatever is left, and the netns
        self.log(f"lab: {key} stopped")

    def start_packaged_glance(self, timeout: float = 180) -> None:
        """Debian's glance-api started in every controller the way its postinst starts it on a machine
        without systemd (`invoke-rc.d glance-api start`: the init script, start-stop-daemon), as on a
        controller where the package was installed before the first highstate; waits until each one
        listens on :9292. Once per lab (a package is installed once), not on a reboot."""
        nodes = self.live_nodes()
        for n in nodes:
            log = "/var/log/glance/invoke-rc.d.log"   # daemonized: no pipe of ours may stay open in it
            proc = self.exec(n, ["sh", "-c", f"invoke-rc.d glance-api start >{log} 2>&1"], check=False)
            if proc.returncode != 0:
                text = (self.node_dir(n) / "log/glance/invoke-rc.d.log").read_text(errors="replace")
                raise LabError(f"{self.node_name(n)}: invoke-rc.d glance-api start -> rc {proc.returncode}:"
                               f"\n{text[-2000:]}")
        deadline = time.monotonic() + timeout
        waiting = set(nodes)
        while waiting:
            waiting = {n for n in waiting if not self.port_holders(n, 9292)}
            if waiting and time.monotonic() > deadline:
                raise LabError(f"the packaged glance-api does not listen on :9292 in "
                               f"{[self.node_name(n) for n in sorted(waiting)]} after {timeout:.0f} s "
                               f"(see <run>/ctlI/log/glance/)")
            time.sleep(0.5)

    def port_holders(self, n: int, port: int) -> list[dict]:
        """The listening TCP sockets on `port` in controller N: [{'addr': local address, 'procs':
        [(command name, pid in the node's pid namespace), ...]}] (`ss -Hltnp`)."""
        out = self.exec(n, ["ss", "-Hltnp", f"sport = :{port}"], check=False).stdout
        found = []
        for line in out.splitlines():
            cols = line.split()
            if len(cols) < 4:
                continue
            procs = [(m.group(1), int(m.group(2))) for m in re.finditer(r'\("([^"]+)",pid=(\d+)', line)]
            found.append({"addr": cols[3], "procs": procs})
        return found

    # ---- running things inside -------------------------------------------------------------
    def nsenter(self, key, cmd: list[str], check: bool = True, timeout: float = 300, **kw):
        """Run argv `cmd` in all the namespaces of controller N (int) or of 'svc'."""
        return run(["nsenter", "-t", str(self.init_pid(key)), *NODE_NS_FLAGS, "--", *cmd], check=check,
                   timeout=timeout, env=clean_env(kw.pop("env", None)), cwd="/", **kw)

    def exec(self, n: int, cmd: list[str], check: bool = True, timeout: float = 300, **kw):
        """Run argv `cmd` in controller N (all of its namespaces)."""
        return self.nsenter(n, cmd, check=check, timeout=timeout, **kw)
