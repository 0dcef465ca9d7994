#!/usr/bin/env python3
"""Benchmark: glance_ha.endpoints (keystone_catalog states) versus the seed's method, on one real Keystone.

One run, one Keystone 30 (lab.services: MariaDB + Keystone under gunicorn on random 127.0.0.1 ports):

* formula: `state.sls glance_ha.endpoints` (glance_ha/endpoints/init.sls) with pillar.example pointed
  at this Keystone; a first apply (empty catalog -> service + 3 endpoints), then no-op reruns,
  measured two ways:
    - in-process: one Salt state run through salt.client.Caller (SLS rendering, map.jinja and Salt's
      per-run set-up included) -- the cost inside a highstate;
    - salt-call: `salt-call --local state.sls glance_ha.endpoints` as a process (Python and Salt start-up
      included) -- the cost as a one-off command, like the CLI below;
* seed: the HA guide's method, `openstack endpoint list` + three `openstack endpoint create` (public,
  internal, admin), each a process, credentials in the environment (not argv). It is not idempotent: on
  the existing catalog it creates three duplicates, which the benchmark then deletes by id.

HTTP requests are real counts: Salt and the CLI both talk to Keystone through a counting proxy
(lab/httpcount.py; the CLI via OS_IDENTITY_ENDPOINT_OVERRIDE), which records every
request Keystone receives. Wall time is the median of --runs runs; ratios are against the seed's method
in the same run.

Targets: no-op rerun >= 10x faster than the seed's method (the states' own time, i.e. their cost inside a
highstate; the whole commands are printed too), with 1 token request, <= 2 reads, 0 writes.

    scripts/sandbox .venv/bin/python bench/bench_endpoints.py [--runs 3] [--state-dir DIR]
    (--state-dir: reuse/keep a lab.services state dir; default: a temporary one, stopped at the end)
"""

import argparse
import copy
import json
import logging
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml

from lab import services as lab_services
from lab.httpcount import CountingProxy

OPENSTACK = ROOT / ".venv-os" / "bin" / "openstack"
SALT_CALL = ROOT / ".venv" / "bin" / "salt-call"
SLS = "glance_ha.endpoints"
URLS = {"public": "http://203.0.113.11:9292", "internal": "http://10.0.0.11:9292", "admin": "http://10.0.0.11:9292"}


def merge(base, over):
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def minion_dir(tmp, keystone, proxy):
    pillar = yaml.safe_load((ROOT / "pillar.example").read_text())
    pillar = merge(pillar, {"glance_ha": {
        "keystone": {"auth_url": proxy.url + "/v3", "region": keystone.region,
                     "admin": {"username": keystone.admin_user, "password": keystone.admin_password,
                               "project_name": keystone.admin_project}},
        "cluster": {"manage": False, "writer": "bench-minion"},   # no managed cluster: the writer is named
        "endpoints": dict(URLS, manage=True)}})
    (tmp / "pillar").mkdir(parents=True)
    (tmp / "pillar" / "top.sls").write_text("base:\n  '*':\n    - glance_ha\n")
    (tmp / "pillar" / "glance_ha.sls").write_text(yaml.safe_dump(pillar))
    conf = {"id": "bench-minion", "root_dir": str(tmp), "file_client": "local",
            "file_roots": {"base": [str(ROOT)]}, "pillar_roots": {"base": [str(tmp / "pillar")]},
            "module_dirs": [str(ROOT / "_modules")], "states_dirs": [str(ROOT / "_states")],
            "utils_dirs": [str(ROOT / "_utils")],
            "log_file": str(tmp / "minion.log"), "log_level_logfile": "warning"}
    (tmp / "minion").write_text(yaml.safe_dump(conf))
    return tmp


class Phase:
    def __init__(self, who, what):
        self.who, self.what = who, what
        self.seconds, self.own, self.counts, self.changes = [], [], None, 0


