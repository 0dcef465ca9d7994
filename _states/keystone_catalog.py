"""
Reconcile a service and its public/internal/admin endpoints in the Keystone v3 catalog, and the
service user that logs in to Keystone for it (``user_present``, over the keystone_identity module;
one state module for the Keystone objects, as Salt's own keystone states were).

.. code-block:: yaml

    glance-service:
      keystone_catalog.service_present:
        - name: glance
        - service_type: image
        - description: OpenStack Image
        - profile: keystone_admin          # or auth_url/username/password/... arguments

    glance-endpoints:
      keystone_catalog.endpoints_present:
        - name: glance                     # the service's name
        - service_type: image
        - region: RegionOne
        - public: http://203.0.113.11:9292
        - internal: http://10.0.0.11:9292
        - admin: http://10.0.0.11:9292
        - profile: keystone_admin
        - require:
          - keystone_catalog: glance-service

Rules:
  - ``endpoints_present`` treats the given interfaces of ONE service in ONE region as one unit:
    it creates what is missing and updates url/enabled in place (ids kept); it never deletes and
    recreates, and never looks at other services' or other regions' endpoints. An interface that is
    not given (None) is left alone.
  - Two or more endpoints for the same service/interface/region are refused before anything is
    written, naming their ids and the command that removes the extra ones.
  - Two writers at once: after creating, each reads again and keeps of several equivalent services
    or endpoints the lowest id, deleting the others (doc/keystone_catalog.md, "Two writers at once").
  - ``test=True``: result None and the exact diff; only reads are made.
  - ``service_absent`` deletes the service only when it has no endpoints left (Keystone would delete
    them with it); ``endpoints_absent`` earlier in the run counts as done, also with ``test=True``.
  - ``service_present``/``endpoints_present`` find the service by type, the name only
    disambiguating: a service of the type under another name is refused with its id and
    ``name_key`` (the setting that adopts it), nothing written.
  - ``user_present``: the user created or updated in place, its password checked by authenticating
    as the user (no write when current), the project and roles created if missing, domains never.
  - One writer: ``writer=None`` always writes. ``writer='<minion id>'`` or ``writer=''`` (the
    Pacemaker DC) asks ``crm.writer_status``, as the crm states do; minions that are not the writer
    return True with a comment and make no request at all. Without the crm module (no Pacemaker
    tooling on this minion) a minion id is compared with this minion's id, and ``''`` means "no
    cluster here, this minion is the only writer" -- unless Pacemaker binaries are present, in which
    case the state fails rather than letting every node write.
  - A service lookup made by one state is reused by the next ones within the same run: a no-op run
    costs one token request and two reads (services, endpoints).
  - Keystone unreachable: the execution module's bound applies (3 attempts, connect timeout 5 s,
    at most 20 s per request), then the state fails with an error naming the URL, before any write.
"""

import types

from salt.exceptions import CommandExecutionError, SaltInvocationError

__virtualname__ = "keystone_catalog"

CACHE = "keystone_catalog.state.services"
# Endpoint ids deleted in this run (with test=True: that would be deleted), for service_absent.
DELETED = "keystone_catalog.state.deleted"
# Rounds of writes and re-reads of endpoints_present while another writer changes the same endpoints.
ROUNDS = 4


def __virtual__():
    if "keystone_catalog.endpoint_list" in __salt__:
        return __virtualname__
    return (False, ("keystone_catalog state: the keystone_catalog execution module is not loaded "
                    "(is keystoneauth1 installed?)"))


def _kc(function):
    """A function of the catalog rules (_utils/glance_ha_keystone.py)."""
    return __utils__[f"glance_ha_keystone.{function}"]


def _ret(name):
    return __utils__["glance_ha_states.ret"](name)


def _writer(writer):
    """(write, comment): write is True (this minion writes), False (skip) or None (error in comment);
    ``glance_ha.writer`` decides."""
    decision = __salt__["glance_ha.writer"](writer, what="the Keystone catalog")
    return decision["write"], decision["comment"]


def _not_writer(ret, writer):
    """Fill ``ret`` and return True when this minion must not write (or cannot tell)."""
    return __utils__["glance_ha_states.not_writer"](ret, *_writer(writer))


