"""pytest plugin: real MariaDB, RabbitMQ and Keystone for the test session (lab.services).

Enable with ``pytest_plugins = ["test.plugins.services"]`` (test/conftest.py) or ``-p test.plugins.services``.

Session fixtures, each started lazily (only if a test asks for it), once, and stopped at session end;
each skips when not root or when its binaries / the OpenStack venv ($GLANCE_HA_OS_VENV, default
<repo>/.venv-os) are missing. Everything binds to 127.0.0.1 on random free ports.

  services_dir  pathlib.Path   the state dir (a session tmp dir): secrets/, services.json, logs
  mariadb       lab.services.MariaDB   .host .port .socket .sql(text) .create_database(name, user, pw)
                                       .url(name, user, pw)
  rabbitmq      lab.services.RabbitMQ  .host .port .user .password .transport_url (rabbit://)
                                       .amqp_url (kombu) .ctl(*args)
  keystone      lab.services.Keystone  .url .auth_url .region .admin_user .admin_project .admin_password
                                       .token(user, pw, project) .ensure_service_user(user, pw, ...)
                                       .request(method, path, body) .catalog(token)

Passwords are attributes (tests need them); never print them or put them in assertion messages.
"""

import os
import sys
from pathlib import Path

import pytest

try:
    from lab import services as _svc
except ImportError:  # run without pytest.ini's `pythonpath = .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from lab import services as _svc


def _skip_unless(reason):
    if os.geteuid() != 0:
        pytest.skip('real services need root')
    if reason:
        pytest.skip(reason)


def _started(service):
    try:
        service.start()
    except _svc.ServiceError as e:
        service.stop()
        pytest.fail(f'{service.name} did not start: {e}', pytrace=False)
    except BaseException:
        service.stop()
        raise
    return service


@pytest.fixture(scope='session')
def services_dir(tmp_path_factory):
    """State directory shared by the session's services (short path: MariaDB's socket lives here)."""
    path = tmp_path_factory.mktemp('svc')
    os.chmod(path, 0o700)
    return path


@pytest.fixture(scope='session')
def mariadb(services_dir):
    _skip_unless(_svc.MariaDB.missing())
    db = _started(_svc.MariaDB(services_dir))
    yield db
    db.stop()


@pytest.fixture(scope='session')
def rabbitmq(services_dir):
    _skip_unless(_svc.RabbitMQ.missing())
    mq = _started(_svc.RabbitMQ(services_dir))
    yield mq
    mq.stop()


@pytest.fixture(scope='session')
def keystone(services_dir, request):
    _skip_unless(_svc.Keystone.missing())
    mariadb = request.getfixturevalue('mariadb')      # after the venv check: no MariaDB just to skip
    ks = _started(_svc.Keystone(services_dir, mariadb))
    yield ks
    ks.stop()
