#!/usr/bin/env python3
"""Benchmark: glance_ha.cluster's crm states versus a naive one-`crm configure`-per-object approach.

One run, on copies of the same seeded CIB file (CIB_file; stonith-enabled=false, as the lab seeds it):

* formula: the crm.configured state that glance_ha.cluster renders from pillar.example (with VIPs
  in 198.51.100.0/24), run in-process through Salt's Caller (state.high): a first apply on an
  empty CIB, then a no-op rerun;
* naive: the same objects, one crmsh process per object, guarded by a `crm configure show <id>`
  check (the usual `cmd.run ... unless:` pattern): a first apply, then the no-op rerun.

Processes spawned are real counts: the benchmark runs in its own PID namespace and reads
/proc/sys/kernel/ns_last_pid before and after each phase (every process the phase forks, shells
and agents included). A PATH shim dir logs every Pacemaker tool exec, which gives CIB reads and
CIB-writing processes. Wall time is per phase; the ratio is against the naive run of the same run.

Targets: no-op rerun = 1 CIB read, 0 writes, >= 5x faster than the naive rerun; the first apply
spawns at most 2 CIB-writing processes.

    scripts/sandbox .venv/bin/python bench/bench_cluster.py     (re-executes itself in the sandbox)
"""

import copy
import logging
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOOLS = ("cibadmin", "crm_verify", "crm_diff", "crm_resource", "crmadmin", "crm_node", "crm",
         "crm_attribute", "crm_mon", "crm_simulate")
WRITE_FLAGS = {"cibadmin": {"--patch", "-P", "--replace", "-R", "--modify", "-M", "--create", "-C", "--delete",
                            "-D", "--erase", "-E", "--bump", "-B"},
               "crm_resource": {"--set-parameter", "-p", "--delete-parameter", "-d", "--restart", "--ban",
                                "--clear", "--move", "--cleanup"},
               "crm_attribute": {"--update", "-v", "--delete", "-D"}}
SEED = ('<cluster_property_set id="cib-bootstrap-options">'
        '<nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>'
        '<nvpair id="cib-bootstrap-options-no-quorum-policy" name="no-quorum-policy" value="ignore"/>'
        '</cluster_property_set>')


def reexec_isolated():
    """Run inside scripts/sandbox (COW /usr/lib/ocf for the agent) and a fresh PID namespace."""
    if os.environ.get("BENCH_CLUSTER_PIDNS") == "1":
        return
    os.environ["BENCH_CLUSTER_PIDNS"] = "1"
    cmd = ["unshare", "--pid", "--fork", "--kill-child", sys.executable, *sys.argv]
    if os.environ.get("GLANCE_HA_SANDBOX") != "1":
        cmd = [str(ROOT / "scripts" / "sandbox"), *cmd]
    os.execvp(cmd[0], cmd)


def last_pid():
    with open("/proc/sys/kernel/ns_last_pid", encoding="ascii") as handle:
        return int(handle.read())


def make_shims(shim_dir, log_path):
    for tool in TOOLS:
        real = shutil.which(tool)
        if not real:
            continue
        script = shim_dir / tool
        # printf and >> are shell built-ins and exec replaces the shell: the shim adds no process.
        script.write_text(f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" >> "{log_path}"\nexec {real} "$@"\n')
        script.chmod(0o755)


def install_agent():
    dest = pathlib.Path("/usr/lib/ocf/resource.d/openstack")
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "glance_ha" / "files" / "glance-api", dest / "glance-api")
    (dest / "glance-api").chmod(0o755)
    ok = subprocess.run(["crm_resource", "--show-metadata", "ocf:openstack:glance-api"], capture_output=True,
                        text=True, check=False)
    if ok.returncode != 0 or 'name="config"' not in ok.stdout:
        shutil.copyfile(ROOT / "test" / "functional" / "crm" / "standin-glance-api", dest / "glance-api")
        return "stand-in agent"
    return "project agent"


class Phase:
    def __init__(self, log_path):
        self.log_path = log_path

    def __enter__(self):
        self.log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.pid0 = last_pid()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self.processes = last_pid() - self.pid0
        with open(self.log_path, encoding="utf-8") as handle:
            handle.seek(self.log_start)
            lines = [line.split() for line in handle.read().splitlines() if line.strip()]
        self.tools = len(lines)
        self.reads = sum(1 for w in lines if w[0] == "cibadmin" and "--query" in _flags(w[1:]))
        self.writes = sum(1 for w in lines if WRITE_FLAGS.get(w[0], set()) & _flags(w[1:]))


