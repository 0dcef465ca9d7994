"""Where secrets must never be: ``ProcSampler`` (every command line in /proc, sampled in a thread
while a block runs; the host's /proc sees every lab controller's processes too: a test asserts the
sampler saw a command of the run under test before asserting no secret) and ``readable_by_others``."""

import os
import stat
import threading
import time
from pathlib import Path


class ProcSampler:
    def __init__(self, period=0.001):
        self.seen, self.period, self._stop = set(), period, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        raw = Path(f"/proc/{entry}/cmdline").read_bytes()
                    except OSError:
                        continue
                    self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace"))
            time.sleep(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def readable_by_others(*tops):
    """Files under ``tops`` that others can reach and read (every directory on the way o+x, the file
    o+r), as {path: first 4 MiB}."""
    found = {}
    for top in tops:
        for base, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if os.lstat(os.path.join(base, d)).st_mode & 0o001]
            for name in files:
                path = os.path.join(base, name)
                try:
                    st = os.lstat(path)
                    if stat.S_ISREG(st.st_mode) and st.st_mode & 0o004:
                        with open(path, "rb") as handle:
                            found[path] = handle.read(4 << 20)
                except OSError:
                    pass
    return found
