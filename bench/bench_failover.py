"""Benchmark: failover downtime of the image API through the VIP, on the lab (lab.lab.Lab).

A client in the lab's client namespace sends `GET /v2/images` (with a Keystone token) to the public
VIP every 100 ms, each request in its own thread with a 2 s timeout, while one fault is injected on
the controller that runs glance-api:

  kill       SIGKILL of glance-api (the whole gunicorn session) -> the monitor restarts it in place
  crash      the controller's PID 1 killed and its netns deleted -> glance and the VIPs move
  standby    `crm_standby -v on` for that controller -> Pacemaker moves glance and the VIPs
  partition  its bridge port down (the 3-node cluster keeps quorum on the other two)

Downtime of one trial = from the start of the first failed request to the end of the earliest
successful request started after it (0 when no request failed). A kill is injected at a random
point of the monitor period (uniform), so its downtime samples the whole detection delay. Between
trials the lab is restored (fail count cleaned up, node started again / back online / healed) and
`crm_resource --wait` settles.

Two configurations run side by side in the same invocation, each on a fresh lab:
  recommended  corosync token 1000 ms, glance monitor interval 10 s (timeout 30 s)
  seed         corosync default token 3000 ms, glance monitor interval 30 s (timeout 30 s)
everything else as the formula's defaults (migration-threshold 3, failure-timeout 120s, stickiness
100). With 3 nodes corosync's effective token is token + 650 ms and consensus 1.2x that.

Targets with the recommended settings: crash p95 <= 8 s, standby p95 <= 5 s, kill p95 <= monitor
interval + 5 s. p95 is interpolated linearly between the closest ranks (with 5 trials it lies
between the 4th and the 5th value). Prints a table; asserts nothing.

Run as root: `scripts/sandbox .venv/bin/python bench/bench_failover.py [--trials 5]
[--faults kill,crash,standby,partition] [--configs recommended,seed]`.
"""

import argparse
import json
import math
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.lab import Lab, LabError
from lab.probes import wait_for

RESOURCE = "p_glance-api"
PIDFILE = "/run/resource-agents/p_glance-api.pid"
FAULTS = ("kill", "crash", "standby", "partition")
CONFIGS = {
    "recommended": {"token": 1000, "monitor": {"interval": "10s", "timeout": "30s"}},
    "seed": {"token": 3000, "monitor": {"interval": "30s", "timeout": "30s"}},
}


