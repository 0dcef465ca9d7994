"""RabbitMQ for lab.services: Debian's rabbitmq-server as root with a private HOME, config and epmd."""

import contextlib
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.parse
from pathlib import Path

from glance_ha_files import write_atomic

from lab.procs import spawn, terminate
from lab.services.base import (
    DEFAULT_HOST,
    Daemon,
    free_port,
    greeting,
    log,
    port_free,
    records_locked,
    secret,
    timed,
    wait_for,
)

RABBIT_BIN = Path('/usr/lib/rabbitmq/bin')


def _amqp_ready(host, port):
    """True when host:port answers the AMQP 0-9-1 header with a Connection.Start method frame."""
    head = greeting(host, port, 11, hello=b'AMQP\x00\x00\x09\x01', timeout=3.0)
    if head is None:
        return False
    ftype, _chan, _size, cls, meth = struct.unpack('>BHIHH', head)
    return ftype == 1 and (cls, meth) == (10, 10)


class RabbitMQ(Daemon):
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
        return secret(self.state_dir, 'rabbitmq-openstack.password')

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
        self.dist_port = rec.get('dist_port') if rec.get('dist_port') and port_free(
            '127.0.0.1', rec['dist_port']) else free_port('127.0.0.1')
        self.epmd_port = rec.get('epmd_port')
        while not (self.epmd_port and self.epmd_port != self.dist_port
                   and port_free('127.0.0.1', self.epmd_port) and port_free(self.host, self.epmd_port)):
            self.epmd_port = free_port(self.host)
        if not self.password_file.exists() and any((d / 'mnesia').iterdir()):
            shutil.rmtree(d / 'mnesia')           # its user has a password we no longer know
            (d / 'mnesia').mkdir()
        pw = self.password
        write_atomic(d / 'rabbitmq.conf',
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
        write_atomic(self.transport_url_file, self.transport_url + '\n')
        (d / 'enabled_plugins').write_text('[].\n')
        (d / 'rabbitmq-env.conf').write_text('')
        (d / 'advanced.config').write_text('[].\n')
        env = self._env()
        with timed(self.timings, 'rabbitmq start'):
            epmd = spawn(['epmd', '-port', str(self.epmd_port), '-address', self.host], d / 'epmd.log', env)
            self._save(procs={'epmd': epmd}, epmd_port=self.epmd_port, dist_port=self.dist_port)
            wait_for('epmd', lambda: socket.create_connection(('127.0.0.1', self.epmd_port), 1).close()
                      or True, 10, [epmd], d / 'epmd.log')
            main = spawn([str(RABBIT_BIN / 'rabbitmq-server')], d / 'stdout.log', env)
            self._save(procs={'epmd': epmd, 'main': main})
            wait_for('rabbitmq', self._ready, 120, [main, epmd], d / 'stdout.log', (pw,), interval=0.25)
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
            terminate(main, grace=30.0, term_pid=beam)
        if procs.get('epmd'):
            terminate(procs['epmd'], grace=5.0)
        if procs:
            with records_locked(self.state_dir) as data:
                (data.get(self.name) or {}).pop('procs', None)
            self.timings['stop'] = round(time.monotonic() - t0, 2)
            log.info('%s: stopped in %.2f s', self.name, self.timings['stop'])

    def describe(self):
        return {'host': self.host, 'port': self.port, 'user': self.user, 'vhost': '/',
                'password_file': str(self.password_file), 'transport_url_file': str(self.transport_url_file),
                'node': self.node, 'epmd_port': self.epmd_port, 'dist_port': self.dist_port,
                'home': str(self.dir / 'home'), 'pid': self.pid, 'log_dir': str(self.dir / 'log')}
