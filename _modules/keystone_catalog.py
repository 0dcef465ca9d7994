"""
Keystone v3 service catalog (services, endpoints, regions) over keystoneauth1, and the one session
every Keystone call of the formula goes through (``api``; the identity functions live in
``keystone_identity``). doc/keystone_catalog.md has the whole story.

One keystoneauth1 session, and so one token, per Salt run and credentials, cached in ``__context__``
under an HMAC of the auth parameters. Requests go to the ``auth_url`` itself, Keystone v3 only (the
URL rules are in ``_utils/glance_ha_keystone.py``). Authentication comes from keyword arguments or a
profile (``profile=<name>``, read with ``config.get``; nested pillar keys with ``:``), explicit
arguments winning: ``auth_url, username, password, project_name, user_domain_name`` (Default),
``project_domain_name`` (Default), ``region``, ``verify``.

Retries (the bound): every call to Keystone makes at most 3 attempts, with a connect timeout of 5 s,
a read timeout of 10 s and pauses of 0.5 s and 1 s, never past 20 s, then fails naming the URL. A
write that may have reached Keystone is not repeated; a re-run reconciles. HTTP 401 is reported as
bad credentials, 403 as missing rights.

Secrets: no function returns a password; every error and log line passes through
``glance_ha_secrets.mask``. keystoneauth1 never logs the token request, logs tokens only as SHA-256
hashes and other bodies at DEBUG; a request carrying a secret (``api(secrets=...)``) is not logged.
"""

import hashlib
import hmac
import json
import logging
import os
import types
import urllib.parse

from salt.exceptions import CommandExecutionError, SaltInvocationError

try:
    import keystoneauth1  # noqa: F401  (the session is _utils/keystone_session.py)

    HAS_KSA = True
    KSA_ERROR = ""
except ImportError as _exc:  # pragma: no cover - depends on the host
    HAS_KSA = False
    KSA_ERROR = str(_exc)

log = logging.getLogger(__name__)

__virtualname__ = "keystone_catalog"


AUTH_KEYS = ("auth_url", "username", "password", "project_name", "user_domain_name",
             "project_domain_name", "region", "verify")
AUTH_DEFAULTS = {"user_domain_name": "Default", "project_domain_name": "Default", "verify": True}
CONTEXT_PREFIX = "keystone_catalog.conn."


def __virtual__():
    if not HAS_KSA:
        return (False, (f"keystone_catalog: keystoneauth1 is not installed ({KSA_ERROR}); "
                        "install it into Salt's Python: pip install keystoneauth1"))
    return __virtualname__


# --------------------------------------------------------------------------- helpers
def _mask(text, secrets=()):
    """``text`` with the given secret values and every URL password masked (the formula's one rule)."""
    return __utils__["glance_ha_secrets.mask"](text, secrets)


def _invalid(message, secrets=()):
    return SaltInvocationError(_mask(f"keystone_catalog: {message}", secrets))


def normalize_auth_url(url):
    """
    Return the Keystone v3 URL (str) for ``url`` (str), or raise SaltInvocationError.

    ``http://h:5000`` and ``http://h:5000/`` -> ``http://h:5000/v3``; ``.../v3`` and ``.../v3/`` ->
    ``.../v3``; ``.../v2.0`` (or any version other than 3) is refused with the v3 URL to use instead.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.normalize_auth_url http://10.0.0.11:5000
    """
    return _normalize(url)


def _normalize(url, secrets=()):
    try:
        return __utils__["glance_ha_keystone.normalize_auth_url"](url)
    except ValueError as exc:
        raise _invalid(f"auth_url: {exc}", secrets) from None


def validate_endpoint_url(url):
    """
    Return an error message (str) for an endpoint URL (str) Keystone or clients would not accept,
    or ``None``.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.validate_endpoint_url http://10.0.0.11:9292
    """
    problem = __utils__["glance_ha_keystone.endpoint_url_problem"](url)
    return None if problem is None else _mask(f"endpoint URL {problem}")


def _auth_key(auth):
    """The ``__context__`` key of a set of auth parameters: an HMAC-SHA-256 over all of them
    (including the password) with a random key of this run's context, so it can neither be read
    back nor guessed offline."""
    secret = __context__.setdefault(CONTEXT_PREFIX + "hmac", os.urandom(32))
    material = json.dumps({k: auth.get(k) for k in AUTH_KEYS if k != "region"}, sort_keys=True, default=str)
    return CONTEXT_PREFIX + hmac.new(secret, material.encode("utf-8"), hashlib.sha256).hexdigest()


