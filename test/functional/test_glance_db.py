"""glance_db (execution + state modules) on the real MariaDB of test/plugins/services.py and the real
glance-manage of glance 33 (.venv-os) and of Debian 12's glance 25 (/usr/bin/glance-manage, glance-common):
empty database -> schema and metadefs, second run no change; a glance 25 schema upgraded, test=True
reporting the pending migrations and changing nothing; two runs at once -> one migration run (MariaDB's
named lock); the optional database/account creation, wrong administrator credentials refused cleanly.

Heavy (starts MariaDB): run under the machine-wide lock."""

import json
import os
import secrets
import signal
import threading
import time
from pathlib import Path

import pytest

from test.modload import ROOT

pytestmark = pytest.mark.slow

GLANCE33 = ROOT / ".venv-os" / "bin" / "glance-manage"
GLANCE25 = Path("/usr/bin/glance-manage")
METADEFS33 = ROOT / ".venv-os" / "etc" / "glance" / "metadefs"


def _conf(path, url, metadefs=METADEFS33):
    path.touch(mode=0o600)
    path.write_text(f"[DEFAULT]\nmetadata_source_path = {metadefs}\n\n[database]\nconnection = {url}\n")
    return str(path)


@pytest.fixture
def db(mariadb, tmp_path):
    """A new empty database, its account, and a glance-api.conf naming it (0600)."""
    if not GLANCE33.exists():
        pytest.skip("glance 33 (.venv-os) is not installed")
    name = "g" + secrets.token_hex(4)
    password = "db-" + secrets.token_urlsafe(12) + "@:/%"
    mariadb.create_database(name, name, password)
    url = mariadb.url(name, name, password)
    db = {"name": name, "password": password, "url": url, "conf": _conf(tmp_path / "glance-api.conf", url)}
    yield db
    mariadb.sql(f"DROP DATABASE IF EXISTS `{name}`; DROP USER IF EXISTS '{name}'@'%';")


def _heads(mariadb, name):
    if not _has_table(mariadb, name, "alembic_version"):
        return []
    return mariadb.sql("SELECT version_num FROM alembic_version ORDER BY version_num;", name).split()


def _has_table(mariadb, name, table):
    return bool(mariadb.sql(f"SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA='{name}' "
                            f"AND TABLE_NAME='{table}';").strip())


def _single(modules, test=False, **kwargs):
    return modules.state.single("glance_db.synced", test=test, **kwargs)


def _no_secret(text, db):
    assert db["password"] not in text


def test_empty_database_gets_schema_and_metadefs_once(modules, mariadb, db):
    now = modules.glance_db.status(config_file=db["conf"], glance_manage=str(GLANCE33))
    assert now["current"] == [] and now["metadefs"] == 0
    assert now["pending"][0] == "liberty" and now["pending"][-1].endswith("contract01")

    dry = _single(modules, test=True, name=db["conf"], glance_manage=str(GLANCE33))
    assert dry.result is None
    assert dry.comment.startswith("pending migrations: liberty, ")
    assert "metadata definitions would be loaded" in dry.comment
    assert not _has_table(mariadb, db["name"], "alembic_version"), "test=True migrated"

    first = _single(modules, name=db["conf"], glance_manage=str(GLANCE33))
    assert first.result is True, first.comment
    assert first.changes["migrations"]["old"] == []
    assert first.changes["metadefs"]["new"] > 0
    heads = _heads(mariadb, db["name"])
    assert first.changes["migrations"]["new"] == heads
    loaded = int(mariadb.sql("SELECT COUNT(*) FROM metadef_namespaces;", db["name"]))
    assert loaded == first.changes["metadefs"]["new"]

    again = _single(modules, name=db["conf"], glance_manage=str(GLANCE33))
    assert again.result is True and again.changes == {}, again
    assert "schema is current" in again.comment
    assert int(mariadb.sql("SELECT COUNT(*) FROM metadef_namespaces;", db["name"])) == loaded
    dry = _single(modules, test=True, name=db["conf"], glance_manage=str(GLANCE33))
    assert dry.result is True and dry.changes == {}
    for ret in (first, again, dry):
        _no_secret(json.dumps(ret.full_return), db)


