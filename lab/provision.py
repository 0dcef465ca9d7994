"""The lab's services namespace: the Salt master, the shared image store, MariaDB, RabbitMQ and
Keystone (lab.services) as bare as a site before its first highstate (BARE), and their faults.

The master serves the formula from the repo through links (<run>/states/{glance_ha,_modules,_states,
_utils}) and takes its pillar from lab/pillar plus <run>/pillar/lab_run.yaml (addresses and the run's
generated passwords, 0600). The image store is <run>/images, bind-mounted into every controller at
/var/lib/glance/images (standing in for NFS). The services are started INSIDE the namespace
(`python -m lab provision-services` / `service-ctl` under nsenter), so their PIDs are those of its
pid namespace and every daemon dies with its PID 1 (lab/svc-init.sh).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from glance_ha_files import write_atomic

from lab import REPO, VENV, VENV_OS
from lab.nodes import LAB_DIR, NODE_NS_FLAGS
from lab.procs import LabError, clean_env, group

SERVICES = ("mariadb", "rabbitmq", "keystone")
SERVICE_ACTIONS = ("stop", "start", "freeze", "thaw", "status")
# Generated for each run; lab.services generates Keystone's admin and RabbitMQ's passwords itself.
RUN_SECRETS = ("db_glance", "keystone_glance", "db_admin")
# The lab starts bare, as a site that has only the install guide's prerequisites: MariaDB with no glance
# database or account, RabbitMQ with its openstack user, Keystone after `keystone-manage bootstrap`
# only (no service project, no glance user, no image service). The formula creates the rest
# (glance_ha.db with database:create, glance_ha.identity, glance_ha.endpoints). The one thing the lab
# adds is what glance_ha.db's database:create needs and MariaDB lacks after install: an administrator
# account that may log in over TCP from the controllers (root logs in over the local socket only).
DB_ADMIN = "dbadmin"


class ServicesNamespace:
    """The svc namespace of one lab (needs Topology, Nodes and self.run_dir, self.state)."""

    SERVICES = SERVICES
    SERVICE_ACTIONS = SERVICE_ACTIONS

    @property
    def svc_dir(self) -> Path:
        return self.run_dir / "svc"

    @property
    def secret(self) -> dict:
        """The run's passwords (0600 file in the run dir; never printed)."""
        return json.loads((self.run_dir / "secrets.json").read_text())

    def _write_secrets(self, data: dict) -> None:
        write_atomic(self.run_dir / "secrets.json", json.dumps(data, indent=1))

    # ---- configuration -----------------------------------------------------------------------
    def _write_services_config(self) -> None:
        """The shared image store, the run's passwords, the master's config and the pillar."""
        (self.run_dir / "images").mkdir()
        shutil.chown(self.run_dir / "images", "glance", "glance")
        self._write_secrets({**{k: secrets.token_urlsafe(18) for k in RUN_SECRETS},
                             "keystone_admin": "", "rabbit": ""})
        sd = self.svc_dir
        (sd / "salt").mkdir(parents=True)
        (sd / "log").mkdir()
        # A file root at the repo itself would make the fileserver walk the venvs (~40k files) on
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
            "log_level_logfile": "debug", "keep_jobs_seconds": 3600, "timeout": 10,
        }
        (sd / "salt/master").write_text(json.dumps(master, indent=1))
        self.write_pillar()

    def write_pillar(self) -> None:
        """The run's pillar data (addresses, generated passwords): imported by lab/pillar/glance_ha.sls."""
        s = self.secret
        data = {
            "vip_internal": self.vip_internal, "vip_public": self.vip_public,
            "cidr_netmask": self.net.prefixlen, "nic": "eth0", "svc": self.svc_addr,
            "db_password": s["db_glance"], "rabbit_user": "openstack", "rabbit_password": s["rabbit"],
            "admin_password": s["keystone_admin"], "glance_password": s["keystone_glance"],
            "db_admin_user": DB_ADMIN, "db_admin_password": s["db_admin"],
            "gunicorn": str(VENV_OS / "bin/gunicorn"), "venv_os": str(VENV_OS),
            "mode": self.state.get("mode", "active-passive"),
        }
        write_atomic(self.run_dir / "pillar/lab_run.yaml", json.dumps(data, indent=1) + "\n")

    @property
    def mode(self) -> str:
        """The pillar's cluster:mode (active-passive or active-active)."""
        return self.state.get("mode", "active-passive")

    def set_mode(self, mode: str) -> None:
        """Change the pillar's cluster:mode; the next state run applies it (one CIB transaction)."""
        self.state["mode"] = mode
        self._save()
        self.write_pillar()

    # ---- the namespace and its master ----------------------------------------------------------
    def _start_svc(self) -> None:
        log = self.svc_dir / "log/init.log"
        (self.svc_dir / "init.pid").unlink(missing_ok=True)
        popen = self._launch("svc", self.ns("svc"), "svc-init.sh", [str(self.svc_dir)], log)
        self._wait_init("svc", popen, self.svc_dir / "init.pid", log)

    def svc_exec(self, cmd: list[str], check: bool = True, timeout: float = 300, **kw):
        """Run argv `cmd` in the services namespace (all of its namespaces)."""
        return self.nsenter("svc", cmd, check=check, timeout=timeout, **kw)

    def _lab_cli(self, *args: str) -> list[str]:
        """argv of `python -m lab --run-dir <run> ARGS` (run inside the svc namespace)."""
        return [str(VENV / "bin/python"), "-m", "lab", "--run-dir", str(self.run_dir), *args]

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

    def db_sql(self, text: str, database: str | None = None) -> list[list[str]]:
        """Run SQL as MariaDB's root over its socket in the services namespace (SQL on stdin); the
        rows, each a list of column strings."""
        sock = self.state["services"]["mariadb"]["socket"]
        argv = ["mariadb", "--no-defaults", "-uroot", f"--socket={sock}", "--batch", "--skip-column-names"]
        proc = self.svc_exec(argv + ([database] if database else []), input=text, timeout=60)
        return [line.split("\t") for line in proc.stdout.splitlines()]

    # ---- MariaDB, RabbitMQ, Keystone -------------------------------------------------------------
    def _services_start(self) -> subprocess.Popen:
        """`python -m lab provision-services` inside the svc namespace, in the background: MariaDB,
        RabbitMQ, Keystone on the standard ports, bare (BARE). Its daemons stay in the svc pid namespace."""
        log = self.svc_dir / "log/services.log"
        cmd = ["nsenter", "-t", str(self.init_pid("svc")), *NODE_NS_FLAGS, "--",
               *self._lab_cli("provision-services")]
        if self.tied:
            cmd = ["setpriv", "--pdeathsig", "KILL", *cmd]
        with open(log, "ab") as out:
            popen = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     env=clean_env({"PYTHONPATH": str(REPO)}), cwd="/")
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

    def _services_inside(self):
        """The lab.services stack of this lab, as seen INSIDE the svc namespace."""
        from lab.services import STANDARD_PORTS, Services

        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="lab.services: %(message)s")
        return Services(self.svc_dir / "services", host=self.svc_addr, ports=dict(STANDARD_PORTS),
                        os_venv=str(VENV_OS))

    def provision_services(self) -> dict:
        """Runs INSIDE the svc namespace (see _services_start): the services as the install guide's
        prerequisites leave them, nothing of glance's (see BARE)."""
        s = self.secret
        svc = self._services_inside()
        t0 = time.monotonic()
        desc = svc.up()
        svc.mariadb.create_admin(DB_ADMIN, s["db_admin"])
        s.update(keystone_admin=svc.keystone.admin_password, rabbit=svc.rabbitmq.password,
                 rabbit_amqp_url=svc.rabbitmq.amqp_url)
        self._write_secrets(s)
        self.write_pillar()
        desc["lab_timings"] = {"services up": time.monotonic() - t0}
        (self.svc_dir / "services.json").write_text(json.dumps(desc, indent=1))
        return desc

    # ---- faults (test/ha/test_faults*.py, bench/bench_failover.py) --------------------------------
    def _service_ctl(self, name: str, action: str, timeout: float) -> dict:
        proc = self.svc_exec(self._lab_cli("service-ctl", name, action), check=False, timeout=timeout,
                             env={"PYTHONPATH": str(REPO)})
        if proc.returncode != 0:
            raise LabError(f"service {name} {action} failed (rc {proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def service(self, name: str, action: str, timeout: float = 300) -> dict:
        """stop | start | freeze | thaw | status of one daemon of the services namespace (mariadb,
        rabbitmq, keystone). freeze = SIGSTOP to all its processes: a hung daemon (the kernel still
        accepts its TCP connections, nothing answers); thaw = SIGCONT. Runs inside the svc namespace
        (the PIDs lab.services records are those of its pid namespace). Returns
        {name, action, running, seconds}."""
        if name not in SERVICES or action not in SERVICE_ACTIONS:
            raise LabError(f"service {name!r} {action!r}: one of {SERVICES} x {SERVICE_ACTIONS}")
        return self._service_ctl(name, action, timeout)

    def services_running(self) -> dict[str, bool]:
        """{service: running} for the three services, in one call into the svc namespace."""
        return self._service_ctl("all", "status", 120)

    def service_ctl_inside(self, name: str, action: str) -> dict:
        """Runs INSIDE the svc namespace (see service()); name 'all' with 'status' answers for all."""
        if name == "all":
            return {one: self.service_ctl_inside(one, "status")["running"] for one in SERVICES}
        daemon = getattr(self._services_inside(), name)
        t = time.monotonic()
        if action == "stop":
            daemon.stop()
        elif action == "start":
            daemon.start()
        elif action in ("freeze", "thaw"):
            sig = signal.SIGSTOP if action == "freeze" else signal.SIGCONT
            pids = {p for rec in daemon._procs().values() for p in group(rec["pid"], rec["start"])}
            if not pids:
                raise LabError(f"{name} is not running")
            for p in sorted(pids):
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
        return {"name": name, "action": action, "running": daemon.running(),
                "seconds": round(time.monotonic() - t, 2)}
