"""Smoke test of the real-services fixtures (test/plugins/services.py, lab/services.py): MariaDB over TCP
with a created user, AMQP with the created RabbitMQ user, Keystone tokens and catalog, stale/foreign
state handling, and no secret on a command line or in services.json."""

import json
import os
import secrets
import signal
import stat
import subprocess
from pathlib import Path

import pytest

from lab import services as svc

pytestmark = pytest.mark.slow


def _client(db, user, password, database, sql, tmp_path):
    """The mariadb client over TCP; the password goes through a 0600 defaults file, not argv."""
    cnf = tmp_path / f'{user}.cnf'
    cnf.touch(mode=0o600)
    cnf.write_text(f'[client]\npassword="{password}"\n')
    return subprocess.run(['mariadb', f'--defaults-file={cnf}', '--protocol=TCP', '-h', db.host,
                           '-P', str(db.port), '-u', user, '--batch', '--skip-column-names', database],
                          input=sql, capture_output=True, text=True, timeout=30, check=False)


def test_mariadb_created_user_over_tcp(mariadb, tmp_path):
    pw = secrets.token_urlsafe(12)
    mariadb.create_database('smoke', 'smoke', pw)
    mariadb.create_database('smoke', 'smoke', pw)          # idempotent
    r = _client(mariadb, 'smoke', pw, 'smoke',
                'CREATE TABLE t (v INT); INSERT INTO t VALUES (40), (2); SELECT SUM(v) FROM t; '
                'SELECT CURRENT_USER();', tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ['42', 'smoke@%']
    # a new password replaces the old one
    pw2 = secrets.token_urlsafe(12)
    mariadb.create_database('smoke', 'smoke', pw2)
    assert _client(mariadb, 'smoke', pw, 'smoke', 'SELECT 1;', tmp_path).returncode != 0
    assert _client(mariadb, 'smoke', pw2, 'smoke', 'SELECT v FROM t ORDER BY v;', tmp_path).stdout.split() \
        == ['2', '40']
    # the user has no rights on other databases
    assert _client(mariadb, 'smoke', pw2, 'mysql', 'SELECT 1;', tmp_path).returncode != 0


def test_rabbitmq_created_user_amqp_roundtrip(rabbitmq):
    kombu = pytest.importorskip('kombu')
    amqp_exceptions = pytest.importorskip('amqp.exceptions')
    assert rabbitmq.transport_url.startswith(f'rabbit://{rabbitmq.user}:')
    with kombu.Connection(rabbitmq.amqp_url, connect_timeout=10) as conn:
        queue = kombu.Queue('smoke', exchange=kombu.Exchange('smoke', type='direct'), routing_key='smoke',
                            auto_delete=True)
        with conn.Producer() as producer:
            producer.publish({'n': 42}, exchange=queue.exchange, routing_key='smoke', declare=[queue])
        message = queue(conn.default_channel).get(no_ack=True)
        assert message is not None and message.payload == {'n': 42}
    bad = rabbitmq.amqp_url.replace(rabbitmq.password, 'wrong-' + secrets.token_hex(4))
    with pytest.raises(amqp_exceptions.AccessRefused), kombu.Connection(bad, connect_timeout=10) as conn:
        conn.connect()
    users = rabbitmq.ctl('list_users', '--quiet')
    assert users.returncode == 0
    names = {line.split()[0] for line in users.stdout.splitlines() if line.strip()}
    assert rabbitmq.user in names and 'guest' not in names


def test_keystone_admin_token_and_catalog(keystone):
    token = keystone.token()
    status, _headers, body = keystone.request('GET', '/v3/users?name=admin', token=token)   # admin-only API
    assert status == 200 and [u['name'] for u in body['users']] == ['admin']
    assert keystone.request('GET', '/v3/users', token='not-a-token')[0] == 401
    catalog = keystone.catalog(token)
    identity = [s for s in catalog if s['type'] == 'identity']
    assert len(identity) == 1
    endpoints = {(e['interface'], e['url'], e['region_id']) for e in identity[0]['endpoints']}
    assert endpoints == {(i, keystone.auth_url, 'RegionOne') for i in ('public', 'internal', 'admin')}
    with pytest.raises(svc.ServiceError, match='HTTP 401'):
        keystone.token(keystone.admin_user, 'wrong-' + secrets.token_hex(4), keystone.admin_project)


def test_keystone_service_user(keystone, mariadb):
    pw = secrets.token_urlsafe(12)
    first = keystone.ensure_service_user('smoke-glance', pw)
    assert keystone.ensure_service_user('smoke-glance', pw) == first        # idempotent
    assert set(first['role_ids']) == {'admin', 'service'}
    token = keystone.token('smoke-glance', pw, 'service')
    status, _h, body = keystone.request('GET', f'/v3/role_assignments?user.id={first["user_id"]}'
                                               f'&scope.project.id={first["project_id"]}')
    assert status == 200
    assert {a['role']['id'] for a in body['role_assignments']} == set(first['role_ids'].values())
    assert [s['type'] for s in keystone.catalog(token)] == ['identity']
    # Keystone really keeps its data in this MariaDB
    assert mariadb.sql("SELECT name FROM keystone.project WHERE name='service';").split() == ['service']
    # a new password is applied; the old one stops working, and so do tokens issued before the change
    # (revocation must get through Keystone's in-process cache)
    pw2 = secrets.token_urlsafe(12)
    assert keystone.ensure_service_user('smoke-glance', pw2)['user_id'] == first['user_id']
    with pytest.raises(svc.ServiceError, match='HTTP 401'):
        keystone.token('smoke-glance', pw, 'service')
    assert keystone.request('GET', '/v3/auth/catalog', token=token)[0] in (401, 404)
    assert [s['type'] for s in keystone.catalog(keystone.token('smoke-glance', pw2, 'service'))] == ['identity']


def test_secrets_stay_private(services_dir, mariadb, rabbitmq, keystone):
    values = {p.name: p.read_text().strip() for p in (services_dir / 'secrets').iterdir()}
    assert {'keystone-admin.password', 'mariadb-keystone.password', 'rabbitmq-openstack.password'} <= set(values)
    assert stat.S_IMODE((services_dir / 'secrets').stat().st_mode) == 0o700
    for path in [*(services_dir / 'secrets').iterdir(), keystone.conf, keystone.clouds_yaml,
                 rabbitmq.dir / 'rabbitmq.conf']:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    record = (services_dir / 'services.json').read_text()
    json.loads(record)
    leaks = []
    for entry in Path('/proc').iterdir():
        try:
            cmdline = (entry / 'cmdline').read_bytes().decode(errors='replace')
        except OSError:
            continue
        leaks += [f'{name} in /proc/{entry.name}/cmdline' for name, v in values.items() if v in cmdline]
    # nowhere in the state dir (logs, databases, mnesia) except the secrets and the 0600 config files
    private = {keystone.conf, keystone.clouds_yaml, rabbitmq.dir / 'rabbitmq.conf', rabbitmq.transport_url_file}
    for path in services_dir.rglob('*'):
        if path.is_file() and path not in private and 'secrets' not in path.relative_to(services_dir).parts:
            data = path.read_bytes()
            leaks += [f'{name} in {path}' for name, v in values.items() if v.encode() in data]
    assert leaks == []


def test_mariadb_stale_and_foreign_state(tmp_path):
    reason = svc.MariaDB.missing()
    if reason or os.geteuid() != 0:
        pytest.skip(reason or 'needs root')
    db = svc.MariaDB(tmp_path).start()
    try:
        first_pid = db.pid
        os.kill(first_pid, signal.SIGKILL)                 # a killed run leaves a stale pidfile behind
        again = svc.MariaDB(tmp_path)
        assert again.port == db.port                       # the recorded port is reused
        again.start()
        assert again.pid not in (None, first_pid) and again.sql('SELECT 7;').strip() == '7'
        again.stop()
        assert again.pid is None and not again.running()
        pidfile = tmp_path / 'mariadb' / 'mysqld.pid'
        # a pidfile whose PID now belongs to an unrelated process (PID reuse) counts as stale
        with subprocess.Popen(['sleep', '60']) as unrelated:
            try:
                pidfile.write_text(f'{unrelated.pid}\n')
                again.start()
                assert again.sql('SELECT 8;').strip() == '8' and unrelated.poll() is None
                again.stop()
            finally:
                unrelated.kill()
        # a live process we did not record that works in the dir, named by its pidfile: refused
        with subprocess.Popen(['sleep', '60'], cwd=tmp_path / 'mariadb') as foreign:
            try:
                pidfile.write_text(f'{foreign.pid}\n')
                with pytest.raises(svc.ServiceError, match='refusing to reuse'):
                    svc.MariaDB(tmp_path).start()
                assert foreign.poll() is None                  # and it was left alone
            finally:
                foreign.kill()
    finally:
        db.stop()
