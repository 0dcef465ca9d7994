"""Benchmark: what the formula costs against the number of controllers (3, 4, 5), on the lab (lab.lab.Lab).

One lab at a time, each torn down before the next, in the mode of LAB_MODE (default active-passive;
--modes for both). On each:

  - first highstate: from bare, every controller at once (saltutil.sync_all, then state.apply glance_ha
    on ctl*, as test/ha's first_apply), wall time and wall time per controller;
  - no-op highstate: every controller at once, then the DC (the writer) alone;
  - CIB writes per run: the CIB's (admin_epoch, epoch, num_updates) from `cibadmin --query` before and
    after (epoch counts configuration writes, num_updates status updates and restarts at each new
    epoch), and the formula's own CIB-writing tool runs;
  - CIB reads per run: the formula's whole-CIB reads (`cibadmin --query`), counted from the
    "crm: running ..." lines its one Pacemaker tool runner (_utils/pcmk_tools.py) writes to every
    minion's debug log, as test_one_cib_read_per_run does (reads by Pacemaker itself, its agents or
    crm_mon are not the formula's and are not counted); summed over the controllers, and attributed to
    the Salt state that ran them;
  - Keystone requests per run (token / read / write, lab.httpcount.classify): read off the wire on the
    services namespace's eth0 (an AF_PACKET socket with a BPF filter for TCP to port 5000), every HTTP
    request line that reaches Keystone, from any controller. The lab's Keystone keeps no access log and
    the controllers talk to it directly; sniffing adds nothing to their path, so it changes no timing;
  - memory with glance running: PSS per controller (mean of ctl1..N) and of the whole lab (Lab.memory).

Prints one table, then the ratios against the 3-controller row (linear growth would be N/3). Asserts
nothing. Run as root, under the heavy lock:
`flock /tmp/ghf-heavy.lock scripts/sandbox .venv/bin/python bench/bench_scale.py [--sizes 3,4,5]
[--modes active-passive,active-active] [--json FILE]`.
"""

import argparse
import collections
import ctypes
import json
import os
import secrets
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_cluster import WRITE_FLAGS, _flags  # bench/ is sys.path[0] when a bench runs
from bench_lab import changes, failed, timed

from lab.httpcount import classify
from lab.lab import MODES, Lab, LabError

