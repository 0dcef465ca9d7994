"""What the lab observes: the cluster as Pacemaker reports it, readiness waits, where glance and the
VIPs are, fail counts, memory, and requests from the client namespace (lab/client.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from lab import REPO, VENV
from lab.procs import LabError, clean_env, run


def wait_for(what, cond, timeout=120.0, interval=0.2):
    """Poll cond() until it returns something truthy (returned); LabError after `timeout` s.
    LabError, ValueError and OSError from cond() count as "not yet"."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
            if last:
                return last
        except (LabError, ValueError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
        time.sleep(interval)


class Probes:
    """Observation of one lab (needs Topology, Nodes and ServicesNamespace)."""

    # ---- the cluster ---------------------------------------------------------------------------
    def crm_mon_xml(self, n: int | None = None) -> ET.Element:
        n = n or self.live_nodes()[0]
        return ET.fromstring(self.exec(n, ["crm_mon", "-1", "--output-as=xml"], timeout=30).stdout)

    def crm_mon(self, n: int | None = None) -> str:
        n = n or self.live_nodes()[0]
        return self.exec(n, ["crm_mon", "-1", "-r"], check=False, timeout=30).stdout

    def cluster_status(self, n: int | None = None) -> dict:
        """{'dc': name or None, 'online': [...], 'resources': {id: [nodes where active]}}; a cloned
        primitive's id lists the nodes of all its active instances."""
        root = self.crm_mon_xml(n)
        dc = root.find("./summary/current_dc")
        online = [e.get("name") for e in root.iterfind("./nodes/node") if e.get("online") == "true"]
        res: dict[str, list[str]] = {}
        for r in root.iter("resource"):  # a clone lists one <resource> of the same id per instance
            res.setdefault(r.get("id"), []).extend(e.get("name") for e in r.iterfind("node")
                                                   if r.get("active") == "true" and r.get("failed") != "true")
        return {"dc": dc.get("name") if dc is not None and dc.get("present") == "true" else None,
                "online": online, "resources": res}

    def ring_id(self, n: int) -> str:
        """Corosync's ring id as controller n sees it (it changes with every membership change)."""
        out = self.exec(n, ["corosync-quorumtool", "-s"], timeout=30).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Ring ID"))

    def token_warnings(self, n: int) -> int:
        """Lines of controller n's corosync log saying the token was late (Corosync warns at
        token_warning, 75 % of the token, by default): the early sign of a false failover."""
        proc = self.exec(n, ["grep", "-c", "Token has not been received", "/var/log/corosync/corosync.log"],
                         check=False, timeout=30)
        return int(proc.stdout.strip() or 0)

    def locate(self, resource: str) -> list[str]:
        return self.cluster_status()["resources"].get(resource, [])

    def failcount(self, resource: str, node: str) -> int:
        """Pacemaker's fail count of `resource` on `node` (0 when none; INFINITY as 1000000)."""
        proc = self.exec(self.live_nodes()[0], ["crm_failcount", "--query", "-r", resource, "-N", node, "-q"],
                         check=False, timeout=30)
        value = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "0"
        return 1000000 if value.upper() in ("INFINITY", "+INFINITY") else int(value or 0)

    # ---- readiness -----------------------------------------------------------------------------
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

    def wait_settled(self, timeout: int = 120, n: int | None = None) -> None:
        """Until Pacemaker has no action pending (crm_resource --wait), as controller n sees it."""
        self.exec(n or self.live_nodes()[0], ["crm_resource", "--wait", f"--timeout={timeout}s"],
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

    # ---- where things run ------------------------------------------------------------------------
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

    # ---- the client namespace ----------------------------------------------------------------------
    @property
    def auth_url(self) -> str:
        return f"http://{self.svc_addr}:5000/v3"

    def image_url(self, public: bool = True) -> str:
        return f"http://{self.vip_public if public else self.vip_internal}:9292"

    def client_exec(self, cmd: list[str], check: bool = True, timeout: float = 300, **kw):
        return run(["ip", "netns", "exec", self.ns("cl"), *cmd], check=check, timeout=timeout,
                   env=clean_env(kw.pop("env", None)), cwd="/", **kw)

    def client_call(self, op: str, timeout: float = 600, **req) -> dict:
        """Run one lab/client.py operation in the client namespace (request on stdin, JSON reply)."""
        proc = self.client_exec([str(VENV / "bin/python"), "-m", "lab.client"], check=False, timeout=timeout,
                                input=json.dumps({"op": op, **req}), env={"PYTHONPATH": str(REPO)})
        if proc.returncode != 0:
            raise LabError(f"client {op} failed (rc {proc.returncode}): {proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        return json.loads(proc.stdout)

    def client_start(self, op: str, **req) -> subprocess.Popen:
        """Start one lab/client.py operation in the client namespace in the background (e.g. `poll`);
        collect its reply with client_finish()."""
        cmd = ["ip", "netns", "exec", self.ns("cl"), str(VENV / "bin/python"), "-m", "lab.client"]
        if self.tied:
            cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
        popen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True, cwd="/", env=clean_env({"PYTHONPATH": str(REPO)}))
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

    def admin_token(self) -> str:
        return self.client_call("token", auth_url=self.auth_url, username="admin",
                                password=self.secret["keystone_admin"], project="admin")["token"]

    def image_catalog(self, token: str | None = None) -> list[dict]:
        """The image services of the Keystone catalog, each with its endpoints."""
        cat = self.client_call("catalog", auth_url=self.auth_url, token=token or self.admin_token())["catalog"]
        return [c for c in cat if c.get("type") == "image"]
