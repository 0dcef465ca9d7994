"""
What Pacemaker says about one resource now, from two texts handed in:

- ``crm_mon --output-as=xml``: the scheduler's view (where the resource is active, its role,
  managed or not, failed, blocked; the nodes; cluster ``maintenance-mode``; fail counts and failed
  operations);
- the CIB (``cibadmin --query``): the meta attributes set on the resource, its parents and
  ``rsc_defaults`` (``target-role``, ``is-managed``, ``maintenance``), the location constraints
  that ban it from a node (``crm_resource --ban``), and its probe history on each node.

:func:`resource_status` merges both into one dict; :func:`health` says whether the resource runs
on exactly one node (a cloned one: on every node where it can run) and, if not, why and which
command fixes it. Pure: no Salt dunders, no
subprocess. Loaded by Salt as ``__utils__['pcmk_status.<function>']``.
"""

import importlib.util
import os
import re
import xml.etree.ElementTree as ET

# pcmk_cib by path (Salt's loader gives _utils no package); its ``sibling`` keeps one copy of each.
_boot = importlib.util.spec_from_file_location(
    "_glance_ha_utils.pcmk_cib_loader", os.path.join(os.path.dirname(os.path.abspath(__file__)), "pcmk_cib.py"))
cib = importlib.util.module_from_spec(_boot)
_boot.loader.exec_module(cib)
cib = cib.sibling("pcmk_cib")
values = cib.values
PcmkError = values.PcmkError
INFINITY = 1000000
# OCF exit codes of a probe that found the resource cleanly stopped, running, or running promoted.
PROBE_OK = (0, 7, 8)
# Failures that keep a resource off a node until they are cleaned up, whatever its fail count.
HARD_RCS = {5: "not installed", 6: "not configured", 2: "invalid parameter", 3: "unimplemented feature",
            4: "insufficient privileges"}
META = cib.OPERATIONAL_META | {"migration-threshold"}
RUNNING_ROLES = ("Started", "Promoted", "Unpromoted", "Master", "Slave")


def _score(text):
    if text is None or text == "":
        return 0
    canon = values.canon_score(text)
    if canon in ("INFINITY", "+INFINITY"):
        return INFINITY
    if canon == "-INFINITY":
        return -INFINITY
    try:
        return max(-INFINITY, min(INFINITY, int(canon)))
    except (TypeError, ValueError):
        return 0


def _xml(text, what):
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise PcmkError(f"{what} is not valid XML: {exc}") from None


def _truth(text, default=False):
    word = values.bool_word(text) if text is not None else None
    return default if word is None else word


def _is(elem_id, name):
    """Whether crm_mon's resource id is ``name`` or one of its clone instances (``name:0``)."""
    return elem_id == name or (elem_id or "").split(":", 1)[0] == name


def _meta(root, name):
    """{meta name: (value, where)} of ``target-role``/``is-managed``/``maintenance``/
    ``migration-threshold`` that apply to resource ``name``: set on it, on a parent (group, clone),
    or in rsc_defaults; the nearest wins."""
    found = {}
    elem = cib.find_by_id(root, name)
    parent_of = cib.parents(root)
    chain = []
    while elem is not None and elem.tag in cib.RESOURCE_TAGS:
        chain.append(elem)
        elem = parent_of.get(elem)
    for res in chain:
        for key, value in cib.nv_read(res, "meta_attributes").items():
            if key in META:
                found.setdefault(key, (value, res.get("id")))
    defaults = cib.section(root, "rsc_defaults")
    if defaults is not None:
        for key, value in cib.nv_read(defaults, "meta_attributes").items():
            if key in META:
                found.setdefault(key, (value, "rsc_defaults"))
    return found


def _clone_of(root, name):
    """The id of the clone that holds resource ``name`` (directly or through a group), or None."""
    parent_of = cib.parents(root)
    elem = parent_of.get(cib.find_by_id(root, name))
    while elem is not None and elem.tag in cib.RESOURCE_TAGS:
        if elem.tag == "clone":
            return elem.get("id")
        elem = parent_of.get(elem)
    return None


def _bans(root, names):
    """{node: location constraint id} of the -INFINITY location constraints of any of ``names`` (the
    resource and its clone) on one node."""
    bans = {}
    cons = cib.section(root, "constraints")
    for con in cons.findall("rsc_location") if cons is not None else []:
        if con.get("rsc") in names and con.get("node") and _score(con.get("score")) <= -INFINITY:
            bans.setdefault(con.get("node"), con.get("id"))
    return bans


