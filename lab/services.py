"""Real MariaDB, RabbitMQ and Keystone in a private state directory (stdlib only).

Shared by the functional tests (test/plugins/services.py) and the lab (lab/lab.py). Every daemon runs as
root from this machine's packages/venvs, binds only to ``host`` and keeps all of its state under
``state_dir``; nothing in /etc, /var or /run is read or written.

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

CLI (run with /work/main/.venv/bin/python from the repo root):
    python -m lab.services up --state-dir D [--host H] [--no-rabbit] [--standard-ports]
                              [--mariadb-port P] [--rabbitmq-port P] [--keystone-port P]
                              [--no-keystone-cache]
        prints describe() as JSON on stdout (step timings go to stderr)
    python -m lab.services down --state-dir D
    python -m lab.services status --state-dir D      JSON: which recorded processes run, RSS in MB

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

import argparse
import base64
import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

__all__ = [
    'DEFAULT_HOST', 'STANDARD_PORTS', 'Keystone', 'MariaDB', 'RabbitMQ', 'ServiceError', 'Services',
    'free_port', 'missing',
]

log = logging.getLogger('lab.services')

DEFAULT_HOST = '127.0.0.1'
STANDARD_PORTS = {'mariadb': 3306, 'rabbitmq': 5672, 'keystone': 5000}
REPO = Path(__file__).resolve().parents[1]
RABBIT_BIN = Path('/usr/lib/rabbitmq/bin')
STOP_GRACE = 20.0      # seconds between SIGTERM and SIGKILL
KILL_WAIT = 5.0


class ServiceError(RuntimeError):
    """A service could not be started/stopped; the message never contains a secret."""


# --------------------------------------------------------------------------------------------------
# small helpers

def _os_venv(os_venv=None):
    return Path(os_venv or os.environ.get('GLANCE_HA_OS_VENV') or REPO / '.venv-os')


def missing(rabbit=True, os_venv=None):
    """Return why the services cannot run here (str), or None when they can."""
    if os.geteuid() != 0:
        return 'lab.services needs root'
    for reason in (MariaDB.missing(), RabbitMQ.missing() if rabbit else None, Keystone.missing(os_venv)):
        if reason:
            return reason
    return None


def free_port(host=DEFAULT_HOST):
    """A TCP port that is free on host right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _port_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _secret(state_dir, name):
    """Read STATE_DIR/secrets/NAME, creating it (0600, random) on first use."""
    sdir = Path(state_dir) / 'secrets'
    sdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(sdir, 0o700)
    path = sdir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    value = secrets.token_urlsafe(18)
    with os.fdopen(fd, 'w') as f:
        f.write(value + '\n')
    return value


def _write_private(path, text):
    """Write a file readable by root only (it may hold secrets)."""
    path = Path(path)
    tmp = path.with_name(path.name + '.tmp')
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _scrub(text, *secret_values):
    for value in secret_values:
        if value:
            text = text.replace(value, '***')
    return text


def _tail(path, lines=15, *secret_values):
    try:
        data = Path(path).read_text(errors='replace').splitlines()[-lines:]
    except OSError:
        return ''
    return _scrub('\n'.join(data), *secret_values)


@contextlib.contextmanager
def _timed(timings, step):
    t0 = time.monotonic()
    try:
        yield
    finally:
        timings[step] = round(time.monotonic() - t0, 2)
        log.info('%-28s %6.2f s', step, timings[step])


# --------------------------------------------------------------------------------------------------
# processes: only the ones we started (PID + kernel start time recorded in services.json)

_CHILDREN = {}          # pid -> Popen, for reaping children of this process
_CHILDREN_LOCK = threading.Lock()


def _stat(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            data = f.read()
    except (OSError, ValueError):
        return None
    rest = data[data.rindex(')') + 2:].split()
    return {'state': rest[0], 'ppid': int(rest[1]), 'pgid': int(rest[2]), 'start': int(rest[19])}


def _reap():
    with _CHILDREN_LOCK:
        for pid, proc in list(_CHILDREN.items()):
            if proc.poll() is not None:
                del _CHILDREN[pid]


def _alive(pid, start=None):
    _reap()
    st = _stat(pid)
    if st is None or st['state'] in 'ZX':
        return False
    return start is None or st['start'] == start


def _group(pgid, not_before):
    """Live members of process group pgid that started no earlier than its recorded leader."""
    out = []
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            st = _stat(int(entry))
            if st and st['pgid'] == pgid and st['start'] >= not_before and st['state'] not in 'ZX':
                out.append(int(entry))
    return out


def _uses_dir(pid, path):
    """Does process pid work in path (its cwd is inside it, or its command line names it)?"""
    path = str(path)
    try:
        cwd = os.readlink(f'/proc/{pid}/cwd')
        cmdline = Path(f'/proc/{pid}/cmdline').read_bytes().decode(errors='replace')
    except OSError:
        return False
    return cwd == path or cwd.startswith(path + '/') or path in cmdline


def _spawn(argv, logfile, env=None, cwd=None):
    """Start argv in its own session (pgid = pid), stdout+stderr to logfile; return a proc record."""
    with open(logfile, 'ab') as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=env, cwd=cwd, start_new_session=True, close_fds=True)
    with _CHILDREN_LOCK:
        _CHILDREN[proc.pid] = proc
    st = None
    for _ in range(100):
        st = _stat(proc.pid)
        if st:
            break
        time.sleep(0.01)
    return {'pid': proc.pid, 'start': st['start'] if st else 0}


