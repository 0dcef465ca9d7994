"""
The Keystone v3 catalog rules of the glance_ha formula, in one place: which ``auth_url`` is usable
(v3 or unversioned; v2.0 and every other version refused) and its v3 form, which endpoint URL is
usable, the endpoint interfaces, how a service differs from its declaration, the endpoint plan
(create, update in place, refuse duplicates, delete), and which of several equivalent objects two
writers created at once every writer keeps (:func:`keep_lowest`).

A ``*_problem`` function returns None for a good value, else the reason, worded to follow the name
of the setting in an error (``"glance_ha:keystone:auth_url: " + reason``). Reasons quote the value:
callers mask them with ``glance_ha_secrets.mask`` (a URL may carry a password).

Pure: no Salt dunders, no I/O of its own (:func:`converge_endpoints` makes the Keystone calls it is
given). Loaded by Salt as ``__utils__['glance_ha_keystone.<function>']``
and importable as a plain module by tests.
"""

import re
import urllib.parse

INTERFACES = ("public", "internal", "admin")
# What keystone_catalog.api may reach: the catalog and identity objects, never credentials or tokens.
API_COLLECTIONS = ("services", "endpoints", "regions", "domains", "projects", "users", "roles", "role_assignments")
_VERSION_RE = re.compile(r"^v(\d+)(\.\d+)?$", re.IGNORECASE)
# Keystone substitutes $(project_id)s and friends in endpoint URLs.
_SUBSTITUTION_RE = re.compile(r"\$\((\w+)\)s")


def interfaces():
    """The endpoint interfaces, in catalog order (tuple of str): public, internal, admin."""
    return INTERFACES


def interface_problem(interface):
    """None if ``interface`` is one of :data:`INTERFACES`, else the reason (str)."""
    if interface in INTERFACES:
        return None
    return f"interface {interface!r} is not one of {', '.join(INTERFACES)}"


def select_interfaces(wanted=None):
    """``(interfaces, unknown)``: the list ``wanted`` (None or empty: all three, in catalog order)
    and the names in it that are not interfaces (list of str)."""
    chosen = list(wanted or INTERFACES)
    return chosen, [i for i in chosen if i not in INTERFACES]


def _http_url_problem(url):
    """The checks every URL of the catalog passes: a string, no whitespace, http(s), a host, a port
    in 1..65535 if given. Returns ``(reason or None, urlsplit result or None)``."""
    if not url or not isinstance(url, str):
        return f"{url!r} is empty or not a string", None
    if any(c.isspace() for c in url):
        return f"{url!r} is not an http:// or https:// URL (it contains whitespace)", None
    parsed = urllib.parse.urlsplit(_SUBSTITUTION_RE.sub("x", url))
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return f"{url!r} is not an http:// or https:// URL", None
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if port == 0:
        return f"{url!r} has an invalid port", None
    return None, parsed


def endpoint_url_problem(url):
    """
    None if Keystone and its clients accept ``url`` (str) as an endpoint URL, else the reason (str).
    ``$(project_id)s``-style substitutions are allowed.
    """
    return _http_url_problem(url)[0]


def _v3_root(parsed, segments):
    return urllib.parse.urlunsplit((parsed.scheme, parsed.netloc, "/".join([""] + segments + ["v3"]), "", ""))


def auth_url_problem(url):
    """
    None if ``url`` (str) is a usable Keystone v3 auth URL, else the reason (str).

    Usable: an http(s) URL without query or fragment whose path ends in ``/v3`` or in no version at
    all (``http://h:5000``, ``https://h/identity``: ``/v3`` is then appended, see
    :func:`normalize_auth_url`). A path ending in any other version (``/v2.0``, ``/v2``, ``/v1``) is
    refused with the v3 URL to use instead.
    """
    if url in (None, ""):
        return "is required (e.g. http://10.0.0.11:5000/v3)"
    problem, parsed = _http_url_problem(url)
    if problem:
        return problem
    if parsed.query or parsed.fragment:
        return f"{url!r} must not have a query or fragment"
    segments = [s for s in parsed.path.split("/") if s]
    match = _VERSION_RE.match(segments[-1]) if segments else None
    if match and match.group(1) != "3":
        return (f"{url!r} is Keystone {segments[-1]}, which is not supported (Keystone removed v2.0 in "
                f"Queens): use the v3 URL {_v3_root(parsed, segments[:-1])}")
    return None


