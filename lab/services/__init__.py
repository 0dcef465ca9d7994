"""Real MariaDB, RabbitMQ and Keystone in a private state directory (stdlib + the formula's _utils).

Shared by the functional tests (test/plugins/services.py) and the lab (lab/provision.py). Every
daemon runs as root from this machine's packages/venvs, binds only to ``host`` and keeps all of its
state under ``state_dir``; nothing in /etc, /var or /run is read or written.

Public API (stable; passwords live in 0600 files under STATE_DIR/secrets and in attributes, never on
command lines, never in printed output):

    Services(state_dir, host='127.0.0.1', ports=None, rabbit=True, os_venv=None, keystone_cache=True)
        ports: {'mariadb': P, 'rabbitmq': P, 'keystone': P}; a missing/None entry = a random free port
               on host (reused from STATE_DIR/services.json on restart). STANDARD_PORTS = 3306/5672/5000.
        .up() -> dict        start everything (idempotent; MariaDB init and RabbitMQ boot in parallel)
        .down()              stop everything this runner started (idempotent; works from another process)
        .describe() -> dict  host, ports, URLs, user names and password *file* paths, PIDs, timings
        .mariadb  .rabbitmq (None when rabbit=False)  .keystone
        Services.load(state_dir) -> Services     rebuild from STATE_DIR/services.json (for ``down``)

    MariaDB(state_dir, host='127.0.0.1', port=None)
        .start() .stop() .running() -> bool   .host .port .socket .pid .timings
        .sql(text) -> str            run SQL as root over the private socket (SQL on stdin; tab-separated)
        .create_database(name, user, password)   idempotent; user@'%' gets ALL on name.*, password (re)set
        .url(name, user, password) -> 'mysql+pymysql://user:pw@host:port/name'  (contains the password)

    RabbitMQ(state_dir, host='127.0.0.1', port=None)
        .start() .stop() .running()   .host .port .user ('openstack') .password .password_file
        .transport_url  ('rabbit://openstack:pw@host:port/', oslo.messaging; contains the password)
        .amqp_url ('amqp://openstack:pw@host:port//', kombu)  .transport_url_file (0600, the transport_url)
        .epmd_port .dist_port .node ('rabbit@localhost')   .ctl(*args) -> CompletedProcess (no secrets in args)

    Keystone(state_dir, mariadb, host=None (= mariadb.host), port=None, os_venv=None, cache=True)
        os_venv: default $GLANCE_HA_OS_VENV, else <repo>/.venv-os (keystone 30, gunicorn, PyMySQL)
        cache: [cache] backend dogpile.cache.memory (one worker: coherent; ~37x less CPU per request);
               False = [cache] enabled = false
        .start() .stop() .running()   .host .port .url ('http://H:P') .auth_url ('http://H:P/v3')
        .region ('RegionOne') .admin_user ('admin') .admin_project ('admin') .domain ('Default')
        .admin_password .admin_password_file .clouds_yaml (0600 file, cloud 'lab-admin')
        .token(username=None, password=None, project=None) -> str   project-scoped token; defaults:
            the admin user with admin's password and project; other users need a password and get
            project 'service' unless one is given. ServiceError('... HTTP 401 ...') on a bad login.
        .request(method, path, body=None, token=None) -> (status, headers, json-or-None)   admin token default
        .ensure_service_user(username, password, project='service', roles=('admin', 'service'))
            -> {'project_id', 'user_id', 'role_ids': {role: id}}   idempotent
        .catalog(token=None) -> list     the token's service catalog (GET /v3/auth/catalog)

    free_port(host='127.0.0.1') -> int;  ServiceError;  missing(rabbit=True, os_venv=None) -> reason or None

CLI (run with .venv/bin/python from the repo root):
    python -m lab.services up --state-dir D [--host H] [--no-rabbit] [--standard-ports]
                              [--mariadb-port P] [--rabbitmq-port P] [--keystone-port P]
                              [--no-keystone-cache]
        prints describe() as JSON on stdout (step timings go to stderr)
    python -m lab.services down --state-dir D
    python -m lab.services status --state-dir D      JSON: which recorded processes run, RSS in MB

Modules: base (records, secrets, the Daemon base class), mariadb, rabbitmq, keystone, stack
(Services and the CLI); lab.procs holds the process bookkeeping shared with the lab.

State dir layout: services.json (PIDs with start times, ports; no secrets), secrets/ (0700),
mariadb/ (data, mysqld.sock, error.log), rabbitmq/ (home with the Erlang cookie, mnesia, log),
keystone/ (keystone.conf 0600, fernet and credential keys, wsgi wrapper, gunicorn.pid, logs).
A process is "ours" only if services.json records its PID with the same kernel start time; stop()
signals only such processes (and members of their process groups started after them). A pidfile naming
a live process that is not ours makes start() refuse the directory; stale pidfiles are ignored.
PIDs are those of the PID namespace ``up`` ran in: run ``down`` in the same one (the lab uses nsenter).
Daemons are children of the starting process (their own sessions); after the CLI exits, reaping them
is up to PID 1 (a zombie counts as stopped). Test-speed settings: Keystone hashes passwords with bcrypt's
minimum 4 rounds, InnoDB's buffer pool is 32 MB.
"""

from lab.services.base import DEFAULT_HOST, STANDARD_PORTS, ServiceError, free_port
from lab.services.keystone import Keystone
from lab.services.mariadb import MariaDB
from lab.services.rabbitmq import RabbitMQ
from lab.services.stack import Services, missing

__all__ = [
    'DEFAULT_HOST', 'STANDARD_PORTS', 'Keystone', 'MariaDB', 'RabbitMQ', 'ServiceError', 'Services',
    'free_port', 'missing',
]