def _history(root, name):
    """({node: rc of the last probe still recorded}, [nodes with any history of ``name``]) from the
    CIB status section."""
    probes, known = {}, []
    status = root.find("status")
    for state in status.findall("node_state") if status is not None else []:
        node = state.get("uname") or state.get("id")
        for lrm_rsc in state.iterfind("lrm/lrm_resources/lrm_resource"):
            if not _is(lrm_rsc.get("id"), name):
                continue
            known.append(node)
            for op in lrm_rsc.findall("lrm_rsc_op"):
                if op.get("operation") == "monitor" and str(op.get("interval", "0")) == "0":
                    try:
                        rc = int(op.get("rc-code", ""))
                    except ValueError:
                        continue
                    # last_failure_0 and last_0 may both hold the probe: a failure wins
                    if node not in probes or probes[node] in PROBE_OK:
                        probes[node] = rc
    return probes, sorted(set(known))


def resource_status(mon_xml, cib_xml, name):
    """
    Everything Pacemaker says about resource ``name``, from ``crm_mon --output-as=xml`` text
    ``mon_xml`` and ``cibadmin --query`` text ``cib_xml``:

    ``exists`` (bool), ``role`` (crm_mon's, e.g. Started, Stopped), ``active_on`` (sorted node names
    where it is active, failed or not), ``started_on`` (those where it runs and has not failed),
    ``managed`` (bool, crm_mon's: false under maintenance too), ``blocked``, ``failed`` (bools),
    ``target_role`` (str or None), ``is_managed`` and ``maintenance`` (bools from its meta
    attributes), ``meta_from`` ({meta name: id of the resource, parent or 'rsc_defaults' that sets
    it}), ``cluster_maintenance`` (cluster property ``maintenance-mode``), ``dc`` (str or None),
    ``quorum`` (bool: whether the partition of the node that ran crm_mon has quorum),
    ``nodes`` ({node: {'online', 'standby', 'maintenance'}}), ``fail_counts`` ({node: int},
    INFINITY as 1000000), ``migration_threshold`` (int), ``failures`` ({node: [{'op', 'rc',
    'status', 'reason'}]}), ``banned_on`` ({node: constraint id}), ``probes`` ({node: OCF rc of the
    last recorded probe}), ``known_on`` (nodes with any operation history), ``excluded`` ({node:
    why the resource cannot run there now}), ``clone`` (id of the clone holding it, or None),
    ``health`` (:func:`health`).
    """
    mon = _xml(mon_xml, "crm_mon output")
    root = cib.parse(cib_xml)
    summary = mon.find("summary")
    options = summary.find("cluster_options") if summary is not None else None
    dc = summary.find("current_dc") if summary is not None else None
    nodes = {n.get("name"): {"online": _truth(n.get("online")), "standby": _truth(n.get("standby")),
                             "maintenance": _truth(n.get("maintenance"))}
             for n in mon.iterfind("nodes/node")}
    mine = [r for r in mon.iter("resource") if _is(r.get("id"), name)]
    active, started, roles = set(), set(), []
    for res in mine:
        roles.append(res.get("role"))
        on = [n.get("name") for n in res.findall("node")]
        if _truth(res.get("active")):
            active.update(on)
            if not _truth(res.get("failed")) and res.get("role") in RUNNING_ROLES:
                started.update(on)
    meta = _meta(root, name)
    fail_counts, threshold = {}, None
    for node in mon.iterfind("node_history/node"):
        for hist in node.findall("resource_history"):
            if _is(hist.get("id"), name):
                count = _score(hist.get("fail-count"))
                if count:
                    fail_counts[node.get("name")] = max(count, fail_counts.get(node.get("name"), 0))
                if hist.get("migration-threshold"):
                    threshold = _score(hist.get("migration-threshold"))
    failures = {}
    for fail in mon.iterfind("failures/failure"):
        if re.fullmatch(rf"{re.escape(name)}(:\d+)?_[a-z_]+_\d+", fail.get("op_key") or ""):
            rc = int(fail.get("exitcode")) if (fail.get("exitcode") or "").lstrip("-").isdigit() else None
            failures.setdefault(fail.get("node"), []).append(
                {"op": fail.get("op_key"), "rc": rc, "status": fail.get("exitstatus"),
                 "reason": fail.get("exitreason") or ""})
    if threshold is None:
        threshold = _score(meta["migration-threshold"][0]) if "migration-threshold" in meta else INFINITY
    probes, known = _history(root, name)
    clone = _clone_of(root, name)
    status = {
        "exists": cib.find_by_id(root, name) is not None or bool(mine),
        "role": next((r for r in roles if r in RUNNING_ROLES), roles[0] if roles else None),
        "active_on": sorted(active), "started_on": sorted(started),
        "managed": all(_truth(r.get("managed"), True) for r in mine),
        "blocked": any(_truth(r.get("blocked")) for r in mine),
        "failed": any(_truth(r.get("failed")) for r in mine),
        "target_role": meta["target-role"][0] if "target-role" in meta else None,
        "is_managed": _truth(meta["is-managed"][0], True) if "is-managed" in meta else True,
        "maintenance": _truth(meta["maintenance"][0]) if "maintenance" in meta else False,
        "meta_from": {key: where for key, (_value, where) in meta.items()},
        "cluster_maintenance": _truth(options.get("maintenance-mode")) if options is not None else False,
        "dc": dc.get("name") if dc is not None and _truth(dc.get("present")) else None,
        "quorum": _truth(dc.get("with_quorum"), True) if dc is not None and _truth(dc.get("present")) else True,
        "nodes": nodes, "fail_counts": fail_counts, "migration_threshold": threshold,
        "failures": failures, "banned_on": _bans(root, {name, clone} - {None}), "probes": probes,
        "known_on": known, "clone": clone,
    }
    status["excluded"] = _excluded(status)
    status["health"] = health(status, name)
    return status