def _resolve_auth(profile, kwargs):
    """Merge profile and keyword arguments into auth params; raise on unknown keys or missing ones."""
    unknown = sorted(k for k in kwargs if not k.startswith("__") and k not in AUTH_KEYS)
    if unknown:
        raise _invalid(f"unknown argument(s) {', '.join(unknown)} (auth arguments: {', '.join(AUTH_KEYS)})")
    data = None
    if profile:
        data = profile if isinstance(profile, dict) else __salt__["config.get"](profile)
        if not data or not isinstance(data, dict):
            raise _invalid(f"profile {profile!r} not found (config.get returned nothing or not a mapping)")
    auth, missing = __utils__["glance_ha_keystone.merge_auth"](AUTH_KEYS, AUTH_DEFAULTS, data, kwargs)
    if missing:
        where = f" (profile {profile!r})" if isinstance(profile, str) else ""
        raise _invalid(f"missing auth argument(s){where}: {', '.join(missing)}")
    auth["auth_url"] = _normalize(auth["auth_url"], [auth["password"]])
    return auth


def _conn(profile=None, **kwargs):
    auth = _resolve_auth(profile, kwargs)
    key = _auth_key(auth)
    conn = __context__.get(key)
    if conn is None:
        rules = types.SimpleNamespace(http_error=__utils__["glance_ha_keystone.http_error"],
                                      never_sent=__utils__["glance_ha_keystone.never_sent"])
        conn = __context__[key] = __utils__["keystone_session.connect"](
            auth, _mask, CommandExecutionError, rules)
    return conn, auth


def _listing(data, collection, url):
    if data.get("truncated"):
        raise CommandExecutionError(_mask(
            f"keystone_catalog: Keystone truncated the {collection} list at {url} ([DEFAULT] list_limit); "
            "raise the limit so the catalog can be compared completely"))
    return data.get(collection, [])


def _clean(ref):
    return {k: v for k, v in ref.items() if k != "links"}


def _delete(collection, ref_id, profile, connection_args):
    """DELETE /v3/<collection>/<id>: True, or False if it did not exist."""
    conn, _ = _conn(profile, **connection_args)
    return conn.call("DELETE", f"/{collection}/{ref_id}", ok=(204,), missing_ok=True) is not None


# --------------------------------------------------------------------------- public functions
def connection_id(profile=None, **connection_args):
    """
    An opaque id (str) of these credentials within this run, e.g. for states that cache catalog reads
    per Keystone and user: an HMAC-SHA-256 with a random key of the run, so neither the password nor
    a guess of it can be checked against it. Makes no request.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.connection_id profile=keystone_admin
    """
    return _auth_key(_resolve_auth(profile, connection_args))


def stats(profile=None, **connection_args):
    """
    HTTP requests made so far in this run with these credentials: ``{token, read, write}``.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.stats profile=keystone_admin
    """
    conn, _ = _conn(profile, **connection_args)
    return dict(conn.stats)


def token_check(profile=None, **connection_args):
    """
    Authenticate (one token request, reused for the rest of the run) and return True.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.token_check profile=keystone_admin
    """
    conn, _ = _conn(profile, **connection_args)
    conn.call("GET", "/auth/projects")
    return True


def api(method, path, body=None, params=None, ok=(200,), missing_ok=False, collection=None, secrets=None,
        profile=None, **connection_args):
    """
    One request to the Keystone v3 API at ``auth_url`` with this run's session (the keystone_identity
    functions use it). ``path`` (str, relative to ``/v3``) reaches the catalog and identity objects
    and ``POST /auth/tokens`` only, never credentials or tokens. Returns the decoded JSON body (dict;
    None when empty, or for HTTP 404 with ``missing_ok``), or with ``collection`` (e.g. ``"users"``)
    the list under that key (an error if truncated). ``ok``: accepted HTTP statuses (list of int).
    ``secrets``: values ``body`` carries (list of str): not logged, masked in every error.

    Bound: 3 attempts (writes only while surely not sent), at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.api GET /roles collection=roles profile=keystone_admin
    """
    problem = __utils__["glance_ha_keystone.api_path_problem"](method, path)
    if problem:
        raise _invalid(problem)
    conn, _ = _conn(profile, **connection_args)
    data = conn.call(method.upper(), path, body=body, params=params, ok=tuple(ok), missing_ok=missing_ok,
                     secrets=tuple(secrets or ()))
    if data is None:
        return None
    return _listing(data, collection, conn.url + path) if collection else (data or None)


