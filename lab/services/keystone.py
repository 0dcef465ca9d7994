"""Keystone for lab.services: Keystone 30 from the OpenStack venv under gunicorn, fernet tokens, its
database in a lab.services MariaDB, and a small admin HTTP client (tokens, users, the catalog)."""

import base64
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from glance_ha_files import write_atomic

from lab.procs import spawn
from lab.services.base import Daemon, ServiceError, log, mask, openstack_venv, secret, tail, timed, wait_for

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
            write_atomic(path / name, base64.urlsafe_b64encode(os.urandom(32)).decode())


class Keystone(Daemon):
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
        self.venv = openstack_venv(os_venv)
        self._admin_token = None
        self._lock = threading.Lock()

    @classmethod
    def missing(cls, os_venv=None):
        venv = openstack_venv(os_venv)
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
        return secret(self.state_dir, 'keystone-admin.password')

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
        return secret(self.state_dir, 'mariadb-keystone.password')

    # ---- lifecycle
    def prepare(self):
        """Config, WSGI wrapper, fernet and credential key repositories (nothing that needs the DB)."""
        d = self.dir
        (d / 'wsgi').mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        if self.mariadb.port is None:
            raise ServiceError('keystone: MariaDB has no port yet (start it first)')
        dburl = self.mariadb.url(self.db_name, self.db_user, self._db_password())
        write_atomic(self.conf,
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
                               + tail(self.dir / 'manage.log', 15, self.admin_password,
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
            with timed(self.timings, 'keystone db_sync'):
                self._manage('db_sync')
        self._write_clouds_yaml()
        # gunicorn's worker imports keystone (~2 CPU-s) while bootstrap runs; the readiness probe
        # (GET /v3, static) touches no data, and nothing is reported ready before bootstrap is done.
        env = dict(os.environ, OS_KEYSTONE_CONFIG_DIR=str(d), OS_KEYSTONE_CONFIG_FILES=str(self.conf),
                   PYTHONWARNINGS='ignore')
        t0 = time.monotonic()
        main = spawn([str(self.venv / 'bin' / 'gunicorn'), '--chdir', str(d / 'wsgi'),
                       '--bind', f'{self.host}:{self.port}', '--workers', '1', '--threads', '4',
                       '--timeout', '120', '--graceful-timeout', '5', '--no-control-socket',
                       '--pid', str(d / 'gunicorn.pid'), '--error-logfile', str(d / 'gunicorn.log'),
                       '--capture-output', 'keystone_wsgi:application'],
                      d / 'gunicorn.out', env, cwd=str(d / 'wsgi'))
        self._save(procs={'main': main})
        if not done:
            with timed(self.timings, 'keystone bootstrap'):
                self._manage('bootstrap', '--bootstrap-username', self.admin_user,
                             '--bootstrap-project-name', self.admin_project,
                             '--bootstrap-role-name', 'admin', '--bootstrap-service-name', 'keystone',
                             '--bootstrap-region-id', self.region,
                             '--bootstrap-admin-url', self.auth_url,
                             '--bootstrap-internal-url', self.auth_url,
                             '--bootstrap-public-url', self.auth_url,
                             env_extra={'OS_BOOTSTRAP_PASSWORD': admin_pw})
            marker.write_text(json.dumps(want) + '\n')
        wait_for('keystone', self._ready, 90, [main], d / 'gunicorn.log', (admin_pw, db_pw), 0.2)
        self.timings['keystone serve'] = round(time.monotonic() - t0, 2)
        log.info('%-28s %6.2f s', 'keystone serve (+bootstrap)', self.timings['keystone serve'])
        self._admin_token = None
        return self

    def _term_args(self, key):
        return {'grace': 15.0}

    def _write_clouds_yaml(self):
        write_atomic(self.clouds_yaml,
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
                               + mask(str(msg), password))
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