def test_glance25_schema_upgraded_test_true_changes_nothing(modules, mariadb, db, tmp_path, run_cmd):
    if not GLANCE25.exists():
        pytest.skip("Debian's glance-common (glance 25) is not installed")
    # Debian 12's glance 25 makes the schema, with its own config pointing at the test database
    conf25 = _conf(tmp_path / "glance25.conf", db["url"], metadefs="/etc/glance/metadefs")
    old = run_cmd([str(GLANCE25), "--config-file", conf25, "db", "sync"])
    assert old.returncode == 0, old.stderr[-2000:]
    heads25 = _heads(mariadb, db["name"])
    assert heads25

    dry = _single(modules, test=True, name=db["conf"], glance_manage=str(GLANCE33))
    assert dry.result is None
    assert dry.comment.startswith("pending migrations: ")
    assert dry.changes["migrations"]["old"] == heads25
    pending = dry.changes["migrations"]["new"]
    assert pending and all(rev not in heads25 for rev in pending)
    assert _heads(mariadb, db["name"]) == heads25, "test=True changed alembic_version"

    up = _single(modules, name=db["conf"], glance_manage=str(GLANCE33))
    assert up.result is True, up.comment
    assert up.changes["migrations"]["old"] == heads25
    assert f"{len(pending)} migration(s) run: {', '.join(pending)}" in up.comment
    check = run_cmd([str(GLANCE33), "--config-file", db["conf"], "db", "check"])
    assert check.returncode == 0 and "up to date" in check.stdout
    assert _single(modules, name=db["conf"], glance_manage=str(GLANCE33)).changes == {}


def test_two_runs_at_once_migrate_once(modules, db, tmp_path):
    """Two syncs started together: MariaDB's lock lets one migrate; the other waits, then finds the schema
    current. A wrapper logs every glance-manage run with its start and end time."""
    log = tmp_path / "runs.log"
    wrapper = tmp_path / "glance-manage"
    wrapper.write_text(f"#!{GLANCE33.parent / 'python3'}\n"
                       "import sys, time\n"
                       f"LOG = {str(log)!r}\n"
                       "args = ' '.join(sys.argv[3:])\n"
                       "open(LOG, 'a').write(f'start {time.time()} {args}\\n')\n"
                       "from glance.cmd.manage import main\n"
                       "try:\n    rc = main()\n"
                       "finally:\n    open(LOG, 'a').write(f'end {time.time()} {args}\\n')\n"
                       "sys.exit(rc)\n")
    wrapper.chmod(0o755)
    results, errors = [], []

    def run():
        try:
            results.append(modules.glance_db.sync(config_file=db["conf"], glance_manage=str(wrapper)))
        except Exception as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors, errors
    assert sorted(bool(r["migrated"]) for r in results) == [False, True]
    assert sorted(bool(r["metadefs_loaded"]) for r in results) == [False, True]
    lines = [line.split(maxsplit=2) for line in log.read_text().splitlines()]
    syncs = [(kind, float(ts)) for kind, ts, what in lines if what == "db sync"]
    assert [kind for kind, _ts in syncs] == ["start", "end"], "exactly one migration run"
    loads = [kind for kind, _ts, what in lines if what == "db load_metadefs"]
    assert loads == ["start", "end"], "metadefs loaded once"
    waiter = next(r for r in results if not r["migrated"])
    sync_end = syncs[1][1]
    checks = [float(ts) for kind, ts, what in lines if what == "db check" and kind == "start"]
    assert len(checks) == 2 and max(checks) >= sync_end, "the second run checked only after the first ended"
    assert waiter["waited"] > 0