def _flags(args):
    """Long options as given, short option clusters split (crmsh runs e.g. `cibadmin -Ql`)."""
    out = set()
    for arg in args:
        if arg.startswith("--"):
            out.add(arg.split("=", 1)[0])
        elif arg.startswith("-") and len(arg) > 1:
            out.update(f"-{c}" for c in arg[1:])
    if "-Q" in out:
        out.add("--query")
    return out


def salt_caller(tmp, pillar):
    import salt.client
    import salt.config
    import yaml

    logging.getLogger("salt").setLevel(logging.CRITICAL)  # e.g. sysvinit probes while rendering config.sls
    # The state tree holds only the formula (a file_roots with the checkout's .venv in it would make
    # Salt's fileserver walk thousands of files on every run).
    (tmp / "states").mkdir()
    (tmp / "states" / "glance_ha").symlink_to(ROOT / "glance_ha")
    (tmp / "pillar").mkdir()
    (tmp / "pillar" / "top.sls").write_text("base:\n  '*':\n    - glance_ha\n")
    (tmp / "pillar" / "glance_ha.sls").write_text(yaml.safe_dump(pillar))
    conf = {"id": "bench-minion", "root_dir": str(tmp / "salt"), "file_client": "local",
            "file_roots": {"base": [str(tmp / "states")]}, "pillar_roots": {"base": [str(tmp / "pillar")]},
            "module_dirs": [str(ROOT / "_modules")], "states_dirs": [str(ROOT / "_states")],
            "utils_dirs": [str(ROOT / "_utils")],
            "log_level": "quiet", "log_file": str(tmp / "minion.log")}
    (tmp / "minion").write_text(yaml.safe_dump(conf))
    return salt.client.Caller(mopts=salt.config.minion_config(str(tmp / "minion")))


def crm_high(caller):
    """The crm states of glance_ha.cluster, requisites on non-crm states (agent, config) dropped."""
    shown = caller.cmd("state.show_sls", "glance_ha.cluster")
    if not isinstance(shown, dict):
        raise SystemExit(f"glance_ha.cluster does not render: {shown}")
    high = {}
    for sid, body in shown.items():
        if not isinstance(body, dict) or "crm" not in body:
            continue
        args = []
        for arg in body["crm"]:
            if isinstance(arg, dict) and next(iter(arg)) in ("require", "onchanges", "watch"):
                key = next(iter(arg))
                reqs = [r for r in arg[key] if isinstance(r, dict) and "crm" in r]
                if reqs:
                    args.append({key: reqs})
                continue
            args.append(arg)
        high[sid] = {"crm": args, "__sls__": body.get("__sls__", "glance_ha.cluster"), "__env__": "base"}
    return high


def objects_of(high):
    """The object list of every crm.configured state (the items of glance_ha.cluster)."""
    out = []
    for body in high.values():
        if "configured" not in body["crm"]:
            continue
        for arg in body["crm"]:
            if isinstance(arg, dict) and "objects" in arg:
                out += arg["objects"]
    return out


def naive_commands(objects):
    """The same objects as crmsh commands: (id, crm configure arguments)."""
    out = []
    for obj in objects:
        kind = next(k for k in ("primitive", "colocation", "order", "property", "absent") if k in obj)
        name = obj[kind]
        if kind == "primitive":
            words = ["primitive", name, obj["agent"]]
            if obj.get("params"):
                words += ["params"] + [f"{k}={v}" for k, v in obj["params"].items()]
            if obj.get("meta"):
                words += ["meta"] + [f"{k}={v}" for k, v in obj["meta"].items()]
            for op in obj.get("ops") or []:
                words += ["op", op["name"]] + [f"{k}={v}" for k, v in op.items() if k != "name"]
        elif kind == "colocation":
            words = ["colocation", name, f"{obj.get('score', 'inf')}:", obj["rsc"], obj["with_rsc"]]
        elif kind == "order":
            words = ["order", name, f"{obj.get('kind', 'Mandatory')}:", obj["first"], obj["then"]]
        elif kind == "property":
            section = {"rsc_defaults": "rsc_defaults", "op_defaults": "op_defaults"}.get(obj.get("type"), "property")
            words = [section] + [f"{k}={v}" for k, v in obj["properties"].items()]
            name = next(iter(obj["properties"]))
        else:
            continue
        out.append((name, [str(w) for w in words]))
    return out