def _excluded(status):
    """{node: why ``status``'s resource cannot run there now}, for every node crm_mon lists."""
    out = {}
    for node, info in sorted(status["nodes"].items()):
        hard = [f for f in status["failures"].get(node, []) if f["rc"] in HARD_RCS]
        if not info["online"]:
            out[node] = "offline"
        elif info["standby"]:
            out[node] = "in standby"
        elif node in status["banned_on"]:
            out[node] = f"banned (location constraint {status['banned_on'][node]})"
        elif hard:
            out[node] = f"{hard[0]['op']} failed: {hard[0]['status'] or HARD_RCS[hard[0]['rc']]}"
        elif status["probes"].get(node) not in (None, *PROBE_OK):
            rc = status["probes"][node]
            out[node] = f"its probe failed (rc {rc}: {HARD_RCS.get(rc, 'error')})"
        elif status["fail_counts"].get(node, 0) >= status["migration_threshold"]:
            out[node] = (f"fail count {status['fail_counts'][node]} reached migration-threshold"
                         f" {status['migration_threshold']}")
    return out


def needs_probe(status, node):
    """Whether ``node`` has never probed the resource, or its last recorded probe there failed
    (``crm_resource --refresh --node`` makes the cluster probe it again)."""
    if node not in status["known_on"]:
        return True
    return status["probes"].get(node) not in (None, *PROBE_OK)


def _unset(name, key, where):
    """The command that removes meta attribute ``key`` where it is set (resource, parent, defaults)."""
    if where == "rsc_defaults":
        return f"cibadmin --delete --xpath \"//rsc_defaults//nvpair[@name='{key}']\""
    return f"crm_resource --resource {where or name} --meta --delete-parameter {key}"