def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    if not s:
        return math.nan
    pos = (len(s) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def downtime(polls, t_fault):
    """(seconds, failed requests) from the poller's [[start, end, status], ...]."""
    fails = [p for p in polls if p[2] != 200 and p[0] >= t_fault - 0.5]
    if not fails:
        return 0.0, 0
    first = min(p[0] for p in fails)
    oks = [p[1] for p in polls if p[2] == 200 and p[0] > first]
    if not oks:
        return math.inf, len(fails)
    return min(oks) - first, len(fails)


class Bench:
    def __init__(self, lab: Lab, log=print, monitor_interval: float = 0.0):
        self.lab = lab
        self.log = log
        self.token = None
        # A process kill is noticed at the next monitor: inject at a random phase of the monitor
        # period (after a restore the cleanup restarts the period, which would fix the phase).
        self.monitor_interval = monitor_interval

    # ---- helpers -----------------------------------------------------------------------------
    def majority_node(self, exclude: int) -> int:
        return next(n for n in self.lab.live_nodes() if n != exclude)

    def active(self, on: int | None = None) -> list[str]:
        return self.lab.cluster_status(on)["resources"].get(RESOURCE, [])

    # ---- one trial ---------------------------------------------------------------------------
    def trial(self, fault: str) -> dict:
        lab = self.lab
        where = self.active()
        if len(where) != 1:
            raise LabError(f"{RESOURCE} active on {where} before the trial")
        n = lab.node_number(where[0])
        dc = lab.cluster_status()["dc"]
        base = lab.run_dir / f"poll-{secrets.token_hex(3)}"
        stop, ready, recovered = (Path(f"{base}.{k}") for k in ("stop", "ready", "recovered"))
        job = lab.client_start("poll", url=lab.image_url(True) + "/v2/images", token=self.token,
                               interval=0.1, timeout=2, stop=str(stop), ready=str(ready),
                               recovered=str(recovered), duration=300)
        try:
            wait_for("the poller's first answer", ready.exists, 30, 0.05)
            time.sleep(0.5 + (random.uniform(0, self.monitor_interval) if fault == "kill" else 0))
            t_fault = time.monotonic()
            self.inject(fault, n)
            # The API is back (as the poller sees it) and the cluster agrees where glance runs.
            wait_for("the API to answer again", recovered.exists, 240, 0.1)
            other = self.majority_node(n) if fault in ("crash", "partition") else n
            if fault in ("crash", "standby", "partition"):
                wait_for(f"{RESOURCE} elsewhere",
                              lambda: [x for x in self.active(other) if x != where[0]], 120)
            time.sleep(0.3)
        finally:
            stop.touch()
            polls = Lab.client_finish(job, timeout=60)["polls"]
        secs, nfail = downtime(polls, t_fault)
        self.restore(fault, n)
        for f in (stop, ready, recovered):
            f.unlink(missing_ok=True)
        return {"fault": fault, "node": where[0], "dc_hit": dc == where[0], "seconds": secs,
                "failed_requests": nfail, "polls": len(polls)}

    def inject(self, fault: str, n: int) -> None:
        lab = self.lab
        if fault == "kill":
            # the agent starts glance-api as a session leader: kill that whole session at once
            lab.exec(n, ["sh", "-c", f"pkill -KILL -s \"$(cat {PIDFILE})\""])
        elif fault == "crash":
            lab.crash(n)
        elif fault == "standby":
            lab.exec(n, ["crm_standby", "-N", lab.node_name(n), "-v", "on"])
        elif fault == "partition":
            lab.isolate(n)
        else:
            raise ValueError(fault)

    def restore(self, fault: str, n: int) -> None:
        lab = self.lab
        if fault == "kill":
            lab.wait_settled(180, n)
            lab.exec(n, ["crm_resource", "--cleanup", "-r", RESOURCE], check=False)
        elif fault == "crash":
            lab.start(n, wait=False)
            lab.wait_cluster(120)
        elif fault == "standby":
            lab.exec(n, ["crm_standby", "-N", lab.node_name(n), "-v", "off"])
        elif fault == "partition":
            lab.heal(n)
            lab.wait_cluster(120)
        lab.wait_settled(180)
        where = wait_for("one active copy", lambda: len(self.active()) == 1 and self.active(), 120)
        wait_for("the API through the VIP",
                      lambda: lab.client_call("request", url=lab.image_url(True) + "/v2/images",
                                              token=self.token, request_timeout=3)["status"] == 200, 60)
        return where


def run_config(name: str, cfg: dict, faults, trials: int, log) -> dict:
    run_dir = tempfile.mkdtemp(prefix="glhf-", dir="/tmp")
    lab = Lab(prefix="f" + secrets.token_hex(2), run_dir=run_dir, token=cfg["token"], tied=True,
              log=lambda m: None)
    out = {"config": name, "settings": cfg, "trials": {f: [] for f in faults}}
    try:
        t = time.monotonic()
        lab.up()
        rc, data = lab.salt("ctl*", "saltutil.sync_all", timeout=300)
        if rc != 0:
            raise LabError(f"sync_all failed: {data}")
        pillar = {"glance_ha": {"cluster": {"monitor": cfg["monitor"]}}}
        rc, data = lab.salt("ctl*", "state.apply", "glance_ha", f"pillar={json.dumps(pillar)}", timeout=900)
        if rc != 0 or len(data) != lab.nodes:
            raise LabError(f"state.apply failed (rc {rc}): {str(data)[:3000]}")
        bench = Bench(lab, log, float(cfg["monitor"]["interval"].rstrip("s")))
        lab.wait_settled(180)
        bench.token = lab.admin_token()
        runtime, consensus = (lab.exec(1, ["corosync-cmapctl", "-g", f"runtime.config.totem.{k}"])
                              .stdout.split()[-1] for k in ("token", "consensus"))
        out["runtime"] = {"token_ms": int(runtime), "consensus_ms": int(consensus)}
        log(f"[{name}] lab up + apply in {time.monotonic() - t:.0f} s; corosync token {runtime} ms, "
            f"consensus {consensus} ms; monitor {cfg['monitor']}")
        for fault in faults:
            for i in range(trials):
                r = bench.trial(fault)
                out["trials"][fault].append(r)
                log(f"[{name}] {fault} #{i + 1}: {r['seconds']:.2f} s ({r['failed_requests']} failed "
                    f"requests, {r['node']}{', the DC' if r['dc_hit'] else ''})")
    finally:
        lab.down()
        shutil.rmtree(run_dir, ignore_errors=True)
    return out


def targets(cfg: dict) -> dict:
    interval = float(cfg["monitor"]["interval"].rstrip("s"))
    return {"crash": 8.0, "standby": 5.0, "kill": interval + 5.0}


def table(results, faults) -> str:
    names = [r["config"] for r in results]
    head = f"{'fault':10}" + "".join(f" | {n + ': p50 / p95 / max (n)':>36}" for n in names)
    lines = [head, "-" * len(head)]
    for f in faults:
        row = f"{f:10}"
        for r in results:
            v = [t["seconds"] for t in r["trials"].get(f, [])]
            cell = (f"{statistics.median(v):.2f} / {percentile(v, 0.95):.2f} / {max(v):.2f} s ({len(v)})"
                    if v else "-")
            row += f" | {cell:>36}"
        lines.append(row)
    lines.append("")
    for r in results:
        cfg, rt = r["settings"], r.get("runtime", {})
        lines.append(f"{r['config']}: corosync token {cfg['token']} ms (effective {rt.get('token_ms')} ms, "
                     f"consensus {rt.get('consensus_ms')} ms), glance monitor interval "
                     f"{cfg['monitor']['interval']} timeout {cfg['monitor']['timeout']}")
    rec = next((r for r in results if r["config"] == "recommended"), None)
    if rec:
        for f, limit in targets(rec["settings"]).items():
            v = [t["seconds"] for t in rec["trials"].get(f, [])]
            if v:
                p95 = percentile(v, 0.95)
                lines.append(f"target recommended {f}: p95 {p95:.2f} s <= {limit:.0f} s: "
                             f"{'yes' if p95 <= limit else 'NO'}")
    dc = [t for r in results for f in ("crash", "partition") for t in r["trials"].get(f, []) if t["dc_hit"]]
    lines.append(f"trials where the faulted node was the DC: {len(dc)}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--faults", default=",".join(FAULTS))
    ap.add_argument("--configs", default="recommended,seed")
    ap.add_argument("--json", help="also write the raw trials to this file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_failover: needs root", file=sys.stderr)
        return 1
    faults = [f for f in args.faults.split(",") if f]
    bad = [f for f in faults if f not in FAULTS] + [c for c in args.configs.split(",") if c not in CONFIGS]
    if bad:
        print(f"bench_failover: unknown {bad}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    results = []
    for name in args.configs.split(","):
        results.append(run_config(name, CONFIGS[name], faults, args.trials,
                                  lambda m: print(m, file=sys.stderr, flush=True)))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    print(f"\nfailover downtime of GET /v2/images through the public VIP, polled every 100 ms "
          f"({args.trials} trials per fault; {time.monotonic() - t0:.0f} s in all)\n")
    print(table(results, faults))
    return 0


if __name__ == "__main__":
    sys.exit(main())
