"""What the daemons of lab.services share: their records in services.json (PIDs with start times,
ports; no secrets), generated passwords (0600 files under STATE_DIR/secrets), readiness waits and
the base class of a daemon that is started and stopped only as ours."""

import contextlib
import fcntl
import json
import logging
import os
import secrets
import socket
import time
from pathlib import Path

import glance_ha_files
import glance_ha_secrets

from lab import REPO
from lab.procs import alive, group, proc_alive, terminate, uses_dir

log = logging.getLogger('lab.services')

DEFAULT_HOST = '127.0.0.1'
STANDARD_PORTS = {'mariadb': 3306, 'rabbitmq': 5672, 'keystone': 5000}


class ServiceError(RuntimeError):
    """A service could not be started/stopped; the message never contains a secret."""


def openstack_venv(os_venv=None):
    """The OpenStack venv (keystone, glance, gunicorn): os_venv, $GLANCE_HA_OS_VENV or <repo>/.venv-os."""
    return Path(os_venv or os.environ.get('GLANCE_HA_OS_VENV') or REPO / '.venv-os')


def free_port(host=DEFAULT_HOST):
    """A TCP port that is free on host right now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(host, port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def greeting(host, port, size, hello=b'', timeout=2.0):
    """The first `size` bytes a TCP server at host:port sends (after `hello`, if given), or None
    when it closes the connection before."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        if hello:
            s.sendall(hello)
        head = b''
        while len(head) < size:
            chunk = s.recv(size - len(head))
            if not chunk:
                return None
            head += chunk
        return head


def secret(state_dir, name):
    """Read STATE_DIR/secrets/NAME, creating it (0600, random) on first use."""
    sdir = Path(state_dir) / 'secrets'
    sdir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(sdir, 0o700)
    try:
        value = secrets.token_urlsafe(18)
        glance_ha_files.write_private(str(sdir), name, value + '\n')
        return value
    except FileExistsError:
        return (sdir / name).read_text().strip()


def mask(text, *secret_values):
    """text with every form of the given secret values masked (the formula's one mask)."""
    return glance_ha_secrets.mask(text, secret_values)


def tail(path, lines=15, *secret_values):
    """The last lines of a log, secrets masked ('' when it cannot be read)."""
    try:
        data = Path(path).read_text(errors='replace').splitlines()[-lines:]
    except OSError:
        return ''
    return mask('\n'.join(data), *secret_values)


@contextlib.contextmanager
def timed(timings, step):
    t0 = time.monotonic()
    try:
        yield
    finally:
        timings[step] = round(time.monotonic() - t0, 2)
        log.info('%-28s %6.2f s', step, timings[step])


# services.json (no secrets): {"host":..., "rabbit":..., "<service>": {"host", "port", "procs": {...}}}

@contextlib.contextmanager
def records_locked(state_dir):
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


def records(state_dir):
    try:
        return json.loads((Path(state_dir) / 'services.json').read_text())
    except (OSError, ValueError):
        return {}


def wait_for(what, check, timeout, watch=(), logfile=None, secret_values=(), interval=0.1):
    """Poll check() until truthy; fail early if one of the processes in watch (records) died."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        for rec in watch:
            if not proc_alive(rec):
                raise ServiceError(f'{what}: process {rec["pid"]} exited during startup; log {logfile}:\n'
                                   + tail(logfile, 15, *secret_values))
        if time.monotonic() > deadline:
            raise ServiceError(f'{what}: not ready after {timeout:.0f} s; log {logfile}:\n'
                               + tail(logfile, 15, *secret_values))
        time.sleep(interval)


class Daemon:
    """One daemon of lab.services: its processes recorded in services.json, started and stopped
    only as ours."""

    name = ''
    pidfiles = ()

    def __init__(self, state_dir, host=DEFAULT_HOST, port=None):
        self.state_dir = Path(state_dir).resolve()
        self.dir = self.state_dir / self.name
        self.host = host or DEFAULT_HOST
        self._want_port = port
        self.timings = {}
        rec = records(self.state_dir).get(self.name) or {}
        self.port = port or (rec.get('port') if rec.get('host') == self.host else None)

    # record helpers
    def _record(self):
        return records(self.state_dir).get(self.name) or {}

    def _save(self, **fields):
        with records_locked(self.state_dir) as data:
            rec = data.setdefault(self.name, {})
            rec.update(fields)
            rec['host'] = self.host
            rec['port'] = self.port

    def _procs(self):
        return self._record().get('procs') or {}

    @property
    def pid(self):
        main = self._procs().get('main')
        return main['pid'] if main and alive(main['pid'], main['start']) else None

    def running(self):
        procs = self._procs()
        return bool(procs) and all(alive(r['pid'], r['start']) for r in procs.values())

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
        ours = [r for r in self._procs().values() if proc_alive(r)]
        for name in self.pidfiles:
            path = self.dir / name
            try:
                pid = int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
            if not alive(pid) or not uses_dir(pid, self.dir):
                path.unlink(missing_ok=True)          # stale, from a killed run (PID gone or reused)
                continue
            if not any(pid in group(r['pid'], r['start']) for r in ours):
                raise ServiceError(f'{path} names running PID {pid}, which this runner did not start; '
                                   f'refusing to reuse {self.dir}')

    def _choose_port(self):
        if self._want_port:
            self.port = self._want_port
        elif not (self.port and port_free(self.host, self.port)):
            self.port = free_port(self.host)

    def stop(self):
        """Stop the processes recorded for this service (only ours); idempotent."""
        procs = self._procs()
        t0 = time.monotonic()
        for key in reversed(list(procs)):
            terminate(procs[key], **self._term_args(key))
        if procs:
            with records_locked(self.state_dir) as data:
                (data.get(self.name) or {}).pop('procs', None)
            self.timings['stop'] = round(time.monotonic() - t0, 2)
            log.info('%s: stopped in %.2f s', self.name, self.timings['stop'])

    def _term_args(self, key):
        return {}