KEYSTONE_PORT = 5000
RUNNING = "crm: running "
EXECUTING, COMPLETED = "Executing state ", "Completed state ["
CLONE_NEWNET = 0x40000000
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
METHODS = {b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE"}


def tcp_dport_filter(port):
    """Classic BPF: IPv4, TCP, not a fragment, destination port ``port`` (what `tcpdump -dd 'ip and tcp
    dst port N'` compiles to)."""
    prog = [(0x28, 0, 0, 12), (0x15, 0, 8, 0x0800),     # ethertype IPv4, else drop
            (0x30, 0, 0, 23), (0x15, 0, 6, 6),           # protocol TCP, else drop
            (0x28, 0, 0, 20), (0x45, 4, 0, 0x1FFF),      # a fragment: drop
            (0xB1, 0, 0, 14), (0x48, 0, 0, 16),          # x = IP header length; destination port
            (0x15, 0, 1, port), (0x06, 0, 0, 0x40000), (0x06, 0, 0, 0)]
    return b"".join(struct.pack("HBBI", *ins) for ins in prog), len(prog)


def request_line(frame):
    """(source address, source port, sequence number, method, path) of an Ethernet frame that carries
    the start of an HTTP request, else None."""
    ip = frame[14:]
    if len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    ip = ip[:struct.unpack("!H", ip[2:4])[0]]  # without the Ethernet padding
    tcp = ip[(ip[0] & 0x0F) * 4:]
    if len(tcp) < 20:
        return None
    sport, _dport, seq = struct.unpack("!HHI", tcp[:8])
    words = tcp[(tcp[12] >> 4) * 4:].split(b"\r\n", 1)[0].split(b" ")
    if len(words) != 3 or words[0] not in METHODS or not words[2].startswith(b"HTTP/"):
        return None
    return socket.inet_ntoa(ip[12:16]), sport, seq, words[0].decode(), words[1].decode("latin-1")


class KeystoneRequests:
    """Every HTTP request arriving on ``iface`` of network namespace ``netns`` for TCP port ``port``:
    [(source address, method, path)] in order of arrival (a retransmitted segment counted once)."""

    def __init__(self, netns, iface="eth0", port=KEYSTONE_PORT):
        self._requests, self._seen, self._lock = [], set(), threading.Lock()
        self._stop, ready, self._error = threading.Event(), threading.Event(), None
        self._thread = threading.Thread(target=self._run, args=(netns, iface, port, ready), daemon=True,
                                        name="keystone-requests")
        self._thread.start()
        ready.wait(10)
        if self._error or not ready.is_set():
            raise LabError(f"cannot read requests in {netns}: {self._error or 'no answer in 10 s'}")

    def _run(self, netns, iface, port, ready):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            with open(f"/run/netns/{netns}", "rb") as handle:  # this thread only: setns is per thread
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            code, length = tcp_dport_filter(port)
            buf = ctypes.create_string_buffer(code)
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", length, ctypes.addressof(buf)))
            sock.bind((iface, 0))
            sock.settimeout(0.2)
        except OSError as exc:
            self._error = exc
            ready.set()
            return
        ready.set()
        with sock:
            while not self._stop.is_set():
                try:
                    frame, addr = sock.recvfrom(65536)
                except TimeoutError:
                    continue
                req = request_line(frame) if addr[2] != PACKET_OUTGOING else None
                if req:
                    with self._lock:
                        if req[:3] not in self._seen:
                            self._seen.add(req[:3])
                            self._requests.append((req[0], req[3], req[4]))

    def take(self):
        """The requests since the last take()."""
        with self._lock:
            out, self._requests = self._requests, []
        return out

    def stop(self):
        self._stop.set()
        self._thread.join(5)


def cib_version(lab):
    """(admin_epoch, epoch, num_updates) of the CIB, from `cibadmin --query` on a live controller."""
    root = ET.fromstring(lab.exec(lab.live_nodes()[0], ["cibadmin", "--query"], timeout=60).stdout)
    return tuple(int(root.get(k, 0)) for k in ("admin_epoch", "epoch", "num_updates"))


def minion_log(lab, n):
    return lab.node_dir(n) / "log/salt/minion"


def tool_runs(lab, offsets):
    """[(state, argv)] of every Pacemaker tool the formula ran on any controller since ``offsets`` (log
    sizes); state: the function of the Salt state that was executing (Salt's "Executing state" line),
    or "-" outside one (SLS rendering, requisites)."""
    out = []
    for n, start in offsets.items():
        with open(minion_log(lab, n), encoding="utf-8", errors="replace") as handle:
            handle.seek(start)
            state = "-"
            for line in handle.read().splitlines():
                if EXECUTING in line:
                    state = line.split(EXECUTING, 1)[1].split(" for [", 1)[0]
                elif COMPLETED in line:
                    state = "-"
                elif RUNNING in line:
                    out.append((state, line.split(RUNNING, 1)[1].split()))
    return out


def is_cib_read(argv):
    """A read of the whole CIB (not of its version: `--xpath /cib --no-children`)."""
    return argv[0] == "cibadmin" and "--query" in _flags(argv[1:]) and "--xpath" not in argv


class Measured:
    """Wall time, CIB version delta, the formula's CIB reads/writes and Keystone's requests of one run."""

    def __init__(self, lab, keystone):
        self.lab, self.keystone = lab, keystone

    def run(self, target, settle=False):
        lab = self.lab
        v0 = cib_version(lab)
        offsets = {n: minion_log(lab, n).stat().st_size for n in lab.node_range}
        self.keystone.take()
        seconds, (rc, data) = timed(lambda: lab.salt(target, "state.apply", "glance_ha", timeout=900))
        if settle:
            lab.wait_settled(180)
        time.sleep(1)  # the minions' last log lines and Keystone's last packets
        v1 = cib_version(lab)
        runs, requests = tool_runs(lab, offsets), self.keystone.take()
        names = {lab.node_addr(n): lab.node_name(n) for n in lab.node_range}
        ks = {"token": 0, "read": 0, "write": 0}
        writers = set()
        for src, method, path in requests:
            kind = classify(method, path)
            ks[kind] += 1
            if kind == "write":
                writers.add(names.get(src, src))
        rets = data.values() if isinstance(data, dict) else []
        return {"seconds": seconds, "rc": rc, "minions": len(data) if isinstance(data, dict) else 0,
                "changed": sum(changes(r) for r in rets), "failed": sum(failed(r) for r in rets),
                "cib_before": v0, "cib_after": v1, "epoch_delta": (v1[0] - v0[0]) * 10**6 + v1[1] - v0[1],
                "cib_reads": sum(1 for _s, w in runs if is_cib_read(w)),
                "cib_reads_by_state": dict(collections.Counter(s for s, w in runs if is_cib_read(w))),
                "cib_writes": sum(1 for _s, w in runs if WRITE_FLAGS.get(w[0], set()) & _flags(w[1:])),
                "tool_runs": len(runs), "keystone": ks, "keystone_writers": sorted(writers)}


def run_size(nodes, mode, log):
    run_dir = tempfile.mkdtemp(prefix="glhs-", dir="/tmp")
    lab = Lab(prefix="s" + secrets.token_hex(2), run_dir=run_dir, nodes=nodes, mode=mode, tied=True,
              log=lambda m: None)
    row = {"nodes": nodes, "mode": mode}
    keystone = None
    try:
        row["bring_up"], _ = timed(lab.up)
        keystone = KeystoneRequests(lab.ns("svc"))
        m = Measured(lab, keystone)
        row["sync_all"], (rc, data) = timed(lambda: lab.salt("ctl*", "saltutil.sync_all", timeout=300))
        if rc != 0 or len(data) != nodes:
            raise LabError(f"sync_all failed (rc {rc}): {str(data)[:2000]}")
        row["first"] = m.run("ctl*", settle=True)
        log(f"[{mode} x{nodes}] first highstate {row['first']['seconds']:.1f} s, "
            f"{row['first']['failed']} failed state(s)")
        row["noop"] = m.run("ctl*")
        dc = lab.cluster_status()["dc"]
        row["noop_one"] = dict(m.run(dc), node=dc)
        log(f"[{mode} x{nodes}] no-op {row['noop']['seconds']:.1f} s, {dc} alone {row['noop_one']['seconds']:.1f} s")
        mem = lab.memory()
        ctl = [mem[lab.node_name(n)]["pss"] for n in lab.node_range if lab.node_name(n) in mem]
        row["memory"] = {"pss_per_controller": sum(ctl) / len(ctl), "pss_lab": sum(v["pss"] for v in mem.values()),
                         "pss_svc": mem.get("svc", {}).get("pss", 0), "namespaces": mem}
    finally:
        if keystone:
            keystone.stop()
        row["teardown"], _ = timed(lab.down)
        shutil.rmtree(run_dir, ignore_errors=True)
    return row


def table(rows):
    head = (f"{'mode':14} {'ctl':>3} | {'first s':>7} {'s/ctl':>5} | {'no-op s':>7} {'1 ctl s':>7} | "
            f"{'CIB epoch+ first/no-op':>22} | {'CIB reads first/no-op':>21} | {'KS writes first/no-op':>21} | "
            f"{'PSS/ctl MiB':>11} {'lab GiB':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        f, n, one, mem = r["first"], r["noop"], r["noop_one"], r["memory"]
        lines.append(
            f"{r['mode']:14} {r['nodes']:3d} | {f['seconds']:7.1f} {f['seconds'] / r['nodes']:5.1f} | "
            f"{n['seconds']:7.1f} {one['seconds']:7.1f} | "
            f"{f['epoch_delta']:>10d} / {n['epoch_delta']:<9d} | {f['cib_reads']:>9d} / {n['cib_reads']:<9d} | "
            f"{f['keystone']['write']:>9d} / {n['keystone']['write']:<9d} | "
            f"{mem['pss_per_controller'] / 2**20:11.0f} {mem['pss_lab'] / 2**30:7.2f}")
    lines += ["", "ratios against the 3-controller row of the same mode (linear growth = N/3):"]
    head = f"{'mode':14} {'ctl':>3} | {'N/3':>5} | {'first':>6} {'s/ctl':>6} | {'no-op':>6} {'1 ctl':>6} | {'PSS/ctl':>7} {'lab':>6}"
    lines += [head, "-" * len(head)]
    for r in rows:
        base = next((b for b in rows if b["mode"] == r["mode"] and b["nodes"] == 3), None)
        if not base:
            continue
        def x(key, sub="seconds", r=r, base=base):
            return r[key][sub] / base[key][sub] if base[key][sub] else float("nan")
        lines.append(f"{r['mode']:14} {r['nodes']:3d} | {r['nodes'] / 3:5.2f} | {x('first'):6.2f} "
                     f"{x('first') * 3 / r['nodes']:6.2f} | {x('noop'):6.2f} {x('noop_one'):6.2f} | "
                     f"{x('memory', 'pss_per_controller'):7.2f} {x('memory', 'pss_lab'):6.2f}")
    lines += ["", ("details per run (CIB: admin_epoch.epoch.num_updates before -> after; formula's CIB-writing "
                   "tool runs; Keystone token/read/write requests, and who wrote):")]
    for r in rows:
        for key, what in (("first", "first, all at once"), ("noop", "no-op, all at once"),
                          ("noop_one", f"no-op, {r['noop_one'].get('node')} alone")):
            p = r[key]
            ks = p["keystone"]
            lines.append(
                f"  {r['mode']} x{r['nodes']} {what:22} rc {p['rc']}, {p['minions']} minion(s), {p['changed']} changed, "
                f"{p['failed']} failed; CIB {'.'.join(map(str, p['cib_before']))} -> "
                f"{'.'.join(map(str, p['cib_after']))}, formula: {p['cib_reads']} read(s), {p['cib_writes']} "
                f"write(s), {p['tool_runs']} tool runs; Keystone {ks['token']}/{ks['read']}/{ks['write']}"
                f"{' by ' + ','.join(p['keystone_writers']) if p['keystone_writers'] else ''}; CIB reads by state: "
                + ", ".join(f"{k} {v}" for k, v in sorted(p["cib_reads_by_state"].items())))
        lines.append(f"  {r['mode']} x{r['nodes']} bring-up {r['bring_up']:.0f} s, sync_all {r['sync_all']:.1f} s, "
                     f"teardown {r['teardown']:.0f} s; PSS svc {r['memory']['pss_svc'] / 2**20:.0f} MiB")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="3,4,5", help="numbers of controllers, one lab each (3 to 5)")
    ap.add_argument("--modes", default=os.environ.get("LAB_MODE", "active-passive"),
                    help=f"comma-separated: {', '.join(MODES)} (default: LAB_MODE or active-passive)")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_scale: needs root", file=sys.stderr)
        return 1
    sizes = [int(s) for s in args.sizes.split(",") if s]
    modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in modes if m not in MODES] + [s for s in sizes if not 3 <= s <= 5]
    if bad:
        print(f"bench_scale: unknown {bad}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    rows = []
    for mode in modes:
        for nodes in sizes:
            rows.append(run_size(nodes, mode, lambda m: print(m, file=sys.stderr, flush=True)))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    print(f"\nthe formula against the number of controllers, one lab per row, {time.monotonic() - t0:.0f} s in all\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
