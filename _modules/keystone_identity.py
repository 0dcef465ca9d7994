"""
Keystone v3 identity objects a service needs: its user, the user's domain and project, roles and
the user's role assignments on the project. Every request goes through ``keystone_catalog.api``:
the same keystoneauth1 session, retry bound, auth arguments (``profile`` or ``auth_url, username,
password, project_name, user_domain_name, project_domain_name, verify``) and masking as the catalog
functions (doc/keystone_catalog.md).

Names are looked up the way Keystone's clients do: a domain by name, a project or user by name
within its domain (``domain_id``), a role by name among the global roles (no domain).

Secrets: the user's password is sent only in the body of a request that keystoneauth1 does not
log, every error masks it, and no function returns it.
"""

from salt.exceptions import CommandExecutionError, SaltInvocationError

try:
    import keystoneauth1  # noqa: F401  (keystone_catalog.api needs it; say so here too)

    HAS_KSA = True
except ImportError:  # pragma: no cover - depends on the host
    HAS_KSA = False

__virtualname__ = "keystone_identity"


def __virtual__():
    if not HAS_KSA:
        return (False, ("keystone_identity: keystoneauth1 is not installed; install it into Salt's Python: "
                        "pip install keystoneauth1"))
    return __virtualname__


def _api(method, path, connection_args, **kwargs):
    args = {k: v for k, v in connection_args.items() if not k.startswith("__")}
    return __salt__["keystone_catalog.api"](method, path, **kwargs, **args)


def _find(collection, connection_args, query, **match):
    """The one object of ``collection`` matching ``match`` exactly (dict), or None; one GET with the
    ``query`` parameters; an error naming the ids when Keystone holds several."""
    found = [f for f in _api("GET", f"/{collection}", connection_args, params=query, collection=collection)
             if all(f.get(k) == v for k, v in match.items())]
    if len(found) > 1:
        ids = ", ".join(sorted(f["id"] for f in found))
        what = " ".join(f"{k}={v!r}" for k, v in match.items())
        raise CommandExecutionError(f"keystone_identity: {len(found)} {collection} match {what} (ids {ids})")
    return _clean(found[0]) if found else None


def _clean(ref):
    return {k: v for k, v in ref.items() if k != "links"}


def domain_get(name, profile=None, **connection_args):
    """
    The domain (dict: id, name, enabled, ...) named ``name`` (str, e.g. ``Default``), or None.
    One GET /v3/domains?name=.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.domain_get Default profile=keystone_admin
    """
    return _find("domains", dict(connection_args, profile=profile), {"name": name}, name=name)


def project_get(name, domain_id, profile=None, **connection_args):
    """
    The project (dict) named ``name`` in the domain with id ``domain_id`` (str), or None.
    One GET /v3/projects?name=&domain_id=.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.project_get service default profile=keystone_admin
    """
    query = {"name": name, "domain_id": domain_id}
    return _find("projects", dict(connection_args, profile=profile), query, **query)


def project_create(name, domain_id, description="", profile=None, **connection_args):
    """
    Create an enabled project (POST /v3/projects) in domain ``domain_id``; returns it (dict).
    No check for an existing one: the ``keystone_catalog.user_present`` state is idempotent.

    Bound: 3 attempts (only while the request surely did not reach Keystone), at most 20 s, then an
    error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.project_create service default profile=keystone_admin
    """
    body = {"project": {"name": name, "domain_id": domain_id, "description": description or "",
                        "enabled": True}}
    return _clean(_api("POST", "/projects", dict(connection_args, profile=profile), body=body,
                       ok=(201,))["project"])


def role_get(name, profile=None, **connection_args):
    """
    The global role (dict: id, name, ...) named ``name`` (str, e.g. ``service``), or None.
    One GET /v3/roles?name=.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.role_get service profile=keystone_admin
    """
    return _find("roles", dict(connection_args, profile=profile), {"name": name}, name=name, domain_id=None)


def role_create(name, profile=None, **connection_args):
    """
    Create a global role (POST /v3/roles) and return it (dict).

    Bound: 3 attempts (only while the request surely did not reach Keystone), at most 20 s, then an
    error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.role_create service profile=keystone_admin
    """
    data = _api("POST", "/roles", dict(connection_args, profile=profile), body={"role": {"name": name}},
                ok=(201,))
    return _clean(data["role"])


