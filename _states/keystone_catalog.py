"""
Reconcile a service and its public/internal/admin endpoints in the Keystone v3 catalog.

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
  - ``test=True``: result None and the exact diff; only reads are made.
  - One writer: ``writer=None`` always writes. ``writer='<minion id>'`` or ``writer=''`` (the
    Pacemaker DC) asks ``crm.is_writer``, as the crm states do; minions that are not the writer
    return True with a comment and make no request at all. Without the crm module (no Pacemaker
    tooling on this minion) a minion id is compared with this minion's id, and ``''`` means "no
    cluster here, this minion is the only writer" -- unless Pacemaker binaries are present, in which
    case the state fails rather than letting every node write.
  - A service lookup made by ``service_present`` is reused by ``endpoints_present`` within the same
    run: a no-op run costs one token request and two reads (services, endpoints).
  - Keystone unreachable: the execution module's bound applies (3 attempts, connect timeout 5 s,
    at most 20 s per request), then the state fails with an error naming the URL, before any write.
"""

import logging

from salt.exceptions import CommandExecutionError, SaltInvocationError

log = logging.getLogger(__name__)

__virtualname__ = "keystone_catalog"

INTERFACES = ("public", "internal", "admin")
CACHE = "keystone_catalog.state.services"
PACEMAKER_BINARIES = ("pacemakerd", "crmadmin", "cibadmin")


def __virtual__():
    if "keystone_catalog.endpoint_list" in __salt__:
        return __virtualname__
    return (False, ("keystone_catalog state: the keystone_catalog execution module is not loaded "
                    "(is keystoneauth1 installed?)"))


# --------------------------------------------------------------------------- pure functions
def plan_endpoints(current, desired, service_id, region, enabled=True):
    """
    Compare the endpoints of one service in one region with the desired URLs.

    ``current``: endpoint dicts as Keystone returns them (others are ignored here too);
    ``desired``: {interface: url or None}, None = not managed. ``enabled``: True/False, or None to
    leave it alone. Returns {"duplicates": {iface: [ids]}, "create": {iface: {url, enabled}},
    "update": {iface: {"id", "old": {...}, "new": {...}}}, "unchanged": {iface: id}}.
    """
    mine = [e for e in current if e.get("service_id") == service_id and e.get("region_id") == region]
    plan = {"duplicates": {}, "create": {}, "update": {}, "unchanged": {}}
    for iface in INTERFACES:
        url = desired.get(iface)
        if url is None:
            continue
        have = sorted((e for e in mine if e.get("interface") == iface), key=lambda e: e["id"])
        if len(have) > 1:
            plan["duplicates"][iface] = [e["id"] for e in have]
        elif not have:
            plan["create"][iface] = {"url": url, "enabled": True if enabled is None else bool(enabled)}
        else:
            ep = have[0]
            old, new = {}, {}
            if ep.get("url") != url:
                old["url"], new["url"] = ep.get("url"), url
            if enabled is not None and bool(ep.get("enabled", True)) != bool(enabled):
                old["enabled"], new["enabled"] = bool(ep.get("enabled", True)), bool(enabled)
            if new:
                plan["update"][iface] = {"id": ep["id"], "old": old, "new": new}
            else:
                plan["unchanged"][iface] = ep["id"]
    return plan


def duplicates_message(duplicates, service, region):
    """The refusal for duplicate endpoints: names every id and how to remove the extra ones."""
    parts = [f"{iface}: {', '.join(ids)}" for iface, ids in sorted(duplicates.items())]
    extra = [i for ids in duplicates.values() for i in ids[1:]]
    return (f"Refusing to touch service {service!r} in region {region!r}: duplicate endpoints "
            f"({'; '.join(parts)}). Nothing was changed. Keep one endpoint per interface and delete the "
            f"others, e.g. `openstack endpoint delete {' '.join(extra)}`, then run again.")


def plan_changes(plan):
    """The changes dict of a plan: {iface: {"old": ..., "new": ...}} for creates and updates."""
    changes = {}
    for iface, want in plan["create"].items():
        changes[iface] = {"old": None, "new": dict(want)}
    for iface, upd in plan["update"].items():
        changes[iface] = {"old": dict(upd["old"], id=upd["id"]), "new": dict(upd["new"], id=upd["id"])}
    return changes


def plan_absent(current, service_id, region, interfaces):
    """Endpoints to delete: {iface: [ids]} of this service in this region for the given interfaces."""
    out = {}
    for ep in current:
        if (ep.get("service_id") == service_id and ep.get("region_id") == region
                and ep.get("interface") in interfaces):
            out.setdefault(ep["interface"], []).append(ep["id"])
    return {k: sorted(v) for k, v in out.items()}


