"""
Writing files that may hold secrets, the one way the formula (and its lab) does it.

- :func:`write_atomic`: a file replaced atomically, created with its final owner and mode, never
  readable by others in between; a symlinked path keeps its link and its target is rewritten.
- :func:`make_dir`: a directory that appears with its owner and mode (several nodes may make it at once
  on a shared filesystem).
- :func:`private_dir`: a 0700 temporary directory removed on exit, for files handed to a tool
  (a staged CIB) so that no secret goes on a command line or stays on disk.

Pure of Salt: no dunders. Errors are ``OSError``/``KeyError`` from the system; callers word them.
"""

import contextlib
import os
import shutil
import tempfile


def write_atomic(path, text, uid=None, gid=None, mode=0o600):
    """
    Write ``text`` (str) to ``path`` atomically with owner ``uid``:``gid`` (ints; None keeps the
    process's own) and ``mode`` (int). The parent directory must exist. Returns the real path
    written.
    """
    path = os.path.realpath(path)
    fd, tmp = tempfile.mkstemp(prefix=".glance_ha.", dir=os.path.dirname(path))
    try:
        os.fchmod(fd, 0o600)
        if uid is not None or gid is not None:
            os.fchown(fd, -1 if uid is None else uid, -1 if gid is None else gid)
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


@contextlib.contextmanager
def private_dir(prefix="glance_ha-"):
    """A 0700 temporary directory (its path, str), removed with everything in it on exit."""
    path = tempfile.mkdtemp(prefix=prefix)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_private(directory, name, text):
    """Create ``directory/name`` (must not exist) holding ``text``, mode 0600; returns its path."""
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def make_dir(path, uid, gid, mode=0o750):
    """Create directory ``path`` (its parent must exist) owned ``uid``:``gid`` with ``mode``, atomically as
    far as other nodes creating it at the same time go: when another one made it first, it is left as it
    is (returns False); True when this call made it. The owner is set before anyone else can use it."""
    tmp = f"{path}.{os.getpid()}.tmp"
    os.mkdir(tmp, 0o700)
    try:
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        try:
            os.rename(tmp, path)   # an empty directory made meanwhile is replaced, a non-empty one stays
        except OSError:
            if os.path.isdir(path):
                return False
            raise
    finally:
        if os.path.isdir(tmp):
            os.rmdir(tmp)
    return True