def user_get(name, domain_id, profile=None, **connection_args):
    """
    The user (dict: id, name, domain_id, default_project_id, enabled, ...; never a password) named
    ``name`` in the domain with id ``domain_id``, or None. One GET /v3/users?name=&domain_id=.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.user_get glance default profile=keystone_admin
    """
    query = {"name": name, "domain_id": domain_id}
    return _find("users", dict(connection_args, profile=profile), query, **query)


def user_create(name, domain_id, password, default_project_id=None, enabled=True, profile=None,
                **connection_args):
    """
    Create a user with this password (POST /v3/users, not logged) and return it (dict, without the
    password). No check for an existing one: the ``keystone_catalog.user_present`` state is idempotent.

    Bound: 3 attempts (only while the request surely did not reach Keystone), at most 20 s, then an
    error naming the URL (the password masked).

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.user_create glance default password=... default_project_id=0123abcd
    """
    body = {"user": {"name": name, "domain_id": domain_id, "password": password, "enabled": bool(enabled)}}
    if default_project_id:
        body["user"]["default_project_id"] = default_project_id
    data = _api("POST", "/users", dict(connection_args, profile=profile), body=body, ok=(201,),
                secrets=[password])
    return _clean(data["user"])


def user_update(user_id, password=None, default_project_id=None, enabled=None, profile=None,
                **connection_args):
    """
    Update a user in place (PATCH /v3/users/<id>, the id is kept): its password, default project
    and/or enabled flag; returns the user (dict, without the password). A request that carries a
    password is not logged.

    Bound: 3 attempts, at most 20 s, then an error naming the URL (the password masked).

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.user_update 0123abcd enabled=True profile=keystone_admin
    """
    fields = {k: v for k, v in (("password", password), ("default_project_id", default_project_id),
                                ("enabled", enabled)) if v is not None}
    if not fields:
        raise SaltInvocationError("keystone_identity.user_update: nothing to update")
    data = _api("PATCH", f"/users/{user_id}", dict(connection_args, profile=profile), body={"user": fields},
                secrets=[password] if password else None)
    return _clean(data["user"])


def user_roles(user_id, project_id, profile=None, **connection_args):
    """
    The ids (sorted list of str) of the roles given to the user directly on the project (not through
    groups or inheritance). One GET /v3/role_assignments?user.id=&scope.project.id=.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.user_roles 0123abcd 4567cdef profile=keystone_admin
    """
    found = _api("GET", "/role_assignments", dict(connection_args, profile=profile),
                 params={"user.id": user_id, "scope.project.id": project_id}, collection="role_assignments")
    return sorted({a["role"]["id"] for a in found
                   if a.get("user", {}).get("id") == user_id
                   and a.get("scope", {}).get("project", {}).get("id") == project_id})


def role_grant(user_id, project_id, role_id, profile=None, **connection_args):
    """
    Give the user the role on the project (PUT /v3/projects/<project>/users/<user>/roles/<role>;
    granting a role the user already has changes nothing). Returns True.

    Bound: 3 attempts, at most 20 s, then an error naming the URL.

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.role_grant 0123abcd 4567cdef 89abcdef profile=keystone_admin
    """
    _api("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}", dict(connection_args, profile=profile),
         ok=(200, 201, 204))
    return True


def password_check(name, domain_id, password, profile=None, **connection_args):
    """
    Whether Keystone accepts ``password`` for the user ``name`` of domain ``domain_id``: True or
    False (bool). One unscoped token request (POST /v3/auth/tokens, not logged, the token is not
    kept), so telling a current password costs no write. A failed check counts towards Keystone's
    ``[security_compliance] lockout_failure_attempts`` where that is enabled.

    Bound: 3 attempts, at most 20 s, then an error naming the URL (the password masked).

    CLI Example:

    .. code-block:: bash

        salt '*' keystone_identity.password_check glance default password=... profile=keystone_admin
    """
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": domain_id}, "password": password}}}}}
    data = _api("POST", "/auth/tokens", dict(connection_args, profile=profile), body=body, ok=(201, 401),
                secrets=[password])
    return isinstance(data, dict) and "token" in data