def _conn_args(profile, connection_args):
    args = {k: v for k, v in connection_args.items() if not k.startswith("__")}
    if profile:
        args["profile"] = profile
    return args


def _cache_key(args, name, service_type):
    return (__salt__["keystone_catalog.connection_id"](**args), name, service_type or None)


def _lookup_service(args, name, service_type):
    """The service (or None), from this run's cache if an earlier state already read it."""
    cache = __context__.setdefault(CACHE, {})
    key = _cache_key(args, name, service_type)
    if key not in cache:
        cache[key] = __salt__["keystone_catalog.service_get"](name=name, service_type=service_type, **args)
    return cache[key]


def _find_service(args, name, service_type, name_key):
    """The service to reconcile (or None: create it), found as Keystone's clients find it: by type,
    the name only disambiguating (``choose_service``); a refusal raises. Cached for the run."""
    if not service_type:
        return _lookup_service(args, name, service_type)
    cache = __context__.setdefault(CACHE, {})
    key = _cache_key(args, name, service_type)
    if key not in cache:
        found = __salt__["keystone_catalog.service_list"](service_type=service_type, **args)
        svc, refusal = _kc("choose_service")(found, name, service_type, name_key)
        if refusal:
            raise CommandExecutionError(refusal)
        cache[key] = svc
    return cache[key]


def _remember_service(args, name, service_type, svc):
    __context__.setdefault(CACHE, {})[_cache_key(args, name, service_type)] = svc


def _survivor(args, name, service_type):
    """``(service, others)``: the services named ``name`` (of ``service_type``) as Keystone holds them
    now, the one every writer keeps (``keep_lowest``) and the others; an error if there is none."""
    found = __salt__["keystone_catalog.service_list"](service_type=service_type, name=name, **args)
    svc, others = _kc("keep_lowest")(found)
    if svc is None:
        raise CommandExecutionError(f"Service {name!r} is gone from Keystone right after this run created it "
                                    "(deleted by another run?): run again.")
    return svc, others


def _write_endpoints(args, unit, svc, plan, done):
    """Write ``plan`` for ``unit`` = (name, service_type, region, desired, enabled), converging with
    another writer (``converge_endpoints``), filling ``done``; returns the ids of duplicates deleted."""
    name, service_type, region, desired, enabled = unit
    kc = "keystone_catalog."
    calls = types.SimpleNamespace(
        error=CommandExecutionError,
        services=lambda: __salt__[kc + "service_list"](service_type=service_type, name=name, **args),
        endpoints=lambda sid: __salt__[kc + "endpoint_list"](service_id=sid, region=region, **args),
        create=lambda sid, iface, url, on: __salt__[kc + "endpoint_create"](sid, iface, url, region=region,
                                                                             enabled=on, **args),
        update=lambda endpoint_id, fields: __salt__[kc + "endpoint_update"](endpoint_id, **fields, **args),
        delete=lambda endpoint_id: __salt__[kc + "endpoint_delete"](endpoint_id, **args))
    kept, removed = _kc("converge_endpoints")(calls, svc, plan, desired, region, enabled, done, ROUNDS)
    _remember_service(args, name, service_type, kept)
    if removed:
        done["duplicates"] = {"old": removed, "new": None}
    return removed