# --------------------------------------------------------------------------- helpers
def _ret(name):
    return {"name": name, "result": True, "changes": {}, "comment": ""}


def _writer(writer):
    """(write, comment): write is True (this minion writes), False (skip) or None (error in comment)."""
    if writer is None:
        return True, ""
    writer = str(writer)
    if "crm.writer_status" in __salt__ or "crm.is_writer" in __salt__:
        try:
            if "crm.writer_status" in __salt__:
                status = __salt__["crm.writer_status"](writer)
                is_writer, reason = bool(status.get("writer")), status.get("reason", "")
            else:
                is_writer, reason = bool(__salt__["crm.is_writer"](writer)), ""
        except (CommandExecutionError, SaltInvocationError) as exc:
            return None, f"Cannot tell whether this minion is the writer: {exc}"
        if is_writer:
            return True, ""
        who = writer or "the Pacemaker DC"
        return False, (f"Not the writer ({who} writes the Keystone catalog"
                       + (f"; {reason}" if reason else "") + "); nothing done here.")
    me = __opts__.get("id")
    if writer:
        if writer == me:
            return True, ""
        return False, f"Not the writer ({writer} writes the Keystone catalog); nothing done here."
    found = [b for b in PACEMAKER_BINARIES if __salt__["cmd.has_exec"](b)]
    if found:
        return None, ("writer '' means the Pacemaker DC, but the crm module is not loaded although "
                      f"Pacemaker is installed ({', '.join(found)}): fix the crm module, or set the writer "
                      "to a minion id")
    return True, "No Pacemaker on this minion: it is the only writer."


def _not_writer(ret, writer):
    """Fill ``ret`` and return True when this minion must not write (or cannot tell)."""
    write, why = _writer(writer)
    if write:
        return False
    ret["result"] = write is not None
    ret["comment"] = why
    return True


def _conn_args(profile, connection_args):
    args = {k: v for k, v in connection_args.items() if not k.startswith("__")}
    if profile:
        args["profile"] = profile
    return args


def _cache_key(args, name, service_type):
    return (__salt__["keystone_catalog.connection_id"](**args), name, service_type or None)


def _lookup_service(args, name, service_type):
    """The service (or None), from this run's cache if service_present already read it."""
    cache = __context__.setdefault(CACHE, {})
    key = _cache_key(args, name, service_type)
    if key not in cache:
        cache[key] = __salt__["keystone_catalog.service_get"](name=name, service_type=service_type, **args)
    return cache[key]


def _remember_service(args, name, service_type, svc):
    __context__.setdefault(CACHE, {})[_cache_key(args, name, service_type)] = svc


# --------------------------------------------------------------------------- states
def service_present(name, service_type, description=None, enabled=True, writer=None, profile=None,
                    **connection_args):
    """
    Ensure a service of ``service_type`` named ``name`` exists (one, not several), with ``description``
    (None: leave it alone) and ``enabled``.

    name
        the service's name, e.g. ``glance``
    service_type
        e.g. ``image``
    writer
        None (always write), a minion id, or '' (the Pacemaker DC); see the module documentation
    profile / auth_url, username, password, project_name, user_domain_name, project_domain_name, verify
        how to authenticate (see the keystone_catalog execution module)
    """
    ret = _ret(name)
    if _not_writer(ret, writer):
        return ret
    args = _conn_args(profile, connection_args)
    try:
        svc = _lookup_service(args, name, service_type)
        if svc is None:
            want = {"name": name, "type": service_type, "description": description or "",
                    "enabled": bool(enabled)}
            ret["changes"] = {"service": {"old": None, "new": want}}
            if __opts__.get("test"):
                ret["result"] = None
                ret["comment"] = f"Service {name!r} ({service_type}) would be created."
                _remember_service(args, name, service_type, dict(want, id=None, pending=True))
                return ret
            svc = __salt__["keystone_catalog.service_create"](
                name, service_type, description=description or "", enabled=enabled, **args)
            _remember_service(args, name, service_type, svc)
            ret["changes"]["service"]["new"]["id"] = svc["id"]
            ret["comment"] = f"Service {name!r} ({service_type}) created with id {svc['id']}."
            return ret
        diff = {}
        if description is not None and (svc.get("description") or "") != description:
            diff["description"] = description
        if bool(svc.get("enabled", True)) != bool(enabled):
            diff["enabled"] = bool(enabled)
        if not diff:
            ret["comment"] = f"Service {name!r} ({service_type}) is in the desired state (id {svc['id']})."
            return ret
        ret["changes"] = {k: {"old": svc.get(k), "new": v} for k, v in diff.items()}
        if __opts__.get("test"):
            ret["result"] = None
            ret["comment"] = f"Service {name!r} ({service_type}, id {svc['id']}) would be updated."
            return ret
        new = __salt__["keystone_catalog.service_update"](svc["id"], **diff, **args)
        _remember_service(args, name, service_type, new)
        ret["comment"] = f"Service {name!r} ({service_type}, id {svc['id']}) updated."
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["changes"] = {}
        ret["comment"] = str(exc)
    return ret