def record(phase, ret, seconds, proxy):
    """Check a state return; record wall time, the states' own time (Salt's per-state `duration`),
    the number of states with changes and the HTTP requests Keystone received."""
    if not isinstance(ret, dict):
        raise SystemExit(f"bench_endpoints: state run failed: {ret}")
    bad = [v.get("comment") for v in ret.values() if v.get("result") is False]
    if bad:
        raise SystemExit(f"bench_endpoints: state failed: {bad}")
    phase.seconds.append(seconds)
    phase.own.append(sum(float(v.get("duration", 0)) for v in ret.values()) / 1000)
    phase.changes = sum(1 for v in ret.values() if v.get("changes"))
    phase.counts = proxy.counts()


def run_inprocess(caller, proxy, phase, runs):
    for _ in range(runs):
        proxy.reset()
        start = time.monotonic()
        ret = caller.cmd("state.sls", SLS)
        record(phase, ret, time.monotonic() - start, proxy)
    return phase


def run_salt_call(cfg, proxy, phase, runs):
    env = dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning")
    for _ in range(runs):
        proxy.reset()
        start = time.monotonic()
        out = subprocess.run([str(SALT_CALL), "--config-dir", str(cfg), "--local", "--out=json",
                              "--retcode-passthrough", "state.sls", SLS], env=env, capture_output=True,
                             text=True, check=False)
        seconds = time.monotonic() - start
        if out.returncode:
            raise SystemExit(f"bench_endpoints: salt-call failed ({out.returncode}): {out.stderr[-500:]}")
        record(phase, json.loads(out.stdout)["local"], seconds, proxy)
    return phase


def cli_env(keystone, proxy):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(PYTHONWARNINGS="ignore", OS_AUTH_URL=proxy.url + "/v3", OS_IDENTITY_API_VERSION="3",
               OS_USERNAME=keystone.admin_user, OS_PASSWORD=keystone.admin_password,
               OS_PROJECT_NAME=keystone.admin_project, OS_USER_DOMAIN_NAME=keystone.domain,
               OS_PROJECT_DOMAIN_NAME=keystone.domain, OS_REGION_NAME=keystone.region,
               OS_INTERFACE="public", OS_IDENTITY_ENDPOINT_OVERRIDE=proxy.url + "/v3")
    return env