def service_list(service_type=None, name=None, profile=None, **connection_args):
    """
    List services, optionally only those of a type and/or a name (one GET /v3/services).

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.service_list service_type=image profile=keystone_admin
    """
    conn, _ = _conn(profile, **connection_args)
    params = {}
    if service_type:
        params["type"] = service_type
    if name:
        params["name"] = name
    data = conn.call("GET", "/services", params=params or None)
    return [_clean(s) for s in _listing(data, "services", conn.url + "/services")
            if (not service_type or s.get("type") == service_type) and (not name or s.get("name") == name)]


def service_get(name=None, service_type=None, profile=None, **connection_args):
    """
    The one service with this name and/or type, or None; an error naming the ids if several match.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.service_get glance service_type=image profile=keystone_admin
    """
    if not name and not service_type:
        raise SaltInvocationError("keystone_catalog.service_get: give a name, a service_type or both")
    found = service_list(service_type=service_type, name=name, profile=profile, **connection_args)
    if len(found) > 1:
        ids = ", ".join(s["id"] for s in found)
        raise CommandExecutionError(
            f"keystone_catalog: {len(found)} services match name={name!r} type={service_type!r} (ids {ids}); "
            "remove the extra ones with `openstack service delete <id>` (after moving their endpoints)")
    return found[0] if found else None


def service_create(name, service_type, description="", enabled=True, profile=None, **connection_args):
    """
    Create a service (POST /v3/services) and return it. No check for an existing one: see service_ensure.

    Bound: 3 attempts (only while the request surely did not reach Keystone), at most 20 s, then an
    error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.service_create glance image description="OpenStack Image" profile=keystone_admin
    """
    conn, _ = _conn(profile, **connection_args)
    body = {"service": {"name": name, "type": service_type, "description": description or "",
                        "enabled": bool(enabled)}}
    return _clean(conn.call("POST", "/services", body=body, ok=(201,))["service"])


def service_update(service_id, profile=None, **kwargs):
    """
    Update fields of a service in place (PATCH /v3/services/<id>): name, type, description, enabled.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.service_update 0123abcd description="OpenStack Image" profile=keystone_admin
    """
    fields = {k: kwargs.pop(k) for k in ("name", "type", "description", "enabled") if k in kwargs}
    if not fields:
        raise SaltInvocationError("keystone_catalog.service_update: nothing to update")
    conn, _ = _conn(profile, **kwargs)
    return _clean(conn.call("PATCH", f"/services/{service_id}", body={"service": fields})["service"])


def service_ensure(name, service_type, description=None, enabled=True, profile=None, **connection_args):
    """
    Make sure a service with this type and name exists with this description/enabled; returns
    ``{"service": {...}, "changes": {...}}``. ``description=None`` leaves an existing description alone.
    Duplicates (several services with this type and name) are an error naming their ids.

    Bound: 3 attempts, at most 20 s per request, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.service_ensure glance image description="OpenStack Image" profile=keystone_admin
    """
    svc = service_get(name=name, service_type=service_type, profile=profile, **connection_args)
    if svc is None:
        svc = service_create(name, service_type, description=description or "", enabled=enabled,
                             profile=profile, **connection_args)
        return {"service": svc, "changes": {"id": {"old": None, "new": svc["id"]}}}
    diff = __utils__["glance_ha_keystone.service_changes"](svc, description, enabled)
    if not diff:
        return {"service": svc, "changes": {}}
    new = service_update(svc["id"], profile=profile, **diff, **connection_args)
    return {"service": new, "changes": {k: {"old": svc.get(k), "new": v} for k, v in diff.items()}}


def service_delete(service_id, profile=None, **connection_args):
    """
    Delete one service by id (DELETE /v3/services/<id>): True, or False if it did not exist.

    Keystone deletes the service's endpoints in every region with it; the ``service_absent`` state
    keeps a service that still has endpoints.

    Bound: 3 attempts (only while the request surely did not reach Keystone), at most 20 s, then an
    error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.service_delete 0123abcd profile=keystone_admin
    """
    return _delete("services", service_id, profile, connection_args)