def _proc_alive(rec):
    return bool(rec) and (_alive(rec['pid'], rec['start']) or bool(_group(rec['pid'], rec['start'])))


def _terminate(rec, grace=STOP_GRACE, term_pid=None):
    """SIGTERM our process (or term_pid, checked to be in its group), wait, then SIGKILL its group."""
    pid, start = rec['pid'], rec['start']
    if not _proc_alive(rec):
        return
    target = pid if _alive(pid, start) else None
    if term_pid and term_pid in _group(pid, start):
        target = term_pid
    for p in ([target] if target else _group(pid, start)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while _proc_alive(rec) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _proc_alive(rec):
        log.warning('pid %s did not stop in %.0f s: SIGKILL', pid, grace)
        for p in _group(pid, start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + KILL_WAIT
        while _proc_alive(rec) and time.monotonic() < deadline:
            time.sleep(0.05)
    with _CHILDREN_LOCK:
        proc = _CHILDREN.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=KILL_WAIT)


def _rss_mb(rec):
    total = 0
    for p in _group(rec['pid'], rec['start']) if rec else ():
        try:
            for line in Path(f'/proc/{p}/status').read_text().splitlines():
                if line.startswith('VmRSS:'):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


# --------------------------------------------------------------------------------------------------
# services.json (no secrets): {"host":..., "rabbit":..., "<service>": {"host", "port", "procs": {...}}}

@contextlib.contextmanager
def _records_locked(state_dir):
    state_dir = Path(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / '.services.lock', 'a') as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        path = state_dir / 'services.json'
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        yield data
        tmp = path.with_name('services.json.tmp')
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + '\n')
        os.replace(tmp, path)


def _records(state_dir):
    try:
        return json.loads((Path(state_dir) / 'services.json').read_text())
    except (OSError, ValueError):
        return {}