def normalize_auth_url(url):
    """
    The Keystone v3 form of ``url`` (str): surrounding whitespace dropped, ``/v3`` appended when the
    path has no version, a trailing slash removed (``http://h:5000/`` -> ``http://h:5000/v3``).
    Raises ValueError with :func:`auth_url_problem`'s reason when the URL is not usable.
    """
    url = url.strip() if isinstance(url, str) else url
    problem = auth_url_problem(url)
    if problem:
        raise ValueError(problem)
    parsed = urllib.parse.urlsplit(url)
    segments = [s for s in parsed.path.split("/") if s]
    if segments and _VERSION_RE.match(segments[-1]):
        segments = segments[:-1]
    return _v3_root(parsed, segments)


def merge_auth(keys, defaults, profile_data, kwargs):
    """
    The auth parameters (dict): ``defaults`` <- ``profile_data`` <- ``kwargs`` (dicts), for ``keys``
    only; an empty value (None, "") overrides nothing. Returns ``(auth, missing)``: ``missing`` lists
    which of auth_url, username, password, project_name are still empty.
    """
    auth = dict(defaults)
    for source in (profile_data or {}, kwargs):
        auth.update({k: source[k] for k in keys if source.get(k) not in (None, "")})
    return auth, [k for k in ("auth_url", "username", "password", "project_name") if not auth.get(k)]


def http_error(status, method, url, auth_url, who, detail):
    """The error (str) for Keystone answering ``method url`` with HTTP ``status``: 401 is the
    credentials of ``who`` refused, 403 missing rights; ``detail`` is Keystone's message."""
    if status == 401:
        return f"Keystone at {auth_url} rejected the credentials of {who} (HTTP 401): {detail}"
    if status == 403:
        return f"{who} may not {method} {url} (HTTP 403, needs the admin role): {detail}"
    return f"{method} {url}: HTTP {status}: {detail}"


def never_sent(exc):
    """
    Whether a failed request (``exc``: an exception of requests/urllib3, possibly wrapped by
    keystoneauth1) certainly never reached the server: a connect timeout, or a connection that was
    never made (refused, unresolvable). Read timeouts and dropped connections return False. Bool.
    """
    seen = set()
    cur = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        kind = type(cur)
        if kind.__name__ == "ConnectTimeout" and kind.__module__.startswith("requests"):
            return True
        for arg in getattr(cur, "args", ()):
            reason = getattr(arg, "reason", None)
            if reason is not None and type(reason).__name__ in ("NewConnectionError", "ConnectTimeoutError"):
                return True
        cur = cur.__cause__ or cur.__context__
    return False


def api_path_problem(method, path):
    """None if ``method`` (str) on ``path`` (str, relative to /v3, may carry a query) is a request the
    formula makes, else the reason (str): the objects of :data:`API_COLLECTIONS` (and the role grants
    below projects), and ``POST /auth/tokens`` (a password check)."""
    if not isinstance(path, str) or not path.startswith("/"):
        return f"path {path!r} must start with /"
    parts = urllib.parse.urlsplit(path).path.strip("/").split("/")
    if str(method).upper() == "POST" and parts == ["auth", "tokens"]:
        return None
    if str(method).upper() not in ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"):
        return f"method {method!r} is not an HTTP method Keystone's API uses"
    if parts[0] not in API_COLLECTIONS or ".." in parts:
        return f"path {path!r} is not one of /{', /'.join(API_COLLECTIONS)} or POST /auth/tokens"
    return None


# --------------------------------------------------------------------------- services
def keep_lowest(objects):
    """
    Which of several equivalent Keystone objects (dicts with an ``id``; e.g. the services of one
    type and name, or the endpoints of one service, interface and region) stays: ``(kept, others)``,
    ``kept`` the one with the lowest id (None for no objects), ``others`` the rest in id order.

    Keystone has no uniqueness on services or endpoints and no lock, so two writers that both find
    one missing both create it. Each keeps what this rule keeps and deletes the others: from the same
    objects both compute the same answer, and the lowest id ever created is never deleted by anyone.
    """
    ordered = sorted(objects, key=lambda o: o["id"])
    return (ordered[0] if ordered else None), ordered[1:]


