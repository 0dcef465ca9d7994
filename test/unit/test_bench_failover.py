"""bench/bench_failover.py's arithmetic: downtime, outages of a mode switch, CPU from /proc/<pid>/stat."""

import importlib.util
import math
import os
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_failover.py"
spec = importlib.util.spec_from_file_location("bench_failover", BENCH)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def polls(*spans):
    """[[start, end, status]] every 0.1 s from 0 to 10 s; failed where a span (a, b) covers the start."""
    out = []
    for i in range(100):
        t = round(i * 0.1, 1)
        out.append([t, t + 0.05, 0 if any(a <= t < b for a, b in spans) else 200])
    return out


def test_one_outage_is_the_downtime_of_a_fault():
    p = polls((2.0, 3.0))
    secs, failed = bench.downtime(p, 1.8)
    assert math.isclose(secs, 1.05) and failed == 10
    assert [(round(a, 2), round(s, 2)) for a, s in bench.outages(p, 0)] == [(2.0, 1.05)]


def test_a_switch_with_two_outages_sums_them():
    p = polls((2.0, 2.5), (5.0, 6.0))
    got = bench.outages(p, 1.0)
    assert [round(a, 2) for a, _ in got] == [2.0, 5.0]
    assert math.isclose(sum(s for _, s in got), 0.55 + 1.05)
    assert bench.outages(polls(), 0) == []


def test_an_outage_that_never_ends_is_infinite():
    assert bench.outages(polls((9.0, 20.0)), 0) == [(9.0, math.inf)]


def stat(pid, comm, utime, stime, cutime, cstime, start):
    fields = ["S", "1", "1", "1", "0", "-1", "0"] + ["0"] * 4 + [str(utime), str(stime), str(cutime),
                                                                   str(cstime)] + ["20", "0", "1", "0", str(start)]
    return f"{pid} ({comm}) " + " ".join(fields)


def test_cpu_groups_and_execd_children_as_monitors():
    assert bench.cpu_sample(stat(5, "corosync", 7, 3, 9, 9, 100), "corosync -f") == ("corosync", 10, 0, 100)
    assert bench.cpu_sample(stat(6, "pacemaker-execd", 1, 1, 40, 10, 101), "") == ("pacemaker", 2, 50, 101)
    assert bench.cpu_sample(stat(7, "gunicorn", 2, 2, 0, 0, 102), "/v/bin/gunicorn glance")[0] == "glance-api"
    assert bench.cpu_sample(stat(8, "salt-minion", 2, 2, 0, 0, 103), "salt-minion")[0] is None


def test_cpu_per_minute_takes_deltas_and_new_processes_whole():
    tick = os.sysconf("SC_CLK_TCK")
    before = {5: ("corosync", 100, 0, 1), 6: ("pacemaker", 10, 50, 1), 9: ("glance-api", 30, 0, 1)}
    after = {5: ("corosync", 100 + tick, 0, 1), 6: ("pacemaker", 10, 50 + 2 * tick, 1),
             9: ("glance-api", tick, 0, 2)}   # pid 9 reused: a new process, counted whole
    got = bench.cpu_per_minute(before, after, 30.0)
    assert got == {"corosync": 2.0, "pacemaker": 0.0, "monitors": 4.0, "glance-api": 2.0}