# --------------------------------------------------------------------------- states
def service_present(name, service_type, description=None, enabled=True, name_key=None, writer=None,
                    profile=None, **connection_args):
    """
    Ensure a service of ``service_type`` named ``name`` exists (one, not several), with ``description``
    (None: leave it alone) and ``enabled``.

    name
        the service's name, e.g. ``glance``
    service_type
        e.g. ``image``. The service is looked up by type, the name only disambiguating: a service of
        the type under another name is refused (its id named), nothing written
    name_key
        the setting that names the service (e.g. a pillar key), quoted in that refusal as the way to
        adopt the other service in place
    writer
        None (always write), a minion id, or '' (the Pacemaker DC); see the module documentation
    profile / auth_url, username, password, project_name, user_domain_name, project_domain_name, verify
        how to authenticate (see the keystone_catalog execution module)
    """
    ret = _ret(name)
    if _not_writer(ret, writer):
        return ret
    args = _conn_args(profile, connection_args)
    test = __opts__.get("test")
    try:
        svc = _find_service(args, name, service_type, name_key)
        if svc is None:
            want = {"name": name, "type": service_type, "description": description or "",
                    "enabled": bool(enabled)}
            ret["changes"] = {"service": {"old": None, "new": want}}
            if test:
                ret["result"] = None
                ret["comment"] = f"Service {name!r} ({service_type}) would be created."
                _remember_service(args, name, service_type, dict(want, id=None, pending=True))
                return ret
            mine = __salt__["keystone_catalog.service_create"](
                name, service_type, description=description or "", enabled=enabled, **args)
            ret["changes"]["service"]["new"]["id"] = mine["id"]
            ret["comment"] = f"Service {name!r} ({service_type}) created with id {mine['id']}."
            svc, others = _survivor(args, name, service_type)
            for other in others:
                __salt__["keystone_catalog.service_delete"](other["id"], **args)
            _remember_service(args, name, service_type, svc)
            if others:
                ret["changes"]["service"]["new"]["id"] = svc["id"]
                ret["changes"]["duplicates"] = {"old": [o["id"] for o in others], "new": None}
                ret["comment"] += (f" Another writer created it at the same time: kept {svc['id']} (the lowest "
                                   f"id), deleted {', '.join(o['id'] for o in others)}.")
            return ret
        diff = _kc("service_changes")(svc, description, enabled)
        if not diff:
            ret["comment"] = f"Service {name!r} ({service_type}) is in the desired state (id {svc['id']})."
            return ret
        changes = {k: {"old": svc.get(k), "new": v} for k, v in diff.items()}
        if not test:
            _remember_service(args, name, service_type,
                              __salt__["keystone_catalog.service_update"](svc["id"], **diff, **args))
        __utils__["glance_ha_states.pending"](
            ret, test, changes, f"Service {name!r} ({service_type}, id {svc['id']}) would be updated.",
            f"Service {name!r} ({service_type}, id {svc['id']}) updated.")
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        created = "id" in ret["changes"].get("service", {}).get("new", {})    # then the error came after
        ret["changes"] = ret["changes"] if created else {}
        ret["comment"] = (ret["comment"] + " " if created else "") + str(exc)
    return ret


def service_absent(name, service_type=None, writer=None, profile=None, **connection_args):
    """
    Ensure the service ``name`` (of ``service_type``) is not in the catalog, unless it still has
    endpoints: Keystone deletes a service's endpoints with it, so a service that other regions (or
    interfaces this run does not remove) still use is kept, with a comment naming those endpoints.
    Endpoints that ``endpoints_absent`` removes earlier in the same run do not count.

    name
        the service's name, e.g. ``glance``
    service_type
        the service's type, e.g. ``image`` (recommended: two services may share a name)
    writer, profile, auth arguments
        as for ``service_present``
    """
    ret = _ret(name)
    if _not_writer(ret, writer):
        return ret
    args = _conn_args(profile, connection_args)
    kind = f" ({service_type})" if service_type else ""
    try:
        svc = _lookup_service(args, name, service_type)
        if svc is None or svc.get("pending"):
            ret["comment"] = f"Service {name!r}{kind} does not exist."
            return ret
        gone = __context__.get(DELETED, set())
        left = [e for e in __salt__["keystone_catalog.endpoint_list"](service_id=svc["id"], **args)
                if e["id"] not in gone]
        if left:
            used = ", ".join(sorted(f"{e.get('region_id')}/{e.get('interface')} {e['id']}" for e in left))
            ret["comment"] = (f"Service {name!r}{kind} (id {svc['id']}) kept: it still has endpoints ({used}), "
                              "which Keystone would delete with it.")
            return ret
        old = {k: svc.get(k) for k in ("id", "name", "type", "description", "enabled")}
        test = __opts__.get("test")
        if not test:
            __salt__["keystone_catalog.service_delete"](svc["id"], **args)
            _remember_service(args, name, service_type, None)
        __utils__["glance_ha_states.pending"](
            ret, test, {"service": {"old": old, "new": None}},
            f"Service {name!r}{kind} (id {svc['id']}) would be deleted.",
            f"Service {name!r}{kind} (id {svc['id']}) deleted.")
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
    return ret