def endpoint_list(service_id=None, service=None, service_type=None, interface=None, region=None,
                  profile=None, **connection_args):
    """
    List endpoints (one GET /v3/endpoints, filtered by Keystone and again exactly here). Filter by
    ``service_id`` (or ``service``, a service name, and/or ``service_type``, which cost one more read
    to resolve), ``interface`` (public, internal, admin) and ``region`` (a region id).

    Bound: 3 attempts, at most 20 s per request, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.endpoint_list service_type=image region=RegionOne profile=keystone_admin
    """
    if interface and __utils__["glance_ha_keystone.interface_problem"](interface):
        raise _invalid(__utils__["glance_ha_keystone.interface_problem"](interface))
    conn, _ = _conn(profile, **connection_args)
    if not service_id and (service or service_type):
        svc = service_get(name=service, service_type=service_type, profile=profile, **connection_args)
        if svc is None:
            return []
        service_id = svc["id"]
    params = {}
    if service_id:
        params["service_id"] = service_id
    if interface:
        params["interface"] = interface
    if region:
        params["region_id"] = region
    data = conn.call("GET", "/endpoints", params=params or None)
    return [_clean(e) for e in _listing(data, "endpoints", conn.url + "/endpoints")
            if (not service_id or e.get("service_id") == service_id)
            and (not interface or e.get("interface") == interface)
            and (not region or e.get("region_id") == region)]


def endpoint_create(service_id, interface, url, region=None, enabled=True, profile=None, **connection_args):
    """
    Create one endpoint (POST /v3/endpoints). The region must exist (see ``region_create``; the
    ``endpoints_present`` state creates it). ``region`` defaults to the profile's ``region``. No check
    for an existing endpoint: use the ``keystone_catalog.endpoints_present`` state for idempotence.

    Bound: 3 attempts (only while the request surely did not reach Keystone), at most 20 s, then an
    error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.endpoint_create 0123abcd public http://203.0.113.11:9292 region=RegionOne
    """
    error = __utils__["glance_ha_keystone.interface_problem"](interface) or validate_endpoint_url(url)
    if error:
        raise _invalid(error)
    conn, auth = _conn(profile, **connection_args)
    region = region or auth.get("region")
    if not region:
        raise SaltInvocationError("keystone_catalog.endpoint_create: region is required")
    body = {"endpoint": {"service_id": service_id, "interface": interface, "url": url,
                         "region_id": region, "enabled": bool(enabled)}}
    return _clean(conn.call("POST", "/endpoints", body=body, ok=(201,))["endpoint"])


def endpoint_update(endpoint_id, url=None, enabled=None, profile=None, **connection_args):
    """
    Update an endpoint in place (PATCH /v3/endpoints/<id>, the id is kept): its url and/or enabled.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.endpoint_update 89abcdef url=http://10.0.0.12:9292 profile=keystone_admin
    """
    fields = {}
    if url is not None:
        error = validate_endpoint_url(url)
        if error:
            raise _invalid(error)
        fields["url"] = url
    if enabled is not None:
        fields["enabled"] = bool(enabled)
    if not fields:
        raise SaltInvocationError("keystone_catalog.endpoint_update: give url and/or enabled")
    conn, _ = _conn(profile, **connection_args)
    return _clean(conn.call("PATCH", f"/endpoints/{endpoint_id}", body={"endpoint": fields})["endpoint"])


def endpoint_delete(endpoint_id, profile=None, **connection_args):
    """
    Delete one endpoint by id (DELETE /v3/endpoints/<id>). Returns True; False if it did not exist.

    Bound: 3 attempts (only while the request surely did not reach Keystone), at most 20 s, then an
    error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.endpoint_delete 89abcdef profile=keystone_admin
    """
    return _delete("endpoints", endpoint_id, profile, connection_args)


def region_get(region, profile=None, **connection_args):
    """
    The region with this id (GET /v3/regions/<id>), or None if it does not exist.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.region_get RegionTwo profile=keystone_admin
    """
    conn, _ = _conn(profile, **connection_args)
    data = conn.call("GET", f"/regions/{urllib.parse.quote(region, safe='')}", missing_ok=True)
    return None if data is None else _clean(data["region"])


def region_create(region, description="", profile=None, **connection_args):
    """
    Create a region with this id (POST /v3/regions) and return it; an existing one (HTTP 409) is
    returned as it is.

    Bound: 3 attempts (only while the request surely did not reach Keystone), at most 20 s, then an
    error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_catalog.region_create RegionTwo profile=keystone_admin
    """
    conn, _ = _conn(profile, **connection_args)
    data = conn.call("POST", "/regions", body={"region": {"id": region, "description": description or ""}},
                     ok=(201, 409))
    if "region" not in (data or {}):        # 409: it exists already (created concurrently)
        return region_get(region, profile=profile, **connection_args)
    return _clean(data["region"])
