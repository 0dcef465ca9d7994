"""Processes of the lab and of lab.services: commands run to completion, and daemons that are "ours".

A process is ours only while its PID still has the kernel start time we recorded when we started it
(a PID can be reused); every signal the lab and lab.services send goes through :func:`kill_recorded`
or :func:`terminate`, which check that first. Stdlib only.
"""

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STOP_GRACE = 20.0      # seconds between SIGTERM and SIGKILL
KILL_WAIT = 5.0

log = logging.getLogger("lab.services")

_CHILDREN = {}          # pid -> Popen, for reaping children of this process
_CHILDREN_LOCK = threading.Lock()


class LabError(RuntimeError):
    """A lab operation failed; the message carries the command's output (never a secret)."""


def run(cmd, check=True, timeout=120, **kw) -> subprocess.CompletedProcess:
    """Run a command (argv list), capture text output; raise LabError with its output on failure."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    proc = subprocess.run(cmd, check=False, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(map(str, cmd))} -> rc {proc.returncode}\n{proc.stdout}{proc.stderr}")
    return proc


def clean_env(extra=None) -> dict:
    """The environment for commands run in the lab: no CIB_*/OS_* of the caller, a fixed PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CIB_", "OS_"))}
    env.update({"PATH": PATH, "LANG": "C.UTF-8", "PYTHONWARNINGS": "ignore::DeprecationWarning"})
    env.update(extra or {})
    return env


def stat(pid):
    """{'state', 'ppid', 'pgid', 'start'} of a process from /proc/PID/stat, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (OSError, ValueError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return {"state": rest[0], "ppid": int(rest[1]), "pgid": int(rest[2]), "start": int(rest[19])}


def _reap():
    with _CHILDREN_LOCK:
        for pid, proc in list(_CHILDREN.items()):
            if proc.poll() is not None:
                del _CHILDREN[pid]


def start_time(pid):
    """Start time (clock ticks after boot) of a live, non-zombie process, or None."""
    _reap()
    st = stat(pid) if pid else None
    return None if st is None or st["state"] in "ZX" else st["start"]


def alive(pid, start=None):
    """Whether PID lives (not a zombie) and, when given, still has the recorded start time."""
    now = start_time(pid)
    return now is not None and (start is None or now == start)


def kill_recorded(pid, start, sig=signal.SIGKILL) -> bool:
    """Signal a PID only if it is still the process we recorded (same start time)."""
    if not alive(pid, start):
        return False
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_gone(pids, timeout=15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)


def group(pgid, not_before):
    """Live members of process group pgid that started no earlier than its recorded leader."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = stat(int(entry))
            if st and st["pgid"] == pgid and st["start"] >= not_before and st["state"] not in "ZX":
                out.append(int(entry))
    return out


def uses_dir(pid, path):
    """Does process pid work in path (its cwd is inside it, or its command line names it)?"""
    path = str(path)
    try:
        cwd = os.readlink(f"/proc/{pid}/cwd")
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return cwd == path or cwd.startswith(path + "/") or path in cmdline


def spawn(argv, logfile, env=None, cwd=None):
    """Start argv in its own session (pgid = pid), stdout+stderr to logfile; return a proc record
    {'pid', 'start'}."""
    with open(logfile, "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True, close_fds=True)
    with _CHILDREN_LOCK:
        _CHILDREN[proc.pid] = proc
    st = None
    for _ in range(100):
        st = stat(proc.pid)
        if st:
            break
        time.sleep(0.01)
    return {"pid": proc.pid, "start": st["start"] if st else 0}


def proc_alive(rec):
    """Whether a proc record's process, or a member of its group started after it, still runs."""
    return bool(rec) and (alive(rec["pid"], rec["start"]) or bool(group(rec["pid"], rec["start"])))


def terminate(rec, grace=STOP_GRACE, term_pid=None):
    """SIGTERM our process (or term_pid, checked to be in its group), wait, then SIGKILL its group."""
    pid, start = rec["pid"], rec["start"]
    if not proc_alive(rec):
        return
    target = pid if alive(pid, start) else None
    if term_pid and term_pid in group(pid, start):
        target = term_pid
    for p in ([target] if target else group(pid, start)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while proc_alive(rec) and time.monotonic() < deadline:
        time.sleep(0.1)
    if proc_alive(rec):
        log.warning("pid %s did not stop in %.0f s: SIGKILL", pid, grace)
        for p in group(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT
        while proc_alive(rec) and time.monotonic() < deadline:
            time.sleep(0.05)
    with _CHILDREN_LOCK:
        proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_WAIT)


def rss_mb(rec):
    """Resident memory (MB) of a proc record's process group."""
    total = 0
    for p in group(rec["pid"], rec["start"]) if rec else ():
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)
