"""MariaDB for lab.services: Debian's mariadbd with a private datadir and socket, root over that socket."""

import os
import re
import shutil
import subprocess
import urllib.parse

from lab.procs import spawn
from lab.services.base import Daemon, ServiceError, greeting, mask, tail, timed, wait_for


def _mysql_greeting(host, port):
    """True when a MariaDB server answers host:port: a handshake, or an error packet (host not allowed)."""
    head = greeting(host, port, 5)
    return head is not None and head[4] in (10, 0xff)


class MariaDB(Daemon):
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
            with timed(self.timings, 'mariadb install-db'):
                shutil.rmtree(self.datadir, ignore_errors=True)
                with open(self.dir / 'install.log', 'ab') as out:
                    r = subprocess.run(
                        ['mariadb-install-db', '--no-defaults', '--user=root', f'--datadir={self.datadir}',
                         '--auth-root-authentication-method=socket', '--skip-test-db'],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False)
                if r.returncode:
                    raise ServiceError(f'mariadb-install-db failed; log {self.dir}/install.log:\n'
                                       + tail(self.dir / 'install.log'))
        with timed(self.timings, 'mariadb start'):
            self.socket.unlink(missing_ok=True)
            errlog = self.dir / 'error.log'
            main = spawn(['mariadbd', '--no-defaults', '--user=root', f'--datadir={self.datadir}',
                           f'--socket={self.socket}', f'--pid-file={self.dir}/mysqld.pid',
                           f'--bind-address={self.host}', f'--port={self.port}', '--skip-name-resolve',
                           f'--log-error={errlog}', '--innodb-buffer-pool-size=32M',
                           '--innodb-log-file-size=16M', '--character-set-server=utf8mb4',
                           '--collation-server=utf8mb4_general_ci', '--max-connections=500',
                           '--log-warnings=1'],
                          self.dir / 'stdout.log')
            self._save(procs={'main': main})
            wait_for('mariadb', self._ready, 60, [main], errlog)
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
            raise ServiceError('mariadb: SQL failed: ' + mask(r.stderr.strip(), *secret_values))
        return r.stdout

    @staticmethod
    def _ident(value):
        if not re.fullmatch(r'[A-Za-z0-9_]{1,64}', value or ''):
            raise ValueError(f'not a plain SQL identifier: {value!r}')
        return value

    def _account(self, user, password, grant, before=''):
        """Create or update user@'%' with this password and run `GRANT <grant> TO` it (SQL on stdin)."""
        user = self._ident(user)
        pw = password.replace('\\', '\\\\').replace("'", "\\'")
        self.sql(f"{before}CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{pw}';\n"
                 f"ALTER USER '{user}'@'%' IDENTIFIED BY '{pw}';\n"
                 f"GRANT {grant.format(user=user)};\n", secret_values=(password, pw))

    def create_database(self, name, user, password):
        """Create database NAME and user@'%' with ALL on it and this password (idempotent)."""
        name = self._ident(name)
        self._account(user, password, f"ALL PRIVILEGES ON `{name}`.* TO '{{user}}'@'%'",
                      before=f"CREATE DATABASE IF NOT EXISTS `{name}`;\n")

    def create_admin(self, user, password):
        """An administrator account user@'%' (all privileges, with GRANT OPTION) for clients that come
        over TCP: root itself logs in over the private socket only (idempotent)."""
        self._account(user, password, "ALL PRIVILEGES ON *.* TO '{user}'@'%' WITH GRANT OPTION")

    def url(self, name, user, password):
        """SQLAlchemy URL over TCP (contains the password: never print it)."""
        return (f'mysql+pymysql://{user}:{urllib.parse.quote(password, safe="")}@{self.host}:{self.port}/'
                f'{name}?charset=utf8mb4')

    def describe(self):
        return {'host': self.host, 'port': self.port, 'socket': str(self.socket), 'pid': self.pid,
                'root': f'mariadb --no-defaults -uroot --socket={self.socket}',
                'error_log': str(self.dir / 'error.log')}
