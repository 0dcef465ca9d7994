"""
glance's database: its schema migrations and metadata definitions, run by ``glance-manage``, and
(optionally) the database and its user created with administrator credentials.

Credentials: ``glance-manage`` reads ``[database] connection`` from glance-api.conf itself, and this
module reads the same option to open its own PyMySQL connection (the lock, the metadefs count,
``alembic_version``): no password is ever on a command line or returned. Every message is masked by
the one secrets rule (``_utils/glance_ha_secrets``).

Two highstates at once: :py:func:`sync` takes MariaDB's named lock ``GET_LOCK('glance_ha.db_sync')``
on its connection and holds it while ``glance-manage`` runs; the second caller waits for the lock
(``lock_timeout`` seconds), then finds the schema current and runs nothing.

Bounds: this module's connections give up after 10 s to connect and 30 s per read or write (a hung
MariaDB is an error naming the database, not a hang); ``glance-manage`` is bounded by the
``[database] connection_parameters`` timeouts the formula renders, and after 900 s in any case.

The pending migrations are the revisions of glance's own alembic scripts between the database's
``alembic_version`` and the scripts' heads, listed by glance's Python interpreter (the one named on
``glance-manage``'s ``#!`` line), so the list matches the glance that would run them.

:depends: PyMySQL (in Salt's Python), glance-manage (glance-common, or a pip-installed glance)
"""

import configparser
import json
import logging
import subprocess
import time
import urllib.parse

from salt.exceptions import CommandExecutionError

try:
    import pymysql

    HAS_PYMYSQL = True
except ImportError:  # pragma: no cover - reported by __virtual__
    HAS_PYMYSQL = False

log = logging.getLogger(__name__)

__virtualname__ = "glance_db"

LOCK_NAME = "glance_ha.db_sync"
CONNECT_TIMEOUT = 10
# Every read and write of this module's connections (the server's greeting included: pymysql's
# connect_timeout covers the TCP connect only), so a hung MariaDB is an error, not a hang.
IO_TIMEOUT = 30
LOCK_STEP = 20
MANAGE_TIMEOUT = 900
# glance's alembic scripts (no database access): argv[1:] are the current heads; prints the
# revisions still to run, oldest first.
_PENDING_SCRIPT = """
import importlib.util, json, os, sys
from alembic.config import Config
from alembic.script import ScriptDirectory
base = os.path.dirname(importlib.util.find_spec("glance").origin)
ini = os.path.join(base, "db", "sqlalchemy", "alembic_migrations", "alembic.ini")
scripts = ScriptDirectory.from_config(Config(ini))
lower = tuple(sys.argv[1:]) or "base"
revs = [r.revision for r in scripts.iterate_revisions("heads", lower)]
print(json.dumps(list(reversed(revs))))
"""


class GlanceDbError(CommandExecutionError):
    """The database or glance-manage failed; the message is already masked."""


def __virtual__():
    if not HAS_PYMYSQL:
        return False, "glance_db: PyMySQL is not installed in Salt's Python (pip install PyMySQL)"
    return __virtualname__


def _mask(text, extra=()):
    return __utils__["glance_ha_secrets.mask"](text, extra)


# ------------------------------------------------------------------------------- connections
def _connection(config_file):
    """The PyMySQL arguments (dict) of ``[database] connection`` in ``config_file``, and its
    password (for masking)."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        with open(config_file, encoding="utf-8") as handle:
            parser.read_file(handle)
    except OSError as exc:
        raise GlanceDbError(f"cannot read {config_file}: {exc.strerror}") from None
    url = parser.get("database", "connection", fallback="").strip()
    if not url:
        raise GlanceDbError(f"{config_file}: no [database] connection")
    parts = urllib.parse.urlsplit(url)
    password = urllib.parse.unquote(parts.password or "")
    if not parts.scheme.startswith("mysql"):
        raise GlanceDbError(f"{config_file}: [database] connection is {parts.scheme}://, "
                            "only MySQL/MariaDB is supported")
    args = {"host": parts.hostname or "localhost", "port": parts.port or 3306,
            "user": urllib.parse.unquote(parts.username or ""), "password": password,
            "database": parts.path.lstrip("/")}
    return args, password


def _connect(args, what, secret):
    """A connection whose reads and writes give up after IO_TIMEOUT s."""
    try:
        return pymysql.connect(connect_timeout=CONNECT_TIMEOUT, read_timeout=IO_TIMEOUT,
                               write_timeout=IO_TIMEOUT, autocommit=True, **args)
    except pymysql.MySQLError as exc:
        where = f"{args.get('user')}@{args['host']}:{args['port']}"
        raise GlanceDbError(_mask(f"{what}: cannot connect as {where}: {exc}", [secret])) from None


def _lock(conn, deadline):
    """Take the named lock by the deadline (monotonic s): 1 when held, else 0/None. Asked in steps of
    at most LOCK_STEP s, so no single query outlasts the connection's IO_TIMEOUT."""
    while True:
        step = int(max(0, min(LOCK_STEP, deadline - time.monotonic())))
        got = _query(conn, "SELECT GET_LOCK(%s, %s)", (LOCK_NAME, step))[0][0]
        if got == 1 or time.monotonic() >= deadline:
            return got