def openstack(env, *args):
    out = subprocess.run([str(OPENSTACK), *args], env=env, capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(f"bench_endpoints: openstack {args[:2]} failed: {out.stderr.strip()[-300:]}")
    return out.stdout


def run_seed(keystone, proxy, phase, runs):
    env = cli_env(keystone, proxy)
    for _ in range(runs):
        proxy.reset()
        start = time.monotonic()
        openstack(env, "endpoint", "list", "--service", "image", "-f", "value")
        created = [openstack(env, "endpoint", "create", "--region", keystone.region, "-f", "value", "-c", "id",
                             "image", iface, url).strip() for iface, url in URLS.items()]
        phase.seconds.append(time.monotonic() - start)
        phase.own.append(phase.seconds[-1])
        phase.counts = proxy.counts()
        phase.changes = len(created)
        for endpoint_id in created:          # the seed's method made duplicates: remove them again
            status = keystone.request("DELETE", f"/v3/endpoints/{endpoint_id}")[0]
            if status != 204:
                raise SystemExit(f"bench_endpoints: could not delete duplicate {endpoint_id}: HTTP {status}")
    return phase


def catalog_image_endpoints(keystone):
    services = keystone.request("GET", "/v3/services?type=image")[2]["services"]
    eps = []
    for svc in services:
        eps += keystone.request("GET", f"/v3/endpoints?service_id={svc['id']}")[2]["endpoints"]
    return len(services), sorted((e["interface"], e["url"], e["region_id"]) for e in eps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--state-dir", help="lab.services state dir to use (kept running); default: temporary")
    args = parser.parse_args()
    if os.environ.get("GLANCE_HA_SANDBOX") != "1" and os.geteuid() == 0:
        os.execv(str(ROOT / "scripts" / "sandbox"), [str(ROOT / "scripts" / "sandbox"), sys.executable, *sys.argv])
    reason = lab_services.missing(rabbit=False)
    if reason:
        raise SystemExit(f"bench_endpoints: cannot start Keystone here: {reason}")
    logging.basicConfig(level=logging.WARNING)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-ep-"))
    os.chmod(tmp, 0o700)
    state_dir = pathlib.Path(args.state_dir) if args.state_dir else tmp / "svc"
    svc = lab_services.Services(state_dir, rabbit=False)
    t0 = time.monotonic()
    try:
        svc.up()
        keystone = svc.keystone
        startup = time.monotonic() - t0
        # a clean slate: no image service
        for s in keystone.request("GET", "/v3/services?type=image")[2]["services"]:
            for e in keystone.request("GET", f"/v3/endpoints?service_id={s['id']}")[2]["endpoints"]:
                keystone.request("DELETE", f"/v3/endpoints/{e['id']}")
            keystone.request("DELETE", f"/v3/services/{s['id']}")
        with CountingProxy(keystone.url) as proxy:
            cfg = minion_dir(tmp / "minion", keystone, proxy)
            import salt.client
            import salt.config
            caller = salt.client.Caller(mopts=salt.config.minion_config(str(cfg / "minion")))
            first = run_inprocess(caller, proxy, Phase("formula", "first apply"), 1)
            after_first = catalog_image_endpoints(keystone)
            noop = run_inprocess(caller, proxy, Phase("formula", "no-op (in-process)"), args.runs)
            baseline = []
            for _ in range(args.runs):
                start = time.monotonic()
                caller.cmd("state.single", "test.nop", "baseline")
                baseline.append(time.monotonic() - start)
            noop_cli = run_salt_call(cfg, proxy, Phase("formula", "no-op (salt-call)"), args.runs)
            seed = run_seed(keystone, proxy, Phase("seed", "list + 3 create"), args.runs)
            after = catalog_image_endpoints(keystone)
    finally:
        if not args.state_dir:
            svc.down()
        shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(seed.seconds)
    med = statistics.median
    print(f"bench_endpoints: {SLS} vs the seed's `openstack endpoint list` + 3x `endpoint create` "
          f"(Keystone 30 on 127.0.0.1, started in {startup:.1f} s; median of {args.runs} runs)")
    header = (f"{'method':<8} {'phase':<20} {'wall s':>7} {'speedup':>8} {'states s':>9} {'speedup':>8} "
              f"{'token':>6} {'reads':>6} {'writes':>7} {'changes':>8}")
    print(header)
    print("-" * len(header))
    for ph in (first, noop, noop_cli, seed):
        print(f"{ph.who:<8} {ph.what:<20} {med(ph.seconds):7.2f} {base / med(ph.seconds):7.1f}x "
              f"{med(ph.own):9.3f} {base / med(ph.own):7.1f}x {ph.counts['token']:6d} {ph.counts['read']:6d} "
              f"{ph.counts['write']:7d} {ph.changes:8d}")
    print(f"{'salt':<8} {'test.nop (baseline)':<20} {med(baseline):7.2f}   (Salt's fixed cost of any in-process "
          "state run: pillar compile, loaders; not part of the endpoints states)")
    checks = [
        (">= 10x faster than the seed (no-op, the states' own time)", base / med(noop.own) >= 10),
        ("no-op: 1 token, <= 2 reads, 0 writes, 0 changes",
         all(p.counts["token"] == 1 and p.counts["read"] <= 2 and p.counts["write"] == 0 and p.changes == 0
             for p in (noop, noop_cli))),
        ("catalog unchanged by the benchmark (seed duplicates removed)", after == after_first and after[0] == 1
         and len(after[1]) == 3),
    ]
    print("targets: " + "; ".join(f"{text}: {'met' if ok else 'MISSED'}" for text, ok in checks))
    print(f"(whole commands, Salt's own start-up included: in-process state.sls {base / med(noop.seconds):.1f}x, "
          f"salt-call {base / med(noop_cli.seconds):.1f}x faster than the seed's four CLI processes)")
    print("states s = the keystone_catalog states' own time (sum of Salt's per-state `duration`: their cost inside "
          "a highstate); wall s = the whole command (seed: 4 CLI processes). changes = states with changes "
          "(formula) or endpoints created (seed: duplicates, deleted afterwards). token/reads/writes = HTTP "
          "requests Keystone received (counting proxy).")
    return 0 if all(ok for _t, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