def endpoints_present(name, region, public=None, internal=None, admin=None, service_type=None,
                      enabled=True, name_key=None, writer=None, profile=None, **connection_args):
    """
    Ensure the public, internal and admin endpoints of service ``name`` in ``region`` (one unit).

    name
        the service's name, e.g. ``glance``
    region
        the region id, e.g. ``RegionOne`` (created when endpoints must be created and it does not exist)
    public, internal, admin
        the URLs; an interface left at None is not managed
    service_type
        the service's type, e.g. ``image`` (recommended: two services may share a name)
    enabled
        True/False for all given interfaces; None leaves the flag alone
    name_key
        as for ``service_present`` (the service is found the same way)
    writer, profile, auth arguments
        as for ``service_present``

    Missing endpoints are created, url/enabled updated in place (same id); duplicates are refused
    with their ids, nothing written; nothing outside this service and region is read or written.
    """
    ret = _ret(name)
    desired = {"public": public, "internal": internal, "admin": admin}
    if all(v is None for v in desired.values()):
        ret["result"] = False
        ret["comment"] = "Give at least one of public, internal, admin."
        return ret
    if not region:
        ret["result"] = False
        ret["comment"] = "region is required (e.g. RegionOne)."
        return ret
    errors = []
    for iface, url in desired.items():
        error = None if url is None else __salt__["keystone_catalog.validate_endpoint_url"](url)
        if error:
            errors.append(f"{iface}: {error}")
    if errors:
        ret["result"] = False
        ret["comment"] = "; ".join(errors)
        return ret
    if _not_writer(ret, writer):
        return ret
    args = _conn_args(profile, connection_args)
    test = __opts__.get("test")
    try:
        svc = _find_service(args, name, service_type, name_key)
        if svc is None or svc.get("pending"):
            plan = _kc("plan_endpoints")([], desired, None, region, enabled)
            ret["changes"] = _kc("plan_changes")(plan)
            if test:
                ret["result"] = None
                ret["comment"] = (f"Service {name!r} does not exist yet: its {', '.join(ret['changes'])} "
                                  f"endpoints in {region} would be created.")
            else:
                ret["result"] = False
                ret["changes"] = {}
                ret["comment"] = (f"Service {name!r}{f' ({service_type})' if service_type else ''} not found: "
                                  "create it first (keystone_catalog.service_present, required by this state).")
            return ret
        current = __salt__["keystone_catalog.endpoint_list"](service_id=svc["id"], region=region, **args)
        plan = _kc("plan_endpoints")(current, desired, svc["id"], region, enabled)
        if plan["duplicates"]:
            ret["result"] = False
            ret["comment"] = _kc("duplicates_message")(plan["duplicates"], name, region)
            return ret
        changes = _kc("plan_changes")(plan)
        if not changes:
            ids = ", ".join(f"{i}={endpoint_id}" for i, endpoint_id in plan["unchanged"].items())
            ret["comment"] = f"Endpoints of {name!r} in {region} are in the desired state ({ids})."
            return ret
        new_region = bool(plan["create"]) and __salt__["keystone_catalog.region_get"](region, **args) is None
        if new_region:
            changes["region"] = {"old": None, "new": region}
        summary = _kc("plan_summary")(plan)
        if test:
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = (f"Endpoints of {name!r} in {region} would be {summary}"
                              + (f" (region {region} created first)" if new_region else "") + ".")
            return ret
        done = {}
        try:
            if new_region:
                __salt__["keystone_catalog.region_create"](region, **args)
                done["region"] = changes["region"]
            removed = _write_endpoints(args, (name, service_type, region, desired, enabled), svc, plan, done)
        finally:
            ret["changes"] = done
        ret["comment"] = f"Endpoints of {name!r} in {region}: {summary}." + (
            f" Another writer created them at the same time: kept the lowest ids, deleted {', '.join(removed)}."
            if removed else "")
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc) + (" (changes made before the error are listed; run again to finish)"
                                     if ret["changes"] else "")
    return ret