def _query(conn, sql, params=None):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def _tables(conn):
    return {row[0] for row in _query(conn, "SHOW TABLES")}


def _heads(conn, tables):
    if "alembic_version" not in tables:
        return []
    return sorted(row[0] for row in _query(conn, "SELECT version_num FROM alembic_version"))


def _metadefs(conn, tables):
    if "metadef_namespaces" not in tables:
        return 0
    return int(_query(conn, "SELECT COUNT(*) FROM metadef_namespaces")[0][0])


# ------------------------------------------------------------------------------- glance-manage
def _interpreter(glance_manage):
    """The Python on glance-manage's ``#!`` line (glance's own)."""
    try:
        with open(glance_manage, "rb") as handle:
            first = handle.readline().decode("utf-8", "replace")
    except OSError as exc:
        raise GlanceDbError(f"{glance_manage}: {exc.strerror} (set glance_ha:lookup:glance_manage)") from None
    if not first.startswith("#!"):
        raise GlanceDbError(f"{glance_manage}: not a script with a #! line")
    return first[2:].split()


def _pending(glance_manage, heads, secret):
    argv = _interpreter(glance_manage) + ["-W", "ignore", "-c", _PENDING_SCRIPT] + list(heads)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-1:])
        raise GlanceDbError(_mask(f"cannot list glance's migrations with {argv[0]}: {tail}", [secret]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _manage(glance_manage, config_file, args, secret, ok=(0,)):
    """Run ``glance-manage --config-file <config_file> <args>``; (rc, masked stdout). An exit code
    not in ``ok`` raises, naming the command and the last lines it printed."""
    argv = [glance_manage, "--config-file", config_file] + list(args)
    log.debug("glance_db: running %s", " ".join(argv))
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=MANAGE_TIMEOUT, check=False)
    except FileNotFoundError:
        raise GlanceDbError(f"{glance_manage}: not found (set glance_ha:lookup:glance_manage)") from None
    except subprocess.TimeoutExpired:
        raise GlanceDbError(f"{' '.join(argv)}: no end within {MANAGE_TIMEOUT} s") from None
    if proc.returncode not in ok:
        lines = [line for line in (proc.stdout + proc.stderr).splitlines()
                 if line.strip() and "Warning" not in line and not line.startswith("  ")]
        raise GlanceDbError(_mask(f"{' '.join(argv)} failed (rc={proc.returncode}): "
                                  + " | ".join(lines[-3:]), [secret]))
    return proc.returncode, _mask(proc.stdout.strip(), [secret])


def _state(conn, glance_manage, secret):
    tables = _tables(conn)
    heads = _heads(conn, tables)
    return {"current": heads, "pending": _pending(glance_manage, heads, secret),
            "metadefs": _metadefs(conn, tables)}


# ------------------------------------------------------------------------------- public
def status(config_file="/etc/glance/glance-api.conf", glance_manage="/usr/bin/glance-manage"):
    """
    What the database needs, read only (no migration, no lock, no write).

    config_file
        glance-api.conf: its ``[database] connection`` names the database (str, path).
    glance_manage
        The glance-manage script (str, path) whose glance decides which migrations exist.

    Returns ``{'current': [str], 'pending': [str], 'metadefs': int}``: the alembic heads in the
    database (``[]`` for an empty one), the migrations still to run (oldest first) and the number
    of metadata definition namespaces loaded.

    Raises CommandExecutionError (masked) when the file, the database or glance cannot be read.

    CLI Example:

    .. code-block:: bash

        salt '*' glance_db.status
        salt '*' glance_db.status glance_manage=/opt/glance/bin/glance-manage
    """
    args, secret = _connection(config_file)
    conn = _connect(args, "glance database", secret)
    try:
        return _state(conn, glance_manage, secret)
    except pymysql.MySQLError as exc:
        raise GlanceDbError(_mask(f"glance database: {exc}", [secret])) from None
    finally:
        conn.close()


def sync(config_file="/etc/glance/glance-api.conf", glance_manage="/usr/bin/glance-manage",
         lock_timeout=600):
    """
    Bring the schema to glance's head and load the metadata definitions once, under MariaDB's
    named lock ``glance_ha.db_sync`` (held on this module's connection while glance-manage runs).

    Steps, after the lock is held: ``glance-manage db check``; ``glance-manage db sync`` when a
    migration is pending; ``glance-manage db load_metadefs`` when no metadata definition namespace
    exists yet (an operator's later changes to them are never overwritten).

    config_file, glance_manage
        As for :py:func:`status`.
    lock_timeout
        Seconds (int) to wait for another node's run to release the lock.

    Returns ``{'migrated': [str], 'metadefs_loaded': int, 'previous': [str], 'current': [str],
    'waited': float, 'check': str}``: the migrations run, the namespaces loaded (0: none), the
    alembic heads before and after,
    the seconds spent waiting for the lock and ``db check``'s answer before.

    Raises CommandExecutionError (masked) when the lock is not granted in time, or the database or
    glance-manage fails.

    CLI Example:

    .. code-block:: bash

        salt '*' glance_db.sync
    """
    args, secret = _connection(config_file)
    conn = _connect(args, "glance database", secret)
    try:
        start = time.monotonic()
        got = _lock(conn, start + int(lock_timeout))
        waited = round(time.monotonic() - start, 3)
        if got != 1:
            raise GlanceDbError(f"glance database: lock {LOCK_NAME} not granted within {lock_timeout} s "
                                "(another node is still migrating)")
        try:
            before = _state(conn, glance_manage, secret)
            due, check = _check(glance_manage, config_file, secret)
            migrated = []
            if before["pending"] or due:
                _manage(glance_manage, config_file, ["db", "sync"], secret)
                migrated = before["pending"]
            loaded = 0
            tables = _tables(conn)
            if _metadefs(conn, tables) == 0:
                _manage(glance_manage, config_file, ["db", "load_metadefs"], secret)
                loaded = _metadefs(conn, tables)
            return {"migrated": migrated, "metadefs_loaded": loaded, "previous": before["current"],
                    "current": _heads(conn, _tables(conn)), "waited": waited, "check": check}
        finally:
            _query(conn, "SELECT RELEASE_LOCK(%s)", (LOCK_NAME,))
    except pymysql.MySQLError as exc:
        raise GlanceDbError(_mask(f"glance database: {exc}", [secret])) from None
    finally:
        conn.close()


def _check(glance_manage, config_file, secret):
    """(whether a step is due, ``glance-manage db check``'s last line): exit codes 3, 4, 5 mean
    expand, migrate or contract is due."""
    rc, out = _manage(glance_manage, config_file, ["db", "check"], secret, ok=(0, 3, 4, 5))
    return rc != 0, (out.splitlines()[-1] if out else "")


def database_present(name, user, password, admin_user, admin_password, host="localhost", port=3306,
                     user_host="%", test=False):
    """
    The database ``name`` and the account ``user``@``user_host`` with all privileges on it, made
    with administrator credentials; an existing account gets ``password`` set in place.

    name, user, user_host
        Database, account name and the host part of the account (str; ``%``: any host).
    password
        The account's password (str; never returned or logged).
    admin_user, admin_password
        An account allowed to create databases and users and grant privileges.
    host, port
        The MariaDB server.
    test
        Only report what would change.

    Returns ``{'database': 'created'|'present', 'user': 'created'|'password set'|'present',
    'grant': 'granted'|'present'}``. The account's password is compared by logging in with it.

    Raises CommandExecutionError naming what failed (the administrator login, the database, the
    account), masked; a failed administrator login changes nothing.

    CLI Example:

    .. code-block:: bash

        salt '*' glance_db.database_present glance glance "$PW" root "$ADMIN_PW" host=db1
    """
    secrets = [password, admin_password]
    admin = _connect({"host": host, "port": int(port), "user": admin_user, "password": admin_password},
                     "database administrator", admin_password)
    out = {}
    try:
        exists = _query(admin, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME=%s", (name,))
        out["database"] = "present" if exists else "created"
        known = _query(admin, "SELECT 1 FROM mysql.user WHERE User=%s AND Host=%s", (user, user_host))
        if not known:
            out["user"] = "created"
        else:
            out["user"] = "present" if _can_login(host, port, user, password) else "password set"
        quoted = "`" + name.replace("`", "``") + "`"
        grants = " ".join(row[0] for row in _query(admin, "SHOW GRANTS FOR %s@%s", (user, user_host))) \
            if known else ""
        out["grant"] = "present" if f"ON {quoted}.*" in grants and "ALL PRIVILEGES" in grants else "granted"
        if test:
            return out
        if out["database"] == "created":
            _query(admin, f"CREATE DATABASE IF NOT EXISTS {quoted}")
        if out["user"] == "created":
            _query(admin, "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, user_host, password))
        elif out["user"] == "password set":
            _query(admin, "ALTER USER %s@%s IDENTIFIED BY %s", (user, user_host, password))
        if out["grant"] == "granted":
            _query(admin, f"GRANT ALL PRIVILEGES ON {quoted}.* TO %s@%s", (user, user_host))
        return out
    except pymysql.MySQLError as exc:
        raise GlanceDbError(_mask(f"database {name!r}, account {user!r}@{user_host!r}: {exc}", secrets)) from None
    finally:
        admin.close()


def _can_login(host, port, user, password):
    try:
        pymysql.connect(host=host, port=int(port), user=user, password=password,
                        connect_timeout=CONNECT_TIMEOUT, read_timeout=IO_TIMEOUT,
                        write_timeout=IO_TIMEOUT).close()
        return True
    except pymysql.MySQLError:
        return False