def _wait_for(what, check, timeout, procs=(), logfile=None, secret_values=(), interval=0.1):
    """Poll check() until truthy; fail early if one of procs (records) died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        for rec in procs:
            if not _proc_alive(rec):
                raise ServiceError(f'{what}: process {rec["pid"]} exited during startup; log {logfile}:\n'
                                   + _tail(logfile, 15, *secret_values))
        if time.monotonic() > deadline:
            raise ServiceError(f'{what}: not ready after {timeout:.0f} s; log {logfile}:\n'
                               + _tail(logfile, 15, *secret_values))
        time.sleep(interval)


class _Service:
    name = ''
    pidfiles = ()

    def __init__(self, state_dir, host=DEFAULT_HOST, port=None):
        self.state_dir = Path(state_dir).resolve()
        self.dir = self.state_dir / self.name
        self.host = host or DEFAULT_HOST
        self._want_port = port
        self.timings = {}
        rec = _records(self.state_dir).get(self.name) or {}
        self.port = port or (rec.get('port') if rec.get('host') == self.host else None)

    # record helpers
    def _record(self):
        return _records(self.state_dir).get(self.name) or {}

    def _save(self, **fields):
        with _records_locked(self.state_dir) as data:
            rec = data.setdefault(self.name, {})
            rec.update(fields)
            rec['host'] = self.host
            rec['port'] = self.port

    def _procs(self):
        return self._record().get('procs') or {}

    @property
    def pid(self):
        main = self._procs().get('main')
        return main['pid'] if main and _alive(main['pid'], main['start']) else None

    def running(self):
        procs = self._procs()
        return bool(procs) and all(_alive(r['pid'], r['start']) for r in procs.values())

    def _ready(self):
        raise NotImplementedError

    def _reuse(self):
        """True if our processes from an earlier start still serve with the wanted settings."""
        rec = self._record()
        procs = rec.get('procs') or {}
        if not procs:
            return False
        if (self.running() and rec.get('host') == self.host
                and self._want_port in (None, rec.get('port'))):
            self.port = rec['port']
            try:
                if self._ready():
                    log.info('%s: already running (pid %s), reused', self.name, self.pid)
                    return True
            except OSError:
                pass
        log.info('%s: recorded processes are stale or unhealthy: stopping them', self.name)
        self.stop()
        return False

    def _check_foreign(self):
        """Refuse the directory if a pidfile in it names a live process that we did not record."""
        ours = [r for r in self._procs().values() if _proc_alive(r)]
        for name in self.pidfiles:
            path = self.dir / name
            try:
                pid = int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if not _alive(pid) or not _uses_dir(pid, self.dir):
                path.unlink(missing_ok=True)          # stale, from a killed run (PID gone or reused)
                continue
            if not any(pid in _group(r['pid'], r['start']) for r in ours):
                raise ServiceError(f'{path} names running PID {pid}, which this runner did not start; '
                                   f'refusing to reuse {self.dir}')

    def _choose_port(self):
        if self._want_port:
            self.port = self._want_port
        elif not (self.port and _port_free(self.host, self.port)):
            self.port = free_port(self.host)

    def stop(self):
        """Stop the processes recorded for this service (only ours); idempotent."""
        procs = self._procs()
        t0 = time.monotonic()
        for key in reversed(list(procs)):
            _terminate(procs[key], **self._term_args(key))
        if procs:
            with _records_locked(self.state_dir) as data:
                (data.get(self.name) or {}).pop('procs', None)
            self.timings['stop'] = round(time.monotonic() - t0, 2)
            log.info('%s: stopped in %.2f s', self.name, self.timings['stop'])

    def _term_args(self, key):
        return {}


# --------------------------------------------------------------------------------------------------

def _mysql_greeting(host, port):
    """True when a MariaDB server answers host:port: a handshake, or an error packet (host not allowed)."""
    with socket.create_connection((host, port), timeout=2) as s:
        s.settimeout(2)
        head = b''
        while len(head) < 5:
            chunk = s.recv(5 - len(head))
            if not chunk:
                return False
            head += chunk
        return head[4] in (10, 0xff)


class MariaDB(_Service):
    """Debian mariadbd --no-defaults with a private datadir and socket; root via the unix socket."""

    name = 'mariadb'
    pidfiles = ('mysqld.pid',)
    binaries = ('mariadbd', 'mariadb-install-db', 'mariadb')

    @classmethod
    def missing(cls):
        for b in cls.binaries:
            if not shutil.which(b, path=os.environ.get('PATH', '') + ':/usr/sbin:/usr/bin'):
                return f'{b} not installed (Debian mariadb-server/mariadb-client)'
        return None

    @property
    def socket(self):
        return self.dir / 'mysqld.sock'

    @property
    def datadir(self):
        return self.dir / 'data'

    def _ready(self):
        return _mysql_greeting(self.host, self.port)

    def start(self):
        if self._reuse():
            return self
        self._check_foreign()
        self.dir.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket)) > 100:
            raise ServiceError(f'state dir path too long for a unix socket: {self.socket}')
        self._choose_port()
        fresh = not (self.datadir / 'mysql').is_dir()
        if fresh:
            with _timed(self.timings, 'mariadb install-db'):
                shutil.rmtree(self.datadir, ignore_errors=True)
                with open(self.dir / 'install.log', 'ab') as out:
                    r = subprocess.run(
                        ['mariadb-install-db', '--no-defaults', '--user=root', f'--datadir={self.datadir}',
                         '--auth-root-authentication-method=socket', '--skip-test-db'],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False)
                if r.returncode:
                    raise ServiceError(f'mariadb-install-db failed; log {self.dir}/install.log:\n'
                                       + _tail(self.dir / 'install.log'))
        with _timed(self.timings, 'mariadb start'):
            self.socket.unlink(missing_ok=True)
            errlog = self.dir / 'error.log'
            main = _spawn(['mariadbd', '--no-defaults', '--user=root', f'--datadir={self.datadir}',
                           f'--socket={self.socket}', f'--pid-file={self.dir}/mysqld.pid',
                           f'--bind-address={self.host}', f'--port={self.port}', '--skip-name-resolve',
                           f'--log-error={errlog}', '--innodb-buffer-pool-size=32M',
                           '--innodb-log-file-size=16M', '--character-set-server=utf8mb4',
                           '--collation-server=utf8mb4_general_ci', '--max-connections=500',
                           '--log-warnings=1'],
                          self.dir / 'stdout.log')
            self._save(procs={'main': main})
            _wait_for('mariadb', self._ready, 60, [main], errlog)
        if fresh:
            # mariadb-install-db may create anonymous users; they would shadow user@'%' for local logins
            self.sql("DELETE FROM mysql.global_priv WHERE User=''; FLUSH PRIVILEGES;")
        return self

    def sql(self, text, database=None, secret_values=()):
        """Run SQL as root over the private socket (SQL on stdin, never on the command line)."""
        argv = ['mariadb', '--no-defaults', '-uroot', f'--socket={self.socket}', '--batch',
                '--skip-column-names']
        if database:
            argv.append(database)
        r = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=60, check=False)
        if r.returncode:
            raise ServiceError('mariadb: SQL failed: ' + _scrub(r.stderr.strip(), *secret_values))
        return r.stdout

    @staticmethod
    def _ident(value):
        if not re.fullmatch(r'[A-Za-z0-9_]{1,64}', value or ''):
            raise ValueError(f'not a plain SQL identifier: {value!r}')
        return value

    def create_database(self, name, user, password):
        """Create database NAME and user@'%' with ALL on it and this password (idempotent)."""
        name, user = self._ident(name), self._ident(user)
        pw = password.replace('\\', '\\\\').replace("'", "\\'")
        self.sql(f"CREATE DATABASE IF NOT EXISTS `{name}`;\n"
                 f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{pw}';\n"
                 f"ALTER USER '{user}'@'%' IDENTIFIED BY '{pw}';\n"
                 f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'%';\n", secret_values=(password, pw))

    def url(self, name, user, password):
        """SQLAlchemy URL over TCP (contains the password: never print it)."""
        return (f'mysql+pymysql://{user}:{urllib.parse.quote(password, safe="")}@{self.host}:{self.port}/'
                f'{name}?charset=utf8mb4')

    def describe(self):
        return {'host': self.host, 'port': self.port, 'socket': str(self.socket), 'pid': self.pid,
                'root': f'mariadb --no-defaults -uroot --socket={self.socket}',
                'error_log': str(self.dir / 'error.log')}


# --------------------------------------------------------------------------------------------------

def _amqp_ready(host, port):
    """True when host:port answers the AMQP 0-9-1 header with a Connection.Start method frame."""
    with socket.create_connection((host, port), timeout=2) as s:
        s.settimeout(3)
        s.sendall(b'AMQP\x00\x00\x09\x01')
        head = b''
        while len(head) < 11:
            chunk = s.recv(11 - len(head))
            if not chunk:
                return False
            head += chunk
        ftype, _chan, _size, cls, meth = struct.unpack('>BHIHH', head)
        return ftype == 1 and (cls, meth) == (10, 10)


class RabbitMQ(_Service):
    """/usr/lib/rabbitmq/bin/rabbitmq-server as root with RABBITMQ_* env, a private HOME and own epmd."""

    name = 'rabbitmq'
    pidfiles = ('rabbitmq.pid',)
    user = 'openstack'
    node = 'rabbit@localhost'

    def __init__(self, state_dir, host=DEFAULT_HOST, port=None):
        super().__init__(state_dir, host, port)
        rec = self._record()
        self.epmd_port = rec.get('epmd_port')
        self.dist_port = rec.get('dist_port')

    @classmethod
    def missing(cls):
        for b in (RABBIT_BIN / 'rabbitmq-server', RABBIT_BIN / 'rabbitmqctl'):
            if not os.access(b, os.X_OK):
                return f'{b} not installed (Debian rabbitmq-server)'
        if not shutil.which('epmd'):
            return 'epmd not installed (Debian erlang-base)'
        return None

    @property
    def password(self):
        return _secret(self.state_dir, 'rabbitmq-openstack.password')

    @property
    def password_file(self):
        return self.state_dir / 'secrets' / 'rabbitmq-openstack.password'

    @property
    def transport_url(self):
        return f'rabbit://{self.user}:{urllib.parse.quote(self.password, safe="")}@{self.host}:{self.port}/'

    @property
    def amqp_url(self):
        """The same broker as an amqp:// URL (kombu); contains the password."""
        return f'amqp://{self.user}:{urllib.parse.quote(self.password, safe="")}@{self.host}:{self.port}//'

    @property
    def transport_url_file(self):
        return self.state_dir / 'secrets' / 'rabbitmq-transport-url'

    def _env(self):
        d = self.dir
        env = {k: v for k, v in os.environ.items() if not k.startswith(('RABBITMQ_', 'ERL_'))}
        env.update({
            'HOME': str(d / 'home'),
            'RABBITMQ_NODENAME': self.node,
            'RABBITMQ_NODE_IP_ADDRESS': self.host,
            'RABBITMQ_NODE_PORT': str(self.port),
            'RABBITMQ_DIST_PORT': str(self.dist_port),
            'ERL_EPMD_PORT': str(self.epmd_port),
            'ERL_EPMD_ADDRESS': self.host,
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS': '-kernel inet_dist_use_interface {127,0,0,1}',
            'RABBITMQ_CONF_ENV_FILE': str(d / 'rabbitmq-env.conf'),
            'RABBITMQ_CONFIG_FILE': str(d / 'rabbitmq.conf'),
            'RABBITMQ_ADVANCED_CONFIG_FILE': str(d / 'advanced.config'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': str(d / 'enabled_plugins'),
            'RABBITMQ_MNESIA_BASE': str(d / 'mnesia'),
            'RABBITMQ_LOG_BASE': str(d / 'log'),
            'RABBITMQ_PID_FILE': str(d / 'rabbitmq.pid'),
        })
        return env

    def ctl(self, *args, timeout=60):
        """rabbitmqctl -n NODE ARGS with this node's env/cookie (never pass secrets in args)."""
        return subprocess.run([str(RABBIT_BIN / 'rabbitmqctl'), '-n', self.node, *args], env=self._env(),
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                              check=False)

    def _ready(self):
        return _amqp_ready(self.host, self.port)

    def _term_args(self, key):
        return {'grace': 30.0}

    def start(self):
        if self._reuse():
            return self
        self._check_foreign()
        d = self.dir
        for sub in ('home', 'mnesia', 'log'):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d / 'home', 0o700)
        self._choose_port()
        rec = self._record()
        self.dist_port = rec.get('dist_port') if rec.get('dist_port') and _port_free(
            '127.0.0.1', rec['dist_port']) else free_port('127.0.0.1')
        self.epmd_port = rec.get('epmd_port')
        while not (self.epmd_port and self.epmd_port != self.dist_port
                   and _port_free('127.0.0.1', self.epmd_port) and _port_free(self.host, self.epmd_port)):
            self.epmd_port = free_port(self.host)
        if not self.password_file.exists() and any((d / 'mnesia').iterdir()):
            shutil.rmtree(d / 'mnesia')           # its user has a password we no longer know
            (d / 'mnesia').mkdir()
        pw = self.password
        _write_private(d / 'rabbitmq.conf',
                       f'listeners.tcp.1 = {self.host}:{self.port}\n'
                       'loopback_users = none\n'
                       'default_vhost = /\n'
                       f'default_user = {self.user}\n'
                       f'default_pass = {pw}\n'
                       'default_permissions.configure = .*\n'
                       'default_permissions.read = .*\n'
                       'default_permissions.write = .*\n'
                       'default_user_tags.administrator = true\n'
                       'log.console = false\n'
                       'log.file.level = info\n')
        _write_private(self.transport_url_file, self.transport_url + '\n')
        (d / 'enabled_plugins').write_text('[].\n')
        (d / 'rabbitmq-env.conf').write_text('')
        (d / 'advanced.config').write_text('[].\n')
        env = self._env()
        with _timed(self.timings, 'rabbitmq start'):
            epmd = _spawn(['epmd', '-port', str(self.epmd_port), '-address', self.host], d / 'epmd.log', env)
            self._save(procs={'epmd': epmd}, epmd_port=self.epmd_port, dist_port=self.dist_port)
            _wait_for('epmd', lambda: socket.create_connection(('127.0.0.1', self.epmd_port), 1).close()
                      or True, 10, [epmd], d / 'epmd.log')
            main = _spawn([str(RABBIT_BIN / 'rabbitmq-server')], d / 'stdout.log', env)
            self._save(procs={'epmd': epmd, 'main': main})
            _wait_for('rabbitmq', self._ready, 120, [main, epmd], d / 'stdout.log', (pw,), interval=0.25)
        return self

    def stop(self):
        """Graceful: TERM the Erlang VM (its wrapper script forwards TERM too), then its epmd by PID."""
        procs = self._procs()
        main = procs.get('main')
        beam = None
        if main:
            with contextlib.suppress(OSError, ValueError, IndexError):
                beam = int((self.dir / 'rabbitmq.pid').read_text().split()[0])
        t0 = time.monotonic()
        if main:
            _terminate(main, grace=30.0, term_pid=beam)
        if procs.get('epmd'):
            _terminate(procs['epmd'], grace=5.0)
        if procs:
            with _records_locked(self.state_dir) as data:
                (data.get(self.name) or {}).pop('procs', None)
            self.timings['stop'] = round(time.monotonic() - t0, 2)
            log.info('%s: stopped in %.2f s', self.name, self.timings['stop'])

    def describe(self):
        return {'host': self.host, 'port': self.port, 'user': self.user, 'vhost': '/',
                'password_file': str(self.password_file), 'transport_url_file': str(self.transport_url_file),
                'node': self.node, 'epmd_port': self.epmd_port, 'dist_port': self.dist_port,
                'home': str(self.dir / 'home'), 'pid': self.pid, 'log_dir': str(self.dir / 'log')}


