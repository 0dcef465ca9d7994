"""
One keystoneauth1 session per set of credentials with the formula's retry bound, for
``_modules/keystone_catalog.py`` (which keeps one per run in ``__context__``). Pure of Salt: the
error class, the mask and the Keystone rules are given to it.

The bound: every request makes at most ``ATTEMPTS`` attempts, with a connect timeout of
``CONNECT_TIMEOUT`` s, a read timeout of ``READ_TIMEOUT`` s and pauses of ``PAUSES`` s, never past
``DEADLINE`` s. A write that may have reached Keystone is not repeated.
"""

import logging
import time

try:
    from keystoneauth1 import exceptions as ksa_exc
    from keystoneauth1 import session as ksa_session
    from keystoneauth1.identity import v3 as ksa_v3
except ImportError:  # pragma: no cover - keystone_catalog's __virtual__ says so
    ksa_exc = ksa_session = ksa_v3 = None

log = logging.getLogger(__name__)

ATTEMPTS = 3
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0
PAUSES = (0.5, 1.0)
DEADLINE = 20.0


def connect(auth, mask, error, rules):
    """A new ``Connection`` for ``auth`` (dict of keystone_catalog's auth parameters)."""
    return Connection(auth, mask, error, rules)


class Connection:
    """A keystoneauth1 session bound to one set of credentials, with the retry bound and counters.

    ``mask(text, secrets)`` masks an error's text, ``error`` is the exception class raised,
    ``rules`` gives ``http_error`` and ``never_sent`` (glance_ha_keystone)."""

    def __init__(self, auth, mask, error, rules):
        self.mask, self.error, self.rules = mask, error, rules
        self.url = auth["auth_url"]
        self.user = auth["username"]
        self.project = auth["project_name"]
        self.domain = auth["user_domain_name"]
        plugin = ksa_v3.Password(
            auth_url=self.url, username=auth["username"], password=auth["password"],
            user_domain_name=auth["user_domain_name"], project_name=auth["project_name"],
            project_domain_name=auth["project_domain_name"], include_catalog=False)
        self.session = ksa_session.Session(auth=plugin, verify=auth.get("verify", True),
                                           app_name="salt-keystone_catalog", connect_retries=0)
        self.stats = {"token": 0, "read": 0, "write": 0}
        self.secrets = (auth["password"],)
        self.session.session.hooks["response"].append(self._count)

    def _count(self, resp, *args, **kwargs):
        method = resp.request.method
        if method == "POST" and resp.request.path_url.split("?")[0].endswith("/auth/tokens"):
            self.stats["token"] += 1
        elif method in ("GET", "HEAD"):
            self.stats["read"] += 1
        else:
            self.stats["write"] += 1
        return resp

    def _error(self, message):
        return self.error(self.mask(f"keystone_catalog: {message}", self.secrets))

    def _where(self):
        return f"user {self.user!r} (domain {self.domain!r}, project {self.project!r})"

    def call(self, method, path, body=None, params=None, ok=(200,), missing_ok=False, secrets=()):
        """One API request with the retry bound; returns the decoded JSON body (``{}`` when empty),
        or None for HTTP 404 when ``missing_ok``. ``secrets``: values in ``body`` (the request and its
        response are then not logged, and errors mask them)."""
        try:
            return self._call(method, path, body, params, ok, missing_ok, log_http=not secrets)
        except self.error as exc:
            raise self.error(self.mask(str(exc), secrets)) from None

    def _call(self, method, path, body, params, ok, missing_ok, log_http):
        url = self.url + path
        # A token request needs no token: sent without one, a 401 (a refused password) is not taken
        # as the admin's token expiring (keystoneauth1 would re-authenticate and send it again).
        authenticated = False if path == "/auth/tokens" else None
        start = time.monotonic()
        attempt, last = 0, None
        while attempt < ATTEMPTS:
            remaining = DEADLINE - (time.monotonic() - start)
            if attempt:
                pause = PAUSES[min(attempt - 1, len(PAUSES) - 1)]
                if remaining <= pause + 0.1:
                    break
                log.warning("keystone_catalog: %s; retrying in %.1f s (attempt %d of %d)",
                            self.mask(str(last), self.secrets), pause, attempt + 1, ATTEMPTS)
                time.sleep(pause)
                remaining -= pause
            attempt += 1
            had_token = self.session.auth.auth_ref is not None
            self.session.timeout = (min(CONNECT_TIMEOUT, remaining), min(READ_TIMEOUT, remaining))
            try:
                resp = self.session.request(url, method, json=body, params=params, raise_exc=False,
                                            connect_retries=0, log=log_http, authenticated=authenticated)
            except ksa_exc.Unauthorized:
                raise self._error(self.rules.http_error(
                    401, method, url, self.url, self._where(),
                    "check the username, password, domains and project")) from None
            except ksa_exc.RetriableConnectionFailure as exc:
                last = exc
                in_token = authenticated is False or (not had_token and self.session.auth.auth_ref is None)
                if not (in_token or method in ("GET", "HEAD", "PATCH") or self.rules.never_sent(exc)):
                    raise self._error(
                        f"{method} {url} failed after the request may have reached "
                        f"Keystone ({exc}); not repeated: run again to reconcile") from None
                continue
            except ksa_exc.SSLError as exc:
                raise self._error(f"TLS error talking to {self.url}: {exc}") from None
            except ksa_exc.ClientException as exc:
                raise self._error(f"{method} {url} failed: {exc}") from None
            if missing_ok and resp.status_code == 404:
                return None
            return self._decode(method, url, resp, ok)
        elapsed = time.monotonic() - start
        raise self._error(
            f"Keystone at {self.url} is unreachable: {attempt} attempt(s) in {elapsed:.1f} s "
            f"(bound: {ATTEMPTS} attempts, connect timeout {CONNECT_TIMEOUT:g} s, {DEADLINE:g} s in total); "
            f"last error: {last}")

    def _decode(self, method, url, resp, ok):
        if resp.status_code in ok:
            if resp.status_code == 204 or not resp.content:
                return {}
            try:
                return resp.json()
            except ValueError:
                raise self._error(
                    f"{method} {url}: HTTP {resp.status_code} with a non-JSON body") from None
        try:
            detail = resp.json().get("error", {}).get("message", "")
        except ValueError:
            detail = resp.text[:200]
        raise self._error(self.rules.http_error(
            resp.status_code, method, url, self.url, self._where(), detail))