def endpoints_absent(name, region, interfaces=None, service_type=None, writer=None, profile=None,
                     **connection_args):
    """
    Ensure service ``name`` has no endpoints for ``interfaces`` (default: public, internal, admin) in
    ``region``. Duplicates are deleted too. Other services and regions are not touched; the service
    itself is kept (see ``service_absent``).

    .. code-block:: yaml

        old-glance-endpoints:
          keystone_catalog.endpoints_absent:
            - name: glance
            - service_type: image
            - region: RegionTwo
            - profile: keystone_admin
    """
    ret = _ret(name)
    interfaces, bad = _kc("select_interfaces")(interfaces)
    if bad or not region:
        ret["result"] = False
        ret["comment"] = (f"Unknown interface(s): {', '.join(bad)}" if bad else "region is required.")
        return ret
    if _not_writer(ret, writer):
        return ret
    args = _conn_args(profile, connection_args)
    try:
        svc = _lookup_service(args, name, service_type)
        if svc is None or svc.get("pending"):
            ret["comment"] = f"Service {name!r} does not exist: no endpoints to remove."
            return ret
        current = __salt__["keystone_catalog.endpoint_list"](service_id=svc["id"], region=region, **args)
        doomed = _kc("plan_absent")(current, svc["id"], region, interfaces)
        if not doomed:
            ret["comment"] = f"Service {name!r} has no {'/'.join(interfaces)} endpoints in {region}."
            return ret
        urls = {e["id"]: e.get("url") for e in current}
        changes = {iface: {"old": [{"id": i, "url": urls[i]} for i in ids], "new": None}
                   for iface, ids in doomed.items()}
        deleted = __context__.setdefault(DELETED, set())
        if __opts__.get("test"):
            deleted.update(i for ids in doomed.values() for i in ids)
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = f"Endpoints of {name!r} in {region} would be deleted: {', '.join(sorted(doomed))}."
            return ret
        done = {}
        try:
            for iface, ids in doomed.items():
                for endpoint_id in ids:
                    __salt__["keystone_catalog.endpoint_delete"](endpoint_id, **args)
                    deleted.add(endpoint_id)
                done[iface] = changes[iface]
        finally:
            ret["changes"] = done
        ret["comment"] = f"Endpoints of {name!r} in {region} deleted: {', '.join(sorted(doomed))}."
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
    return ret


def _domain(args, name, what):
    found = __salt__["keystone_identity.domain_get"](name, **args)
    if found is None:
        raise CommandExecutionError(
            f"Keystone has no domain {name!r} ({what}): the formula does not create domains; create it "
            f"(`openstack domain create {name}`) or name an existing one (the default domain is Default).")
    return found