def endpoints_present(name, region, public=None, internal=None, admin=None, service_type=None,
                      enabled=True, writer=None, profile=None, **connection_args):
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
        if url is not None:
            error = __salt__["keystone_catalog.validate_endpoint_url"](url)
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
        svc = _lookup_service(args, name, service_type)
        if svc is None or svc.get("pending"):
            plan = plan_endpoints([], desired, None, region, enabled)
            ret["changes"] = plan_changes(plan)
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
        plan = plan_endpoints(current, desired, svc["id"], region, enabled)
        if plan["duplicates"]:
            ret["result"] = False
            ret["comment"] = duplicates_message(plan["duplicates"], name, region)
            return ret
        changes = plan_changes(plan)
        if not changes:
            ids = ", ".join(f"{i}={plan['unchanged'][i]}" for i in INTERFACES if i in plan["unchanged"])
            ret["comment"] = f"Endpoints of {name!r} in {region} are in the desired state ({ids})."
            return ret
        new_region = bool(plan["create"]) and __salt__["keystone_catalog.region_get"](region, **args) is None
        if new_region:
            changes["region"] = {"old": None, "new": region}
        if test:
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = (f"Endpoints of {name!r} in {region} would be "
                              + _summary(plan, "created", "updated in place")
                              + (f" (region {region} created first)" if new_region else "") + ".")
            return ret
        done = {}
        try:
            if new_region:
                __salt__["keystone_catalog.region_create"](region, **args)
                done["region"] = changes["region"]
            for iface in INTERFACES:
                if iface in plan["update"]:
                    upd = plan["update"][iface]
                    __salt__["keystone_catalog.endpoint_update"](upd["id"], **upd["new"], **args)
                    done[iface] = changes[iface]
                elif iface in plan["create"]:
                    want = plan["create"][iface]
                    new = __salt__["keystone_catalog.endpoint_create"](
                        svc["id"], iface, want["url"], region=region, enabled=want["enabled"], **args)
                    done[iface] = {"old": None, "new": dict(want, id=new["id"])}
        finally:
            ret["changes"] = done
        ret["comment"] = f"Endpoints of {name!r} in {region}: " + _summary(plan, "created", "updated in place") + "."
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc) + (" (changes made before the error are listed; run again to finish)"
                                     if ret["changes"] else "")
    return ret


def _summary(plan, created, updated):
    parts = []
    if plan["create"]:
        parts.append(f"{', '.join(i for i in INTERFACES if i in plan['create'])} {created}")
    if plan["update"]:
        parts.append(f"{', '.join(i for i in INTERFACES if i in plan['update'])} {updated}")
    return "; ".join(parts)


def endpoints_absent(name, region, interfaces=None, service_type=None, writer=None, profile=None,
                     **connection_args):
    """
    Ensure service ``name`` has no endpoints for ``interfaces`` (default: public, internal, admin) in
    ``region``. Duplicates are deleted too. Other services and regions are not touched; the service
    itself is kept.

    CLI-free example:

    .. code-block:: yaml

        old-glance-endpoints:
          keystone_catalog.endpoints_absent:
            - name: glance
            - service_type: image
            - region: RegionTwo
            - profile: keystone_admin
    """
    ret = _ret(name)
    interfaces = list(interfaces or INTERFACES)
    bad = [i for i in interfaces if i not in INTERFACES]
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
        doomed = plan_absent(current, svc["id"], region, interfaces)
        if not doomed:
            ret["comment"] = f"Service {name!r} has no {'/'.join(interfaces)} endpoints in {region}."
            return ret
        urls = {e["id"]: e.get("url") for e in current}
        changes = {iface: {"old": [{"id": i, "url": urls[i]} for i in ids], "new": None}
                   for iface, ids in doomed.items()}
        if __opts__.get("test"):
            ret["result"] = None
            ret["changes"] = changes
            ret["comment"] = f"Endpoints of {name!r} in {region} would be deleted: {', '.join(sorted(doomed))}."
            return ret
        done = {}
        try:
            for iface, ids in doomed.items():
                for endpoint_id in ids:
                    __salt__["keystone_catalog.endpoint_delete"](endpoint_id, **args)
                done[iface] = changes[iface]
        finally:
            ret["changes"] = done
        ret["comment"] = f"Endpoints of {name!r} in {region} deleted: {', '.join(sorted(doomed))}."
    except (CommandExecutionError, SaltInvocationError) as exc:
        ret["result"] = False
        ret["comment"] = str(exc)
    return ret