def test_database_present_creates_and_refuses_bad_admin(modules, mariadb, tmp_path):
    admin_pw = "adm-" + secrets.token_urlsafe(12)
    admin = "adm" + secrets.token_hex(3)
    mariadb.sql(f"CREATE USER '{admin}'@'%' IDENTIFIED BY '{admin_pw}';"
                f"GRANT ALL PRIVILEGES ON *.* TO '{admin}'@'%' WITH GRANT OPTION;", secret_values=(admin_pw,))
    name = "c" + secrets.token_hex(4)
    pw = "usr-" + secrets.token_urlsafe(12)
    wrong = "wrong-" + secrets.token_urlsafe(8)
    common = {"host": mariadb.host, "port": mariadb.port}
    try:
        with pytest.raises(Exception) as info:
            modules.glance_db.database_present(name, name, pw, admin, wrong, **common)
        message = str(info.value)
        assert f"database administrator: cannot connect as {admin}@{mariadb.host}:{mariadb.port}" in message
        assert "Access denied" in message
        assert wrong not in message and pw not in message
        assert not mariadb.sql(f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{name}';").strip()
        assert not mariadb.sql(f"SELECT 1 FROM mysql.user WHERE User='{name}';").strip()

        plan = modules.glance_db.database_present(name, name, pw, admin, admin_pw, test=True, **common)
        assert plan == {"database": "created", "user": "created", "grant": "granted"}
        assert not mariadb.sql(f"SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{name}';").strip()
        done = modules.glance_db.database_present(name, name, pw, admin, admin_pw, **common)
        assert done == plan
        again = modules.glance_db.database_present(name, name, pw, admin, admin_pw, **common)
        assert again == {"database": "present", "user": "present", "grant": "present"}
        new_pw = "usr2-" + secrets.token_urlsafe(12)
        changed = modules.glance_db.database_present(name, name, new_pw, admin, admin_pw, **common)
        assert changed["user"] == "password set"
        conf = _conf(tmp_path / "c.conf", mariadb.url(name, name, new_pw))
        assert modules.glance_db.status(config_file=conf, glance_manage=str(GLANCE33))["current"] == []
    finally:
        mariadb.sql(f"DROP DATABASE IF EXISTS `{name}`; DROP USER IF EXISTS '{name}'@'%';"
                    f"DROP USER IF EXISTS '{admin}'@'%';")


def test_wrong_database_password_in_conf_is_named_and_masked(modules, db, mariadb, tmp_path):
    bad_pw = "nope-" + secrets.token_urlsafe(10)
    conf = _conf(tmp_path / "bad.conf", mariadb.url(db["name"], db["name"], bad_pw))
    res = _single(modules, name=conf, glance_manage=str(GLANCE33))
    assert res.result is False
    assert f"glance database: cannot connect as {db['name']}@{mariadb.host}:{mariadb.port}" in res.comment
    assert bad_pw not in json.dumps(res.full_return)
    assert not _has_table(mariadb, db["name"], "alembic_version")


@pytest.fixture
def run_cmd():
    import subprocess

    def _run(argv):
        return subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False,
                              env=dict(os.environ, PYTHONWARNINGS="ignore"))
    return _run


def test_test_mode_before_glance_api_conf_exists(modules, tmp_path):
    """test=True on a fresh node: glance-api.conf is written by an earlier state of the real run."""
    res = _single(modules, test=True, name=str(tmp_path / "glance-api.conf"), glance_manage=str(GLANCE33))
    assert res.result is None and "is not written yet" in res.comment


def test_hung_mariadb_is_a_bounded_clear_error(modules, db, mariadb):
    """MariaDB hung (the session's own mysqld SIGSTOPped: the kernel still accepts the TCP connection,
    no greeting ever comes): glance_db.synced fails naming the database it cannot reach, within the
    module's I/O timeout (30 s; pymysql's connect_timeout covers the TCP connect only) plus slack, and
    writes nothing; the password is not echoed. Shown failing: without ``read_timeout`` in
    glance_db._connect the state never returned (blocked in recv on the greeting; mysqld continued by
    hand after 8 min)."""
    os.kill(mariadb.pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        res = _single(modules, name=db["conf"], glance_manage=str(GLANCE33))
        elapsed = time.monotonic() - start
    finally:
        os.kill(mariadb.pid, signal.SIGCONT)
    assert res.result is False
    assert f"glance database: cannot connect as {db['name']}@{mariadb.host}:{mariadb.port}" in res.comment, \
        res.comment
    assert "timed out" in res.comment, res.comment
    assert 29 < elapsed < 45, elapsed
    _no_secret(json.dumps(res.full_return), db)
    assert not _has_table(mariadb, db["name"], "alembic_version")