def health(status, name):
    """
    Whether resource ``name`` (its :func:`resource_status` ``status``) runs on exactly one node, or,
    inside a clone, on every online node where it can run (and at least one):
    ``{'state': str, 'ok': bool, 'final': bool, 'comment': str, 'fix': str or None}``.

    ``state`` is one of ``started`` (ok), ``cluster-maintenance`` (ok: the cluster manages nothing,
    nothing was checked), ``no-quorum`` (ok: this node's partition cannot tell, nothing was checked), ``no-status``
    (ok: no node online, as in a CIB file without status: nothing was checked), ``absent``, ``target-role-stopped``, ``unmanaged``, ``maintenance``,
    ``failed-everywhere``, ``multiple``, ``blocked``, ``not-started``, ``partial`` (a clone started
    on some nodes but not yet on others where it can run). ``final`` is False for what
    the cluster may still resolve by itself (a start in progress, a failover, a failure-timeout);
    an administrator's setting is final. ``fix`` is the command that resolves it.
    """
    def out(state, ok, final, comment, fix=None):
        return {"state": state, "ok": ok, "final": final, "comment": comment, "fix": fix}

    started = status["started_on"]
    if status["cluster_maintenance"]:
        return out("cluster-maintenance", True, True,
                   "the cluster property maintenance-mode is true: Pacemaker manages nothing (a"
                   f" maintenance window), so where {name} runs was not checked")
    if not status["quorum"]:
        return out("no-quorum", True, True,
                   f"this node's partition has no quorum: where {name} runs is the quorate partition's"
                   " to decide, so it was not checked here")
    if not status["exists"]:
        return out("absent", False, False, f"resource {name} is not in the CIB",
                   "salt-call state.apply glance_ha.cluster on the writer (the DC)")
    if not any(info["online"] for info in status["nodes"].values()):
        return out("no-status", True, True,
                   f"no node of the CIB is online (a CIB file without status, or a cluster that is not"
                   f" running): where {name} runs was not checked")
    if (status["target_role"] or "").lower() == "stopped":
        return out("target-role-stopped", False, True,
                   f"{name} has target-role=Stopped (set on {status['meta_from']['target-role']}, by hand"
                   " or by an interrupted crm_resource --restart): the cluster keeps it stopped",
                   _unset(name, "target-role", status["meta_from"]["target-role"]))
    if status["maintenance"]:
        return out("maintenance", False, True,
                   f"{name} is in maintenance (maintenance=true on {status['meta_from']['maintenance']}):"
                   " the cluster neither starts, stops nor monitors it",
                   _unset(name, "maintenance", status["meta_from"]["maintenance"]))
    if not status["is_managed"]:
        return out("unmanaged", False, True,
                   f"{name} is unmanaged (is-managed=false on {status['meta_from']['is-managed']}): the"
                   " cluster neither starts, stops nor recovers it",
                   _unset(name, "is-managed", status["meta_from"]["is-managed"]))
    if not status["managed"]:
        nodes = sorted(n for n, info in status["nodes"].items() if info["maintenance"])
        fix = "; ".join(f"crm_attribute --node {n} --name maintenance --delete" for n in nodes) or None
        where = f" (node(s) in maintenance: {', '.join(nodes)})" if nodes else ""
        return out("unmanaged", False, True, f"{name} is not managed by the cluster{where}", fix)
    if status["blocked"]:
        return out("blocked", False, True,
                   f"{name} is blocked (a stop failed and the node was not fenced): the cluster will not"
                   " act on it", f"crm_resource --cleanup --resource {name}")
    online = [n for n, info in status["nodes"].items() if info["online"]]
    excluded = status["excluded"]
    if status.get("clone") and started:
        missing = sorted(n for n in online if n not in excluded and n not in started)
        where = f"{name} (clone {status['clone']}) is started on {', '.join(started)}"
        if missing:
            return out("partial", False, False, f"{where} but not on {', '.join(missing)}",
                       f"crm_resource --cleanup --resource {name}")
        elsewhere = "; ".join(f"{n}: {excluded[n]}" for n in sorted(excluded) if n not in started)
        return out("started", True, True, where + (f" (cannot run on {elsewhere})" if elsewhere else ""))
    if len(started) == 1:
        return out("started", True, True, f"{name} is started on {started[0]}")
    if len(started) > 1 or len(status["active_on"]) > 1:
        where = ", ".join(status["active_on"])
        return out("multiple", False, False, f"{name} is active on more than one node ({where})",
                   f"crm_resource --cleanup --resource {name}")
    if online and all(n in excluded for n in online):
        why = "; ".join(f"{n}: {excluded[n]}" for n in sorted(excluded))
        fixes = []
        if any(n in status["banned_on"] for n in online):
            fixes.append(f"crm_resource --clear --resource {name}")
        if any(n not in status["banned_on"] for n in online):
            fixes.append(f"crm_resource --cleanup --resource {name}")
        return out("failed-everywhere", False, False,
                   f"{name} cannot run on any node ({why}); fix the cause first (see the failed operations"
                   " in crm_mon --one-shot --include=failures)", "; ".join(fixes))
    failed = "; ".join(f"{n}: {f[0]['op']} {f[0]['status']}" for n, f in sorted(status["failures"].items()))
    return out("not-started", False, False,
               f"{name} is not started on any node (role {status['role'] or 'unknown'}"
               + (f"; failed operations: {failed}" if failed else "") + ")",
               f"crm_resource --cleanup --resource {name}")
