"""The glance-ha lab: a services namespace and three (up to five) Pacemaker controllers on one machine.

Topology (network namespaces only; nothing of the lab runs in the host's network namespace)::

    <pfx>-br    bridge br0, one veth port per namespace below
    <pfx>-svc   .10       MariaDB 3306, RabbitMQ 5672, Keystone 5000 (lab.services), the Salt master
                          (file_roots = the repo, pillar_roots = lab/pillar + the run's pillar dir) and
                          the shared image store (a directory bind-mounted into every controller at
                          /var/lib/glance/images, standing in for NFS)
    <pfx>-n1..N .11-.1N   controllers ctl1..ctlN (N = 3..5): corosync + pacemaker + salt-minion; glance-api is started
                          by Pacemaker through the formula's OCF agent
    <pfx>-cl    .50       the client (curl, the openstack client)
    VIPs        .100 internal, .101 public

`Lab` is the one object the demo, test/ha and bench/ use; each of its jobs lives in its own module:
lab.topology (names, addresses, namespaces, the range check), lab.nodes (controllers and the PID 1s),
lab.fencing (fence_lab), lab.provision (the services namespace: Salt master, image store, services),
lab.probes (cluster status, waits, the client), lab.cli (`python -m lab ...`). This module holds the
lab's state file and its life cycle (preflight, up, cleanup, down).

STONITH is disabled in the lab only (a node "crash" here cannot be fenced unless enable_fencing() is
on); real sites must fence. Env: LAB_PREFIX (gl), LAB_NET (198.51.100.0/24), LAB_RUN (lab/run/<prefix>),
LAB_TOKEN (corosync token in ms, 1000), LAB_TOKEN_COEFFICIENT (corosync's token_coefficient in ms,
unset: Corosync's 650), LAB_CONTROLLERS (3 to 5; default 3), LAB_MODE (the pillar's
cluster:mode, active-passive; set_mode() changes it on a running lab).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from lab import VENV, VENV_OS
from lab.fencing import Fencing
from lab.nodes import LAB_DIR, Nodes
from lab.probes import Probes
from lab.procs import PATH, LabError, kill_recorded, run, wait_gone
from lab.provision import ServicesNamespace
from lab.topology import Topology, check_range, remove_empty_namespaces

__all__ = ["VENV", "VENV_OS", "Lab", "LabError", "remove_empty_namespaces"]
MIN_CONTROLLERS, MAX_CONTROLLERS = 3, 5
MODES = ("active-passive", "active-active")


class Lab(Topology, Nodes, Fencing, ServicesNamespace, Probes):
    """One lab: namespaces, processes and state under run_dir (see the module docstring)."""

    def __init__(self, prefix: str | None = None, net: str | None = None, run_dir=None, nodes: int | None = None,
                 token: int | None = None, tied: bool = False, log=None, mode: str | None = None,
                 token_coefficient: int | None = None):
        self.prefix = prefix or os.environ.get("LAB_PREFIX", "gl")
        if not re.fullmatch(r"[a-z][a-z0-9]{0,7}", self.prefix):
            raise LabError(f"prefix {self.prefix!r}: 1-8 lowercase letters/digits (interface names <= 15)")
        self.net = ipaddress.ip_network(net or os.environ.get("LAB_NET", "198.51.100.0/24"))
        if self.net.version != 4 or self.net.num_addresses < 128:
            raise LabError(f"lab network {self.net}: need an IPv4 network of /25 or larger")
        nodes = int(nodes or os.environ.get("LAB_CONTROLLERS", "3"))
        if not MIN_CONTROLLERS <= nodes <= MAX_CONTROLLERS:
            raise LabError(f"{nodes} controllers: the lab runs {MIN_CONTROLLERS} to {MAX_CONTROLLERS}")
        self.nodes = nodes
        self.token = int(token or os.environ.get("LAB_TOKEN", "1000"))
        coefficient = token_coefficient if token_coefficient is not None else os.environ.get("LAB_TOKEN_COEFFICIENT")
        self.token_coefficient = None if coefficient in (None, "") else int(coefficient)
        mode = mode or os.environ.get("LAB_MODE", "active-passive")
        if mode not in MODES:
            raise LabError(f"mode {mode!r}: one of {', '.join(MODES)}")
        self.run_dir = Path(run_dir or os.environ.get("LAB_RUN") or LAB_DIR / "run" / self.prefix).resolve()
        self.tied = tied  # the lab dies with this Python process (pytest); the CLI leaves it running
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._popen: dict[str, subprocess.Popen] = {}
        self._fencer: threading.Thread | None = None
        self._fencer_stop = threading.Event()
        self.fenced: list[tuple[str, float]] = []  # (node, time.monotonic()) of every fence carried out
        self.timings: dict[str, float] = {}
        self.state: dict = {"prefix": self.prefix, "net": str(self.net), "nodes": nodes,
                            "token": self.token, "token_coefficient": self.token_coefficient, "mode": mode,
                            "procs": {}}

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
            raise LabError(f"no lab state in {lab.run_dir} (run `python -m lab up` first)")
        state = json.loads(lab.state_file.read_text())
        lab = cls(prefix=state["prefix"], net=state["net"], run_dir=lab.run_dir, nodes=state["nodes"],
                  token=state["token"], token_coefficient=state.get("token_coefficient"), **kw)
        lab.state = state
        return lab

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

    # ---- bring-up and teardown -----------------------------------------------------------------
    def up(self, services: bool = True, wait: bool = True, boot=None) -> Lab:
        """Create the lab and boot its controllers (``boot``: only these numbers; the others are
        configured in Corosync and join later with start(n))."""
        t0 = time.monotonic()
        self.preflight()
        self.cleanup()
        self._write_config()
        self._timed("namespaces", self._make_network)
        self._start_svc()
        svc_proc = self._services_start() if services else None
        for n in boot or self.node_range:
            self.start(n, wait=False)
        if wait:
            self._timed("cluster formed", self.wait_cluster)
            self._timed("minions answer", self.wait_minions)
            self._timed("packaged glance-api listening", self.start_packaged_glance)
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
        os.chmod(self.run_dir, 0o711)  # the glance user traverses it to reach the image store
        self._write_services_config()
        self._write_node_config()

    def down(self) -> None:
        t = time.monotonic()
        self.cleanup()
        self.timings["teardown"] = time.monotonic() - t
        self.log(f"lab: down ({self.timings['teardown']:.1f} s)")