def run_naive(commands, check_word):
    """One `crm configure show <id>` per object; create the missing ones with one crm process each."""
    created = 0
    for name, words in commands:
        shown = subprocess.run(["crm", "configure", "show", check_word.get(name, name)], capture_output=True,
                               text=True, check=False)
        if shown.returncode == 0 and name in shown.stdout:
            continue
        proc = subprocess.run(["crm", "configure", *words], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"naive: crm configure {' '.join(words)} failed: {proc.stdout}{proc.stderr}")
        created += 1
    return created


def seed_cib(path):
    path.write_text(subprocess.run(["cibadmin", "--empty"], capture_output=True, text=True, check=True).stdout)
    env = dict(os.environ, CIB_file=str(path))
    subprocess.run(["cibadmin", "--create", "--scope", "crm_config", "--xml-text", SEED], env=env, check=True)


def main():
    reexec_isolated()
    import yaml

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    try:
        agent = install_agent()
        shim_dir, log_path = tmp / "shims", tmp / "exec.log"
        shim_dir.mkdir()
        log_path.write_text("")
        make_shims(shim_dir, log_path)
        os.environ["PATH"] = f"{shim_dir}:{os.environ['PATH']}"

        pillar = copy.deepcopy(yaml.safe_load((ROOT / "pillar.example").read_text()))
        pillar["glance_ha"]["vip"].update({"internal": "198.51.100.10", "public": "198.51.100.11", "nic": "eth0"})
        caller = salt_caller(tmp, pillar)
        high = crm_high(caller)
        seed = tmp / "seed.xml"
        seed_cib(seed)

        ours_cib, naive_cib = tmp / "formula.xml", tmp / "naive.xml"
        shutil.copyfile(seed, ours_cib)
        shutil.copyfile(seed, naive_cib)
        rows = {}

        os.environ["CIB_file"] = str(ours_cib)
        for phase in ("first apply", "no-op rerun"):
            with Phase(log_path) as ph:
                ret = caller.cmd("state.high", high)
            bad = [v["comment"] for v in ret.values() if v["result"] is False]
            if bad:
                raise SystemExit(f"formula run failed: {bad}")
            ph.changes = sum(len(v["changes"]) for v in ret.values())  # objects changed
            rows[("formula", phase)] = ph
        verify = subprocess.run(["crm_verify", "--xml-file", str(ours_cib)], capture_output=True, text=True,
                                check=False)

        os.environ["CIB_file"] = str(naive_cib)
        commands = naive_commands(objects_of(high))
        check_word = {"resource-stickiness": "type:rsc_defaults"}
        for phase in ("first apply", "no-op rerun"):
            with Phase(log_path) as ph:
                ph.changes = run_naive(commands, check_word)
            rows[("naive", phase)] = ph
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"bench_cluster: glance_ha.cluster crm states ({len(high)} state(s), {len(commands)} objects)"
          f" vs naive crmsh, CIB_file, {agent}; crm_verify of the formula's CIB:"
          f" {'valid' if verify.returncode == 0 else 'INVALID'}")
    header = f"{'approach':<9} {'phase':<12} {'wall s':>7} {'x naive':>8} {'procs':>6} {'pcmk execs':>10}" \
             f" {'CIB reads':>9} {'CIB writes':>10} {'changes':>7}"
    print(header)
    print("-" * len(header))
    for (who, phase), ph in rows.items():
        ratio = rows[("naive", phase)].seconds / ph.seconds if ph.seconds else float("inf")
        print(f"{who:<9} {phase:<12} {ph.seconds:7.2f} {ratio:8.1f} {ph.processes:6d} {ph.tools:10d}"
              f" {ph.reads:9d} {ph.writes:10d} {ph.changes:7d}")
    rerun, first = rows[("formula", "no-op rerun")], rows[("formula", "first apply")]
    speed = rows[("naive", "no-op rerun")].seconds / rerun.seconds
    checks = [("no-op rerun: 1 CIB read", rerun.reads == 1), ("no-op rerun: 0 CIB writes", rerun.writes == 0),
              (f"no-op rerun >= 5x faster than naive ({speed:.1f}x)", speed >= 5),
              (f"first apply <= 2 CIB-writing processes ({first.writes})", first.writes <= 2)]
    print("targets: " + "; ".join(f"{text}: {'met' if ok else 'MISSED'}" for text, ok in checks))
    print("wall s: formula = one in-process Salt state run (state.high, Salt's own per-run set-up included),"
          " naive = its crm processes; procs = every process the phase forked (PID namespace counter);"
          " pcmk execs = Pacemaker/crmsh tool execs (PATH shim), from which CIB reads and writes;"
          " changes = objects changed.")


if __name__ == "__main__":
    main()