def choose_service(services, name, service_type, name_key=None):
    """
    Which of ``services`` (the Keystone services of ``service_type``, listed by type as Keystone's
    clients find a service) is the one named ``name``: ``(service or None, refusal or None)``.

    The name only disambiguates: several services of the type are fine when exactly one has the
    name. Refused (nothing may be written): two with the name, or none with it while the type has
    services under other names (clients looking the type up would pick either); the refusal names
    their ids and the setting ``name_key`` (default "name") that adopts one in place.
    """
    named = sorted((s for s in services if s.get("name") == name), key=lambda s: s["id"])
    if len(named) > 1:
        ids = ", ".join(s["id"] for s in named)
        return None, (f"{len(named)} {service_type} services are named {name!r} (ids {ids}). Nothing was "
                      "changed. Keep one: move the endpoints and `openstack service delete <id>` the others.")
    if named:
        return named[0], None
    others = sorted(services, key=lambda s: s["id"])
    if not others:
        return None, None
    found = "; ".join(f"{s.get('name')!r} (id {s['id']})" for s in others)
    adopt = f"set {name_key or 'name'}: {others[0].get('name')!r}" if len(others) == 1 else \
        f"set {name_key or 'name'} to the name of the one to keep and delete the others"
    return None, (f"Keystone already has a {service_type} service under another name: {found}. Creating "
                  f"{name!r} beside it would give clients looking up the {service_type} type two services. "
                  f"Nothing was changed. To adopt it in place (same ids), {adopt}; or delete it "
                  f"(`openstack service delete <id>`) if it is not used.")


def service_changes(current, description=None, enabled=True):
    """
    The fields of service ``current`` (a Keystone service dict) that differ from the declaration:
    ``{field: new value}`` for ``description`` (None: not managed; a missing description is "")
    and ``enabled`` (bool). Empty dict: nothing to change.
    """
    diff = {}
    if description is not None and (current.get("description") or "") != description:
        diff["description"] = description
    if bool(current.get("enabled", True)) != bool(enabled):
        diff["enabled"] = bool(enabled)
    return diff


# --------------------------------------------------------------------------- endpoints
def plan_endpoints(current, desired, service_id, region, enabled=True, converge=()):
    """
    Compare the endpoints of one service in one region with the desired URLs.

    ``current``: endpoint dicts as Keystone returns them (others are ignored here too);
    ``desired``: {interface: url or None}, None = not managed. ``enabled``: True/False, or None to
    leave it alone. ``converge``: interfaces whose duplicates are resolved rather than refused (by a
    writer that has created endpoints here): the lowest id (:func:`keep_lowest`) is compared, the
    others deleted.
    Returns {"duplicates": {iface: [ids]}, "delete": {iface: [ids]}, "create": {iface: {url, enabled}},
    "update": {iface: {"id", "old": {...}, "new": {...}}}, "unchanged": {iface: id}}, every mapping
    in catalog order of the interfaces.
    """
    mine = [e for e in current if e.get("service_id") == service_id and e.get("region_id") == region]
    plan = {"duplicates": {}, "delete": {}, "create": {}, "update": {}, "unchanged": {}}
    for iface in INTERFACES:
        url = desired.get(iface)
        if url is None:
            continue
        ep, others = keep_lowest(e for e in mine if e.get("interface") == iface)
        if others and iface not in converge:
            plan["duplicates"][iface] = [e["id"] for e in [ep] + others]
        elif ep is None:
            plan["create"][iface] = {"url": url, "enabled": True if enabled is None else bool(enabled)}
        else:
            if others:
                plan["delete"][iface] = [e["id"] for e in others]
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


