"""glance_db's own MariaDB connections against a server that accepts and never answers (a hung
MariaDB): an error within the I/O timeout, not a hang. The functional tier does the same with a
SIGSTOPped MariaDB (test/functional/test_glance_db.py::test_hung_mariadb_is_a_bounded_clear_error)."""

import socket
import threading
import time

import pytest

from test.modload import load


@pytest.fixture
def silent():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns, stop = [], threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield srv.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in conns:
        conn.close()
    srv.close()


def test_no_greeting_is_an_error_within_the_io_timeout(silent):
    """Shown failing: without ``read_timeout`` in _connect the test hangs on the greeting (killed by
    ``timeout 25``; the functional test's run stayed blocked in recv for 8 min)."""
    mod = load("_modules/glance_db.py")
    mod.IO_TIMEOUT = 1.5
    start = time.monotonic()
    with pytest.raises(mod.GlanceDbError, match=r"glance database: cannot connect as glance@127\.0\.0\.1:"):
        mod._connect({"host": "127.0.0.1", "port": silent, "user": "glance", "password": "pw-Secret-1",
                      "database": "glance"}, "glance database", "pw-Secret-1")
    assert time.monotonic() - start < 5
