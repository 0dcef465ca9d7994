"""Benchmark: the lab (lab.lab.Lab) and the formula on it. Prints a table; asserts nothing.

  - lab bring-up (namespaces, services, cluster formed, minions connected), after install
  - state.apply glance_ha: first run on the three controllers at once, then a no-op rerun on each
    controller alone, against a bare `state.apply lab_empty` (an empty SLS) on the same minion
  - the lab's memory with glance-api running: RSS summed over every process (counts shared pages once
    per process) and PSS (shared pages split between processes)

Targets: bring-up <= 60 s, no-op apply <= 2x the empty apply, memory <= 2.5 GiB.
Run as root: `scripts/sandbox .venv/bin/python bench/bench_lab.py [--repeat N]`.
"""

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.lab import Lab


def timed(fn):
    t = time.monotonic()
    res = fn()
    return time.monotonic() - t, res


def changes(ret) -> int:
    return sum(1 for s in ret.values() if s.get("changes")) if isinstance(ret, dict) else -1


def failed(ret) -> int:
    return sum(1 for s in ret.values() if s.get("result") is False) if isinstance(ret, dict) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3, help="runs per controller for the no-op/empty applies")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_lab: needs root", file=sys.stderr)
        return 1
    run_dir = tempfile.mkdtemp(prefix="glhb-", dir="/tmp")
    lab = Lab(prefix="b" + secrets.token_hex(2), run_dir=run_dir, tied=True, log=lambda m: None)
    rows = []
    try:
        up, _ = timed(lab.up)
        for k in ("namespaces", "cluster formed", "minions answer", "services ready"):
            rows.append((f"bring-up: {k} (after the previous)", f"{lab.timings.get(k, 0):.1f} s", ""))
        rows.append(("bring-up total", f"{up:.1f} s", f"<= 60 s: {'yes' if up <= 60 else 'NO'}"))

        rc, data = lab.salt("ctl*", "saltutil.sync_all", timeout=300)
        first, (rc, data) = timed(lambda: lab.salt("ctl*", "state.apply", "glance_ha", timeout=900))
        for m, r in sorted(data.items()):
            secs = sum(float(s.get("duration") or 0) for s in r.values()) / 1000 if isinstance(r, dict) else 0
            rows.append((f"first apply {m} (concurrent)", f"{secs:.1f} s in states",
                         f"{changes(r)} changed, {failed(r)} failed"))
        rows.append(("first apply, all 3 at once (wall)", f"{first:.1f} s", f"rc {rc}"))
        lab.wait_settled(180)

        worst = 0.0
        for n in lab.node_range:
            name = lab.node_name(n)
            noop, empty, noop_changes = [], [], 0
            for _ in range(args.repeat):
                t, (_, d) = timed(lambda name=name: lab.salt(name, "state.apply", "glance_ha", timeout=600))
                noop.append(t)
                noop_changes += changes(d.get(name))
                t, _ = timed(lambda name=name: lab.salt(name, "state.apply", "lab_empty", timeout=600))
                empty.append(t)
            ratio = statistics.median(noop) / statistics.median(empty)
            worst = max(worst, ratio)
            rows.append((f"no-op apply {name} / empty SLS (median of {args.repeat})",
                         f"{statistics.median(noop):.2f} s / {statistics.median(empty):.2f} s",
                         f"x{ratio:.2f}, {noop_changes} changes"))
        rows.append(("no-op apply vs empty SLS, worst controller", f"x{worst:.2f}",
                     f"<= 2x: {'yes' if worst <= 2 else 'NO'}"))

        mem = lab.memory()
        for key, m in mem.items():
            rows.append((f"memory {key} ({m['procs']} processes)", f"RSS {m['rss'] / 2**20:.0f} MiB",
                         f"PSS {m['pss'] / 2**20:.0f} MiB"))
        rss = sum(m["rss"] for m in mem.values()) / 2**30
        pss = sum(m["pss"] for m in mem.values()) / 2**30
        verdict = "yes" if rss <= 2.5 else "PSS only" if pss <= 2.5 else "NO"
        rows.append(("memory, whole lab", f"RSS {rss:.2f} GiB", f"PSS {pss:.2f} GiB; <= 2.5 GiB: {verdict}"))
    finally:
        t, _ = timed(lab.down)
        rows.append(("teardown", f"{t:.1f} s", ""))
        shutil.rmtree(run_dir, ignore_errors=True)

    w = max(len(r[0]) for r in rows)
    print(f"\n{'measure':{w}}  {'value':>28}  notes")
    for a, b, c in rows:
        print(f"{a:{w}}  {b:>28}  {c}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