# --------------------------------------------------------------------------------------------------

_WSGI = '''\
# gunicorn entry point: oslo.config must not see gunicorn's argv (workers would exit 2 in a loop)
import sys
sys.argv = sys.argv[:1]
from keystone.wsgi.api import application  # noqa: E402,F401
'''

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _fernet_repository(path):
    """What `keystone-manage fernet_setup` / `credential_setup` leave behind, without their ~2 CPU-s of
    imports each (measured; the machine has 2 shared cores): a 0700 directory with a staged key 0 and a
    primary key 1, each a Fernet key (cryptography's Fernet.generate_key(): urlsafe base64 of 32 random
    bytes), mode 0600, no newline. Keystone itself loads and uses them (tokens, credentials)."""
    path = Path(path)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    if not (path / '0').exists():
        for name in ('1', '0'):
            _write_private(path / name, base64.urlsafe_b64encode(os.urandom(32)).decode())


class Keystone(_Service):
    """Keystone 30 from the OpenStack venv under gunicorn, fernet tokens, DB in the given MariaDB."""

    name = 'keystone'
    pidfiles = ('gunicorn.pid',)
    region = 'RegionOne'
    admin_user = 'admin'
    admin_project = 'admin'
    domain = 'Default'
    db_name = db_user = 'keystone'

    def __init__(self, state_dir, mariadb, host=None, port=None, os_venv=None, cache=True):
        super().__init__(state_dir, host or mariadb.host, port)
        self.mariadb = mariadb
        self.cache = cache
        self.venv = _os_venv(os_venv)
        self._admin_token = None
        self._lock = threading.Lock()

    @classmethod
    def missing(cls, os_venv=None):
        venv = _os_venv(os_venv)
        for b in ('keystone-manage', 'gunicorn'):
            if not os.access(venv / 'bin' / b, os.X_OK):
                return f'{venv}/bin/{b} missing (OpenStack venv; set GLANCE_HA_OS_VENV)'
        return None

    # ---- public properties
    @property
    def url(self):
        return f'http://{self.host}:{self.port}'

    @property
    def auth_url(self):
        return self.url + '/v3'

    @property
    def admin_password(self):
        return _secret(self.state_dir, 'keystone-admin.password')

    @property
    def admin_password_file(self):
        return self.state_dir / 'secrets' / 'keystone-admin.password'

    @property
    def clouds_yaml(self):
        return self.dir / 'clouds.yaml'

    @property
    def conf(self):
        return self.dir / 'keystone.conf'

    def _db_password(self):
        return _secret(self.state_dir, 'mariadb-keystone.password')

    # ---- lifecycle
    def prepare(self):
        """Config, WSGI wrapper, fernet and credential key repositories (nothing that needs the DB)."""
        d = self.dir
        (d / 'wsgi').mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        if self.mariadb.port is None:
            raise ServiceError('keystone: MariaDB has no port yet (start it first)')
        dburl = self.mariadb.url(self.db_name, self.db_user, self._db_password())
        _write_private(self.conf,
                       '[DEFAULT]\n'
                       f'log_file = {d}/keystone.log\n'
                       'use_stderr = false\n'
                       '[database]\n'
                       f'connection = {dburl}\n'
                       '[token]\nprovider = fernet\n'
                       f'[fernet_tokens]\nkey_repository = {d}/fernet-keys\n'
                       f'[fernet_receipts]\nkey_repository = {d}/fernet-keys\n'
                       f'[credential]\nkey_repository = {d}/credential-keys\n'
                       # In-process cache (one gunicorn worker, so coherent): without it every
                       # authenticated request runs ~200 SQL queries (0.33 vs 0.009 CPU-s measured).
                       + ('[cache]\nenabled = true\nbackend = dogpile.cache.memory\n' if self.cache
                          else '[cache]\nenabled = false\n') +
                       # bcrypt's minimum: every password login checks a hash (measured here: 12
                       # rounds, the default, 0.195 CPU-s per check; 4 rounds 0.001 s)
                       '[identity]\npassword_hash_rounds = 4\n')
        (d / 'wsgi' / 'keystone_wsgi.py').write_text(_WSGI)
        for repo in ('fernet-keys', 'credential-keys'):
            _fernet_repository(d / repo)
        self._prepared = (self.host, self.mariadb.host, self.mariadb.port)

    def _manage_async(self, *args, env_extra=None):
        env = dict(os.environ, PYTHONWARNINGS='ignore', **(env_extra or {}))
        with open(self.dir / 'manage.log', 'ab') as out:
            proc = subprocess.Popen([str(self.venv / 'bin' / 'keystone-manage'), '--config-file',
                                     str(self.conf), *args], stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, env=env)
        return args[0], proc

    def _manage_check(self, what, proc, timeout=300):
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = 'timeout'
        if rc:
            raise ServiceError(f'keystone-manage {what} failed ({rc}); log {self.dir}/manage.log:\n'
                               + _tail(self.dir / 'manage.log', 15, self.admin_password,
                                       self._db_password()))

    def _manage(self, *args, env_extra=None):
        self._manage_check(*self._manage_async(*args, env_extra=env_extra))

    def _ready(self):
        try:
            with _NO_PROXY.open(self.auth_url, timeout=3) as r:
                return r.status == 200 and b'"version"' in r.read()
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def start(self):
        if self._reuse():
            return self
        self._check_foreign()
        if not self.mariadb.running():
            raise ServiceError('keystone: MariaDB is not running (start it first)')
        self._choose_port()
        if getattr(self, '_prepared', None) != (self.host, self.mariadb.host, self.mariadb.port):
            self.prepare()
        d = self.dir
        new_admin_pw = not self.admin_password_file.exists()
        db_pw, admin_pw = self._db_password(), self.admin_password
        self.mariadb.create_database(self.db_name, self.db_user, db_pw)
        marker = d / 'bootstrap.json'
        want = {'url': self.auth_url, 'db': f'{self.mariadb.host}:{self.mariadb.port}'}
        tables = self.mariadb.sql("SELECT COUNT(*) FROM information_schema.tables "
                                  f"WHERE table_schema='{self.db_name}';").strip()
        try:
            done = json.loads(marker.read_text()) == want and tables not in ('', '0') and not new_admin_pw
        except (OSError, ValueError):
            done = False
        if not done:
            with _timed(self.timings, 'keystone db_sync'):
                self._manage('db_sync')
        self._write_clouds_yaml()
        # gunicorn's worker imports keystone (~2 CPU-s) while bootstrap runs; the readiness probe
        # (GET /v3, static) touches no data, and nothing is reported ready before bootstrap is done.
        env = dict(os.environ, OS_KEYSTONE_CONFIG_DIR=str(d), OS_KEYSTONE_CONFIG_FILES=str(self.conf),
                   PYTHONWARNINGS='ignore')
        t0 = time.monotonic()
        main = _spawn([str(self.venv / 'bin' / 'gunicorn'), '--chdir', str(d / 'wsgi'),
                       '--bind', f'{self.host}:{self.port}', '--workers', '1', '--threads', '4',
                       '--timeout', '120', '--graceful-timeout', '5', '--no-control-socket',
                       '--pid', str(d / 'gunicorn.pid'), '--error-logfile', str(d / 'gunicorn.log'),
                       '--capture-output', 'keystone_wsgi:application'],
                      d / 'gunicorn.out', env, cwd=str(d / 'wsgi'))
        self._save(procs={'main': main})
        if not done:
            with _timed(self.timings, 'keystone bootstrap'):
                self._manage('bootstrap', '--bootstrap-username', self.admin_user,
                             '--bootstrap-project-name', self.admin_project,
                             '--bootstrap-role-name', 'admin', '--bootstrap-service-name', 'keystone',
                             '--bootstrap-region-id', self.region,
                             '--bootstrap-admin-url', self.auth_url,
                             '--bootstrap-internal-url', self.auth_url,
                             '--bootstrap-public-url', self.auth_url,
                             env_extra={'OS_BOOTSTRAP_PASSWORD': admin_pw})
            marker.write_text(json.dumps(want) + '\n')
        _wait_for('keystone', self._ready, 90, [main], d / 'gunicorn.log', (admin_pw, db_pw), 0.2)
        self.timings['keystone serve'] = round(time.monotonic() - t0, 2)
        log.info('%-28s %6.2f s', 'keystone serve (+bootstrap)', self.timings['keystone serve'])
        self._admin_token = None
        return self

    def _term_args(self, key):
        return {'grace': 15.0}

    def _write_clouds_yaml(self):
        _write_private(self.clouds_yaml,
                       'clouds:\n'
                       '  lab-admin:\n'
                       '    auth:\n'
                       f'      auth_url: {self.auth_url}\n'
                       f'      username: {self.admin_user}\n'
                       f'      password: "{self.admin_password}"\n'
                       f'      project_name: {self.admin_project}\n'
                       f'      user_domain_name: {self.domain}\n'
                       f'      project_domain_name: {self.domain}\n'
                       f'    region_name: {self.region}\n'
                       '    identity_api_version: 3\n'
                       '    interface: public\n')

    # ---- HTTP
    def _http(self, method, path, body=None, token=None, timeout=30):
        url = path if path.startswith('http') else self.url + path
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header('Accept', 'application/json')
        if data is not None:
            req.add_header('Content-Type', 'application/json')
        if token:
            req.add_header('X-Auth-Token', token)
        try:
            with _NO_PROXY.open(req, timeout=timeout) as r:
                status, headers, raw = r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            status, headers, raw = e.code, dict(e.headers), e.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        return status, headers, payload

    def _auth(self, username, password, project=None):
        auth = {'identity': {'methods': ['password'], 'password': {'user': {
            'name': username, 'domain': {'name': self.domain}, 'password': password}}}}
        if project:
            auth['scope'] = {'project': {'name': project, 'domain': {'name': self.domain}}}
        return self._http('POST', '/v3/auth/tokens', {'auth': auth})

    def token(self, username=None, password=None, project=None):
        """A project-scoped token (default: admin/admin)."""
        username = username or self.admin_user
        if password is None:
            if username != self.admin_user:
                raise ValueError('password required for users other than the admin')
            password = self.admin_password
        project = project or (self.admin_project if username == self.admin_user else 'service')
        status, headers, payload = self._auth(username, password, project)
        if status != 201:
            msg = (payload or {}).get('error', {}).get('message', '') if isinstance(payload, dict) else ''
            raise ServiceError(f'keystone: token for {username}/{project}: HTTP {status} '
                               + _scrub(str(msg), password))
        return headers.get('X-Subject-Token') or headers.get('x-subject-token')

    def _admin(self):
        with self._lock:
            if not self._admin_token:
                self._admin_token = self.token()
            return self._admin_token

    def request(self, method, path, body=None, token=None):
        """HTTP against Keystone (path like '/v3/users'); admin token unless one is given."""
        status, headers, payload = self._http(method, path, body, token or self._admin())
        if status == 401 and token is None:          # admin token revoked/expired: once more
            with self._lock:
                self._admin_token = None
            status, headers, payload = self._http(method, path, body, self._admin())
        return status, headers, payload

    def _expect(self, what, result, ok=(200, 201, 204)):
        status, _headers, payload = result
        if status not in ok:
            raise ServiceError(f'keystone: {what}: HTTP {status} {json.dumps(payload)[:300]}')
        return payload

    def _find(self, kind, name, domain=True):
        q = {'name': name}
        if domain:
            q['domain_id'] = 'default'
        payload = self._expect(f'list {kind}', self.request('GET', f'/v3/{kind}?{urllib.parse.urlencode(q)}'))
        items = payload.get(kind) or []
        return items[0] if items else None

    def _ensure(self, kind, singular, name, body, domain=True):
        item = self._find(kind, name, domain)
        if item is None:
            status, _h, payload = self.request('POST', f'/v3/{kind}', {singular: body})
            if status == 409:                         # created concurrently
                item = self._find(kind, name, domain)
            else:
                item = self._expect(f'create {singular} {name}', (status, _h, payload))[singular]
        return item

    def ensure_service_user(self, username, password, project='service', roles=('admin', 'service')):
        """Project, user (with this password, enabled) and role assignments on the project; idempotent."""
        proj = self._ensure('projects', 'project', project,
                            {'name': project, 'domain_id': 'default', 'enabled': True})
        user = self._find('users', username)
        if user is None:
            status, h, payload = self.request('POST', '/v3/users', {'user': {
                'name': username, 'domain_id': 'default', 'password': password, 'enabled': True,
                'default_project_id': proj['id']}})
            if status == 409:
                user = self._find('users', username)
            else:
                user = self._expect(f'create user {username}', (status, h, payload))['user']
        if self._auth(username, password)[0] != 201:    # wrong password or disabled: fix (revokes tokens)
            self._expect(f'update user {username}', self.request(
                'PATCH', f'/v3/users/{user["id"]}', {'user': {'password': password, 'enabled': True}}))
            # The change revokes the user's tokens issued up to now, compared in whole seconds (fernet
            # issued_at): a token issued later in this same second would be refused too. Let it pass.
            time.sleep(1.05 - time.time() % 1)
        role_ids = {}
        for role in roles:
            r = self._ensure('roles', 'role', role, {'name': role}, domain=False)
            role_ids[role] = r['id']
            self._expect(f'grant {role}', self.request(
                'PUT', f'/v3/projects/{proj["id"]}/users/{user["id"]}/roles/{r["id"]}'))
        return {'project_id': proj['id'], 'user_id': user['id'], 'role_ids': role_ids}

    def catalog(self, token=None):
        """The service catalog as the token sees it (GET /v3/auth/catalog)."""
        tok = token or self._admin()
        return self._expect('catalog', self._http('GET', '/v3/auth/catalog', token=tok))['catalog']

    def describe(self):
        return {'url': self.url, 'auth_url': self.auth_url, 'region': self.region,
                'admin_user': self.admin_user, 'admin_project': self.admin_project,
                'user_domain': self.domain, 'project_domain': self.domain,
                'admin_password_file': str(self.admin_password_file), 'clouds_yaml': str(self.clouds_yaml),
                'cloud': 'lab-admin', 'pid': self.pid, 'log': str(self.dir / 'keystone.log'),
                'db': {'name': self.db_name, 'user': self.db_user,
                       'password_file': str(self.state_dir / 'secrets' / 'mariadb-keystone.password')}}


