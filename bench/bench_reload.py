"""Benchmark: failed requests and latency of the image API while a running site changes, on the lab.

A client in the lab's client namespace sends `GET /v2/images` (Keystone token) to the public VIP every
100 ms, each request in its own thread with a 2 s timeout (as bench/bench_failover.py), during:

  reload     a glance-api.conf change (a debug flag and a timeout) applied by a highstate: the
             formula reloads the running glance-api (glance_ha.running_config -> the agent's reload)
  restart    the same kind of change applied the way the formula used to: the file written by the
             highstate, then `crm_resource --restart` of p_glance-api (stop + start through the cluster)
  workers    `api:workers` 1 -> 2 by a highstate: a reloadable parameter, Pacemaker's reload-agent
  rotation   the service user's password changed in the pillar, applied to every controller at once
             (Keystone first, then glance-api.conf, then the reload once Keystone accepts it)

Each row counts the requests sent from 0.5 s before the change until 1 s after it completed, the
failed ones (no answer within 2 s, or not 200) and the latency percentiles of that window. All rows
run in one lab, one after the other (reload and restart side by side in the same run). Prints a
table; asserts nothing.

Run as root, under the heavy lock: `flock /tmp/ghf-heavy.lock scripts/sandbox .venv/bin/python
bench/bench_reload.py [--trials 1]`.
"""

import argparse
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_failover import percentile  # bench/ is sys.path[0] when a bench runs

from lab.lab import Lab, LabError
from lab.probes import wait_for

RESOURCE = "p_glance-api"


def pillar(debug=False, timeout=5, workers=1, password=None):
    p = {"glance_ha": {"api": {"workers": workers},
                       "config": {"DEFAULT": {"debug": debug},
                                  "keystone_authtoken": {"http_connect_timeout": timeout}}}}
    if password:
        p["glance_ha"]["keystone"] = {"service_user": {"password": password}}
    return p


class Bench:
    def __init__(self, lab, log):
        self.lab, self.log, self.token = lab, log, None

    def apply(self, data):
        rc, out = self.lab.salt("ctl*", "state.apply", "glance_ha", f"pillar={json.dumps(data)}", timeout=900)
        bad = {m: [k for k, v in s.items() if v.get("result") is not True] for m, s in out.items()
               if not isinstance(s, dict) or any(v.get("result") is not True for v in s.values())}
        if rc != 0 or bad:
            raise LabError(f"state.apply failed (rc {rc}): {str(bad)[:2000]}")

    def measured(self, what, change):
        lab = self.lab
        base = lab.run_dir / f"poll-{secrets.token_hex(3)}"
        stop, ready = Path(f"{base}.stop"), Path(f"{base}.ready")
        job = lab.client_start("poll", url=lab.image_url(True) + "/v2/images", token=self.token, interval=0.1,
                               timeout=2, stop=str(stop), ready=str(ready), duration=900)
        try:
            wait_for("the poller's first answer", ready.exists, 30, 0.05)
            time.sleep(1.0)
            t0 = time.monotonic()
            change()
            t1 = time.monotonic()
            time.sleep(1.0)
        finally:
            stop.touch()
            polls = Lab.client_finish(job, timeout=120)["polls"]
        window = [p for p in polls if t0 - 0.5 <= p[0] <= t1 + 1.0]
        failed = [p for p in window if p[2] != 200]
        lat = [(p[1] - p[0]) * 1000 for p in window if p[2] == 200]
        row = {"change": what, "requests": len(window), "failed": len(failed), "seconds": t1 - t0,
               "p50_ms": percentile(lat, 0.5), "p99_ms": percentile(lat, 0.99), "max_ms": max(lat, default=math.nan)}
        self.log(f"{what}: {row}")
        lab.wait_settled(180)
        return row

    def restart(self, data):
        self.apply_files_only(data)
        n = self.lab.node_number(self.lab.locate(RESOURCE)[0])
        self.lab.exec(n, ["crm_resource", "--restart", "--resource", RESOURCE, "--timeout=120s"], timeout=180)

    def apply_files_only(self, data):
        # the highstate of the old formula: the files, then a restart (here: by hand, below)
        rc, out = self.lab.salt("ctl*", "state.apply", "glance_ha.config", f"pillar={json.dumps(data)}",
                                timeout=900)
        if rc != 0:
            raise LabError(f"glance_ha.config failed: {str(out)[:2000]}")


def table(rows):
    head = f"{'change':38} | {'requests':>8} | {'failed':>6} | {'p50 ms':>7} | {'p99 ms':>7} | {'max ms':>7} | {'took s':>6}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['change']:38} | {r['requests']:8d} | {r['failed']:6d} | {r['p50_ms']:7.0f} | "
                     f"{r['p99_ms']:7.0f} | {r['max_ms']:7.0f} | {r['seconds']:6.1f}")
    return "\n".join(lines)


def log(message):
    print(message, file=sys.stderr, flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=1)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_reload: needs root", file=sys.stderr)
        return 1
    run_dir = tempfile.mkdtemp(prefix="glhr-", dir="/tmp")
    lab = Lab(prefix="r" + secrets.token_hex(2), run_dir=run_dir, tied=True, log=lambda m: None)
    rows = []
    t_all = time.monotonic()
    try:
        lab.up()
        rc, data = lab.salt("ctl*", "saltutil.sync_all", timeout=300)
        if rc != 0:
            raise LabError(f"sync_all failed: {data}")
        bench = Bench(lab, log)
        bench.apply(pillar())
        lab.wait_settled(180)
        bench.token = lab.admin_token()
        lab_password = lab.secret["keystone_glance"]
        for i in range(args.trials):
            debug = i % 2 == 0
            rows.append(bench.measured("config change, reload (highstate)",
                                       lambda d=debug: bench.apply(pillar(debug=d, timeout=7))))
            rows.append(bench.measured("config change, restart (crm_resource)",
                                       lambda d=debug: bench.restart(pillar(debug=not d, timeout=9))))
            bench.apply(pillar(debug=not debug, timeout=9))   # the formula agrees with what runs
            rows.append(bench.measured("workers 1->2 (reload-agent)",
                                       lambda d=debug: bench.apply(pillar(debug=not d, timeout=9, workers=2))))
            bench.apply(pillar(debug=not debug, timeout=9))
            new = "rot-" + secrets.token_hex(10)
            rows.append(bench.measured("password rotation (highstate)",
                                       lambda d=debug, p=new: bench.apply(pillar(debug=not d, timeout=9, password=p))))
            rows.append(bench.measured("password rotated back (highstate)",
                                       lambda d=debug: bench.apply(pillar(debug=not d, timeout=9,
                                                                          password=lab_password))))
    finally:
        lab.down()
        shutil.rmtree(run_dir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"\nGET /v2/images through the public VIP every 100 ms (2 s timeout) during each change; one lab, "
          f"{args.trials} trial(s); {time.monotonic() - t_all:.0f} s in all\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