def user_present(name, password=None, password_key=None, domain="Default", project="service",
                 project_domain="Default", roles=("admin", "service"), enabled=True, writer=None, profile=None,
                 **connection_args):
    """
    Ensure a service user: the user ``name`` in ``domain`` with this password, enabled, and the
    ``roles`` on ``project`` (created in ``project_domain`` if missing, as the user's default
    project). Created or updated in place (ids kept); roles it has beyond ``roles`` are kept.

    name
        the user's name, e.g. ``glance``
    password / password_key
        the password, or a ``config.get`` key holding it (nested pillar keys with ``:``, e.g.
        ``glance_ha:keystone:service_user:password``), read at run time so that it is not part of the
        rendered SLS. Whether the user's password is current is told by authenticating as the user
        once (an unscoped token request): no write when it is. A password Keystone refuses is set on
        the existing user, and the state says "password updated" (masked).
    domain, project_domain
        names of existing domains (never created)
    project
        the service project's name (created if missing)
    roles
        role names given to the user on the project (created if missing); default admin, service
    enabled
        the user's enabled flag
    writer, profile, auth arguments
        as for ``service_present``; the admin credentials, not the user's
    """
    ret = _ret(name)
    roles = list(roles) if isinstance(roles, (list, tuple)) else roles
    problem = _kc("roles_problem")(roles)
    if problem:
        ret["result"] = False
        ret["comment"] = f"roles: {problem}"
        return ret
    if _not_writer(ret, writer):
        return ret
    if password is None and password_key:
        password = __salt__["config.get"](password_key)
    if not password or not isinstance(password, str):
        ret["result"] = False
        ret["comment"] = ("No password for the user: give password, or password_key naming a key that holds "
                          f"one ({password_key!r} is empty)" if password_key else "No password given.")
        return ret
    args = _conn_args(profile, connection_args)
    test = __opts__.get("test")
    ident = "keystone_identity."
    said, changes = [], {}
    try:
        user_domain = _domain(args, domain, "the user's domain")
        proj_domain = user_domain if project_domain == domain else _domain(args, project_domain,
                                                                             "the project's domain")
        proj = __salt__[ident + "project_get"](project, proj_domain["id"], **args)
        role_ids = {r: __salt__[ident + "role_get"](r, **args) for r in roles}
        user = __salt__[ident + "user_get"](name, user_domain["id"], **args)
        plan = {"project": proj is None, "roles": [r for r, found in role_ids.items() if found is None],
                "user": user is None, "update": {}, "password": False, "grant": list(roles)}
        if user is not None:
            plan["update"] = _kc("user_changes")(user, None, enabled)
            # A disabled user cannot authenticate: its password is set with the enabling write.
            plan["password"] = bool(plan["update"].get("enabled")) or not __salt__[ident + "password_check"](
                name, user_domain["id"], password, **args)
            if proj is not None:
                have = set(__salt__[ident + "user_roles"](user["id"], proj["id"], **args))
                plan["grant"] = [r for r, found in role_ids.items() if found is None or found["id"] not in have]
        if not any(plan[k] for k in ("project", "roles", "user", "update", "password", "grant")):
            ret["comment"] = (f"User {name!r} (domain {domain}, id {user['id']}) is in the desired state, "
                              f"with roles {', '.join(roles)} on project {project!r}.")
            return ret
        mask = __utils__["glance_ha_secrets.mask"](password, [password])
        if test:
            if plan["project"]:
                changes["project"] = {"old": None, "new": {"name": project, "domain": project_domain}}
            if plan["roles"]:
                changes["roles_created"] = plan["roles"]
            if plan["user"]:
                changes["user"] = {"old": None, "new": {"name": name, "domain": domain, "enabled": bool(enabled)}}
            for key, value in plan["update"].items():
                changes[key] = {"old": user.get(key), "new": value}
            if plan["password"]:
                changes["password"] = {"old": mask, "new": mask}
            if plan["grant"]:
                changes["roles"] = {"old": None, "new": {"project": project, "granted": plan["grant"]}}
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = f"User {name!r} (domain {domain}) would be changed: {', '.join(changes)}."
            return ret
        try:
            if plan["project"]:
                proj = __salt__[ident + "project_create"](project, proj_domain["id"], **args)
                changes["project"] = {"old": None, "new": {"name": project, "domain": project_domain,
                                                           "id": proj["id"]}}
                said.append(f"project {project!r} created (id {proj['id']})")
            for role in plan["roles"]:
                role_ids[role] = __salt__[ident + "role_create"](role, **args)
                changes.setdefault("roles_created", []).append(role)
                said.append(f"role {role!r} created")
            if plan["user"]:
                user = __salt__[ident + "user_create"](name, user_domain["id"], password,
                                                       default_project_id=proj["id"], enabled=enabled, **args)
                changes["user"] = {"old": None, "new": {"name": name, "domain": domain, "id": user["id"],
                                                        "enabled": bool(enabled)}}
                said.append(f"user created (id {user['id']})")
            if plan["update"] or plan["password"]:
                __salt__[ident + "user_update"](user["id"], password=password if plan["password"] else None,
                                                **plan["update"], **args)
                for key, value in plan["update"].items():
                    changes[key] = {"old": user.get(key), "new": value}
                    said.append(f"{key} set to {value}")
                if plan["password"]:
                    changes["password"] = {"old": mask, "new": mask}
                    said.append("password updated")
            for role in plan["grant"]:
                __salt__[ident + "role_grant"](user["id"], proj["id"], role_ids[role]["id"], **args)
                changes.setdefault("roles", {"old": None, "new": {"project": project, "granted": []}})
                changes["roles"]["new"]["granted"].append(role)
            if plan["grant"]:
                said.append(f"roles {', '.join(plan['grant'])} given on project {project!r}")
        finally:
            ret["changes"] = changes
        ret["comment"] = f"User {name!r} (domain {domain}, id {user['id']}): {'; '.join(said)}."
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = __utils__["glance_ha_secrets.mask"](str(exc), [password]) + (
            f" (done before the error: {'; '.join(said)}; run again to finish)" if said else
            " Nothing was changed.")
    return ret