def converge_endpoints(calls, svc, plan, desired, region, enabled=True, done=None, rounds=4):
    """
    Write an endpoint ``plan`` (:func:`plan_endpoints`) for service ``svc`` in ``region`` and converge
    with writers that create the same endpoints at the same moment.

    After creating, the endpoints are read again (at most ``rounds`` rounds of writes): where an
    interface has several, the lowest id stays (:func:`keep_lowest`) and the others are deleted. An
    endpoint created under a service that another writer deleted (Keystone deletes a service's
    endpoints with it, and refuses an endpoint for a service that does not exist) is created again
    under the service that stays, the one with the lowest id. A failed write is not repeated unless
    its service is gone.

    ``calls`` gives the Keystone requests: ``services()`` (the services of the type and name),
    ``endpoints(service_id)`` (in the region), ``create(service_id, iface, url, enabled)`` (the new
    endpoint), ``update(endpoint_id, fields)``, ``delete(endpoint_id)``, and ``error``, the exception
    class they raise (raised here too). ``done`` (dict, filled as writes succeed): {iface: {"old",
    "new"}} with the ids that stay. Returns ``(service, removed)``: the service the endpoints are
    under and the ids of the duplicates deleted.
    """
    done = {} if done is None else done
    removed = []
    for round_ in range(1, rounds + 1):
        wrote = lost = False
        try:
            for iface, action, step in plan_steps(plan):
                if action == "delete":
                    for endpoint_id in step:
                        calls.delete(endpoint_id)
                        removed.append(endpoint_id)
                elif action == "update":
                    calls.update(step["id"], step["new"])
                    done[iface] = {"old": dict(step["old"], id=step["id"]), "new": dict(step["new"], id=step["id"])}
                else:
                    new = calls.create(svc["id"], iface, step["url"], step["enabled"])
                    done[iface], wrote = {"old": None, "new": dict(step, id=new["id"])}, True
        except calls.error:
            keep = _surviving_service(calls)
            if keep["id"] == svc["id"]:
                raise
            svc, lost = keep, True
        if not (wrote or lost):
            break
        if round_ == rounds:
            raise calls.error(f"the endpoints in {region} still changed after {rounds} rounds of writes "
                              "(other writers at once?): run again to converge")
        plan = plan_endpoints(calls.endpoints(svc["id"]), desired, svc["id"], region, enabled, INTERFACES)
        if plan["create"] and not lost:     # were the endpoints created deleted with their service?
            keep = _surviving_service(calls)
            if keep["id"] != svc["id"]:
                svc = keep
                plan = plan_endpoints(calls.endpoints(svc["id"]), desired, svc["id"], region, enabled, INTERFACES)
    for iface, endpoint_id in plan["unchanged"].items():
        if done.get(iface, {}).get("new"):
            done[iface]["new"]["id"] = endpoint_id
    return svc, removed


def _surviving_service(calls):
    svc, _others = keep_lowest(calls.services())
    if svc is None:
        raise calls.error("the service is gone from Keystone (deleted while its endpoints were written): "
                          "run again")
    return svc


def duplicates_message(duplicates, service, region):
    """The refusal for duplicate endpoints (str): names every id and how to remove the extra ones."""
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


def plan_steps(plan):
    """The writes of a plan in catalog order: list of ``(iface, "delete", [ids])`` (duplicates),
    ``(iface, "update", {id, old, new})`` and ``(iface, "create", {url, enabled})``."""
    steps = []
    for iface in INTERFACES:
        if plan["delete"].get(iface):
            steps.append((iface, "delete", plan["delete"][iface]))
        if iface in plan["update"]:
            steps.append((iface, "update", plan["update"][iface]))
        elif iface in plan["create"]:
            steps.append((iface, "create", plan["create"][iface]))
    return steps


def plan_summary(plan, created="created", updated="updated in place"):
    """``"public, internal created; admin updated in place"`` for a plan (str)."""
    parts = []
    if plan["create"]:
        parts.append(f"{', '.join(plan['create'])} {created}")
    if plan["update"]:
        parts.append(f"{', '.join(plan['update'])} {updated}")
    return "; ".join(parts)


def plan_absent(current, service_id, region, interfaces):
    """Endpoints to delete: {iface: [ids]} of this service in this region for the given interfaces."""
    out = {}
    for ep in current:
        if (ep.get("service_id") == service_id and ep.get("region_id") == region
                and ep.get("interface") in interfaces):
            out.setdefault(ep["interface"], []).append(ep["id"])
    return {k: sorted(v) for k, v in out.items()}


# --------------------------------------------------------------------------- the service user
def user_changes(current, default_project_id, enabled=True):
    """The fields of user ``current`` (a Keystone user dict) that differ from the declaration:
    ``{field: new value}`` for ``default_project_id`` (None: not managed) and ``enabled`` (bool)."""
    diff = {}
    if default_project_id is not None and current.get("default_project_id") != default_project_id:
        diff["default_project_id"] = default_project_id
    if bool(current.get("enabled", True)) != bool(enabled):
        diff["enabled"] = bool(enabled)
    return diff


def roles_problem(roles):
    """None if ``roles`` is a non-empty list of role names (str), else the reason (str)."""
    if not isinstance(roles, (list, tuple)) or not roles:
        return f"{roles!r} must be a non-empty list of role names (e.g. [admin, service])"
    bad = [r for r in roles if not isinstance(r, str) or not r.strip()]
    if bad or len(set(roles)) != len(roles):
        return f"{roles!r} must hold distinct role names (strings)"
    return None