# --------------------------------------------------------------------------------------------------

class Services:
    """MariaDB + (optional) RabbitMQ + Keystone in one state dir."""

    def __init__(self, state_dir, host=DEFAULT_HOST, ports=None, rabbit=True, os_venv=None,
                 keystone_cache=True):
        self.state_dir = Path(state_dir).resolve()
        self.host = host or DEFAULT_HOST
        ports = ports or {}
        self.os_venv = str(_os_venv(os_venv))
        self.mariadb = MariaDB(self.state_dir, self.host, ports.get('mariadb'))
        self.rabbitmq = RabbitMQ(self.state_dir, self.host, ports.get('rabbitmq')) if rabbit else None
        self.keystone = Keystone(self.state_dir, self.mariadb, self.host, ports.get('keystone'), os_venv,
                                 keystone_cache)
        self.timings = {}

    @classmethod
    def load(cls, state_dir):
        """Rebuild from STATE_DIR/services.json (as written by up())."""
        rec = _records(state_dir)
        return cls(state_dir, rec.get('host') or DEFAULT_HOST, rabbit=bool(rec.get('rabbit', True)),
                   os_venv=rec.get('os_venv'))

    @contextlib.contextmanager
    def _dir_lock(self):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        with open(self.state_dir / '.lock', 'a') as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ServiceError(f'{self.state_dir} is being used by another lab.services process') from None
            yield

    def up(self):
        """Start everything (idempotent) and return describe()."""
        t0 = time.monotonic()
        with self._dir_lock():
            with _records_locked(self.state_dir) as data:
                data.update(host=self.host, rabbit=self.rabbitmq is not None, os_venv=self.os_venv)
            errors = []

            def bg(fn):
                def run():
                    try:
                        fn()
                    except BaseException as e:  # noqa: BLE001 -- re-raised by the caller below
                        errors.append(e)
                t = threading.Thread(target=run, daemon=True)
                t.start()
                return t

            rabbit = None
            try:
                rabbit = bg(self.rabbitmq.start) if self.rabbitmq else None
                self.mariadb.start()
                self.keystone.start()
                if rabbit:
                    rabbit.join()
                if errors:
                    raise errors[0]
            except BaseException:
                if rabbit:
                    rabbit.join()
                self._down()
                raise
        self.timings = {}
        for svc in self._all():
            self.timings.update(svc.timings)
        self.timings['up total'] = round(time.monotonic() - t0, 2)
        log.info('%-28s %6.2f s', 'up total', self.timings['up total'])
        with _records_locked(self.state_dir) as data:
            data['timings'] = self.timings
        return self.describe()

    def _all(self):
        return [s for s in (self.mariadb, self.rabbitmq, self.keystone) if s is not None]

    def _down(self):
        t0 = time.monotonic()
        threads = [threading.Thread(target=s.stop) for s in (self.keystone, self.rabbitmq) if s]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.mariadb.stop()
        self.timings['down total'] = round(time.monotonic() - t0, 2)
        log.info('%-28s %6.2f s', 'down total', self.timings['down total'])

    def down(self):
        """Stop every process this runner recorded in STATE_DIR (idempotent)."""
        with self._dir_lock():
            self._down()
            # a RabbitMQ that was started but is no longer wanted (rabbit=False now) is stopped too
            if self.rabbitmq is None and _records(self.state_dir).get('rabbitmq', {}).get('procs'):
                RabbitMQ(self.state_dir, self.host).stop()

    def describe(self):
        return {'state_dir': str(self.state_dir), 'host': self.host,
                'services_json': str(self.state_dir / 'services.json'),
                'mariadb': self.mariadb.describe(),
                'rabbitmq': self.rabbitmq.describe() if self.rabbitmq else None,
                'keystone': self.keystone.describe(),
                'timings': self.timings}

    def status(self):
        rec = _records(self.state_dir)
        out = {}
        for name in ('mariadb', 'rabbitmq', 'keystone'):
            procs = (rec.get(name) or {}).get('procs') or {}
            out[name] = {k: {'pid': p['pid'], 'running': _alive(p['pid'], p['start']), 'rss_mb': _rss_mb(p)}
                         for k, p in procs.items()}
        return out


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m lab.services', description=__doc__.split('\n')[0])
    p.add_argument('action', choices=('up', 'down', 'status'))
    p.add_argument('--state-dir', required=True)
    p.add_argument('--host', default=None, help=f'bind address (default {DEFAULT_HOST}; up only)')
    p.add_argument('--no-rabbit', action='store_true')
    p.add_argument('--standard-ports', action='store_true', help='3306/5672/5000 instead of random ones')
    for name in STANDARD_PORTS:
        p.add_argument(f'--{name}-port', type=int, default=None)
    p.add_argument('--os-venv', default=None)
    p.add_argument('--no-keystone-cache', action='store_true', help='[cache] enabled = false')
    p.add_argument('-q', '--quiet', action='store_true')
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format='lab.services: %(message)s')
    try:
        if args.action == 'up':
            ports = dict(STANDARD_PORTS) if args.standard_ports else {}
            for name in STANDARD_PORTS:
                if getattr(args, f'{name}_port'):
                    ports[name] = getattr(args, f'{name}_port')
            reason = missing(not args.no_rabbit, args.os_venv)
            if reason:
                raise ServiceError(reason)
            svc = Services(args.state_dir, args.host or DEFAULT_HOST, ports, not args.no_rabbit, args.os_venv,
                           not args.no_keystone_cache)
            print(json.dumps(svc.up(), indent=2))
        elif args.action == 'down':
            if not (Path(args.state_dir) / 'services.json').exists():
                return 0
            svc = Services.load(args.state_dir)
            svc.down()
            print(json.dumps({'down': svc.timings}))
        else:
            print(json.dumps(Services.load(args.state_dir).status(), indent=2))
    except ServiceError as e:
        print(f'lab.services: {e}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
