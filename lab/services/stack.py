"""The services stack of lab.services: MariaDB + RabbitMQ + Keystone in one state dir, and its CLI
(`python -m lab.services up|down|status`)."""

import argparse
import contextlib
import fcntl
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

from lab.procs import alive, rss_mb
from lab.services.base import (
    DEFAULT_HOST,
    STANDARD_PORTS,
    ServiceError,
    log,
    openstack_venv,
    records,
    records_locked,
)
from lab.services.keystone import Keystone
from lab.services.mariadb import MariaDB
from lab.services.rabbitmq import RabbitMQ


def missing(rabbit=True, os_venv=None):
    """Return why the services cannot run here (str), or None when they can."""
    if os.geteuid() != 0:
        return 'lab.services needs root'
    for reason in (MariaDB.missing(), RabbitMQ.missing() if rabbit else None, Keystone.missing(os_venv)):
        if reason:
            return reason
    return None


class Services:
    """MariaDB + (optional) RabbitMQ + Keystone in one state dir."""

    def __init__(self, state_dir, host=DEFAULT_HOST, ports=None, rabbit=True, os_venv=None,
                 keystone_cache=True):
        self.state_dir = Path(state_dir).resolve()
        self.host = host or DEFAULT_HOST
        ports = ports or {}
        self.os_venv = str(openstack_venv(os_venv))
        self.mariadb = MariaDB(self.state_dir, self.host, ports.get('mariadb'))
        self.rabbitmq = RabbitMQ(self.state_dir, self.host, ports.get('rabbitmq')) if rabbit else None
        self.keystone = Keystone(self.state_dir, self.mariadb, self.host, ports.get('keystone'), os_venv,
                                 keystone_cache)
        self.timings = {}

    @classmethod
    def load(cls, state_dir):
        """Rebuild from STATE_DIR/services.json (as written by up())."""
        rec = records(state_dir)
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
            with records_locked(self.state_dir) as data:
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
        with records_locked(self.state_dir) as data:
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
            if self.rabbitmq is None and records(self.state_dir).get('rabbitmq', {}).get('procs'):
                RabbitMQ(self.state_dir, self.host).stop()

    def describe(self):
        return {'state_dir': str(self.state_dir), 'host': self.host,
                'services_json': str(self.state_dir / 'services.json'),
                'mariadb': self.mariadb.describe(),
                'rabbitmq': self.rabbitmq.describe() if self.rabbitmq else None,
                'keystone': self.keystone.describe(),
                'timings': self.timings}

    def status(self):
        rec = records(self.state_dir)
        out = {}
        for name in ('mariadb', 'rabbitmq', 'keystone'):
            procs = (rec.get(name) or {}).get('procs') or {}
            out[name] = {k: {'pid': p['pid'], 'running': alive(p['pid'], p['start']), 'rss_mb': rss_mb(p)}
                         for k, p in procs.items()}
        return out


def main(argv=None):
    p = argparse.ArgumentParser(prog='python -m lab.services', description='Real MariaDB, RabbitMQ and '
                                'Keystone in a private state directory.')
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
