"""The lab's command line (root)::

    python -m lab up [--no-services] [--controllers N] [--boot 1,2,4] | status | down
    python -m lab exec N CMD...        # in controller N (nsenter into all its namespaces)
    python -m lab svc CMD...           # in the services namespace
    python -m lab client CMD...        # in the client namespace
    python -m lab salt TARGET FUN ...  # the salt CLI against the lab's master
    python -m lab crash|stop|start|isolate|heal N

Options (before the command): --prefix, --net, --run-dir. `up --controllers N` (3 to 5, default
LAB_CONTROLLERS or 3); `up --boot 1,2,4` boots only those controllers (the others join later with
`start N`). Env: see lab.lab.
"""

from __future__ import annotations

import argparse
import json
import sys

from lab import VENV
from lab.lab import Lab
from lab.procs import LabError
from lab.provision import SERVICE_ACTIONS, SERVICES

PASS_THROUGH = ("exec", "svc", "client", "salt")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m lab", description="The glance-ha lab: 3 to 5 Pacemaker "
                                 "controllers, MariaDB, RabbitMQ, Keystone and a Salt master in namespaces.")
    ap.add_argument("--prefix")
    ap.add_argument("--net")
    ap.add_argument("--run-dir")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up")
    up.add_argument("--no-services", action="store_true", help="cluster + salt only")
    up.add_argument("--controllers", type=int, help="number of controllers, 3 to 5 (default 3)")
    up.add_argument("--boot", help="comma-separated controllers to boot now (default: all)")
    sub.add_parser("status")
    sub.add_parser("down")
    for name in ("crash", "stop", "start", "isolate", "heal"):
        sub.add_parser(name).add_argument("n", type=int)
    sub.add_parser("exec").add_argument("n", type=int)
    for name in ("svc", "client", "salt"):
        sub.add_parser(name)
    sub.add_parser("provision-services", help=argparse.SUPPRESS)
    sc = sub.add_parser("service-ctl", help=argparse.SUPPRESS)
    sc.add_argument("name", choices=(*SERVICES, "all"))
    sc.add_argument("action", choices=SERVICE_ACTIONS)
    return ap


def _status(lab: Lab) -> None:
    for key in ["svc"] + [lab.node_name(n) for n in lab.node_range]:
        print(f"{key:5} {'running' if lab.is_running(key) else 'down'}")
    if lab.live_nodes():
        print(lab.crm_mon())
        print(json.dumps(lab.salt("*", "test.ping", timeout=5)[1]))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    for i, word in enumerate(argv):  # argparse.REMAINDER cannot pass options like `-t 5` through
        if word in PASS_THROUGH:
            cut = i + 2 if word == "exec" else i + 1
            argv, rest = argv[:cut], argv[cut:]
            break
    a = _parser().parse_args(argv)
    try:
        if a.cmd == "up":
            lab = Lab(prefix=a.prefix, net=a.net, run_dir=a.run_dir, nodes=a.controllers)
            lab.up(services=not a.no_services, boot=[int(n) for n in a.boot.split(",")] if a.boot else None)
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
        elif a.cmd == "service-ctl":
            print(json.dumps(lab.service_ctl_inside(a.name, a.action)))
        elif a.cmd == "status":
            _status(lab)
        elif a.cmd in PASS_THROUGH:
            cmd = rest[1:] if rest[:1] == ["--"] else rest
            if a.cmd == "salt":
                cmd = [str(VENV / "bin/salt"), "-c", str(lab.svc_dir / "salt"), *cmd]
            fn = {"exec": lambda c: lab.exec(a.n, c, check=False, capture_output=False),
                  "svc": lambda c: lab.svc_exec(c, check=False, capture_output=False),
                  "salt": lambda c: lab.svc_exec(c, check=False, capture_output=False),
                  "client": lambda c: lab.client_exec(c, check=False, capture_output=False)}[a.cmd]
            return fn(cmd).returncode
        else:
            getattr(lab, a.cmd)(a.n)
        return 0
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
