"""
Reconcile Pacemaker objects: primitives, groups, colocation and order constraints, cluster
properties / rsc_defaults / op_defaults, absent objects, and restarts where a resource is active.

One read, one write per run
---------------------------
Salt runs states one at a time, but a Pacemaker change must land in one piece (a primitive must
never start before its constraints exist). So:

* the first ``crm`` state of a run reads the CIB once (``cibadmin --query``); all ``crm`` states of
  the run share that read (it lives in the run's ``__context__``);
* each ``*_present``/``absent`` state compares its object with the CIB by normalised content,
  validates it, and *stages* the correction in the run's transaction; its return shows the exact
  per-object diff;
* a ``crm.commit`` state, which ``require``-s all of them, writes everything staged as ONE
  ``crm_verify``-validated ``cibadmin --patch`` that Pacemaker refuses if someone else changed the
  configuration after the read. If the commit fails, it says so, and nothing at all was written.
  If any staged state failed, the commit writes nothing (all or nothing).

Without a ``crm.commit`` state later in the run (e.g. ``state.single``), a present state writes its
own change at once, still as one validated patch.

With ``test=True`` the present states return ``result: None`` and the exact diff, the commit
validates the whole transaction, and nothing is written. A second run reports no changes and does
not write (the CIB ``epoch`` stays as it is).

Drift (a changed param, op or meta attribute) is corrected in place, keeping every id; objects that
are not declared are never touched. Meta attributes that administrators set at run time
(``target-role``, ``is-managed``, ``maintenance``) are left alone unless declared.

One writer: on a cluster only the DC (or the minion named in ``writer``) writes; on the other nodes
the states succeed, say that they are not the writer, and describe what differs.

Secrets: parameters whose name contains ``password`` and those listed in ``secret_params`` are masked
in returns, comments, logs and error messages.

.. code-block:: yaml

    p_vip:
      crm.primitive_present:
        - agent: ocf:heartbeat:IPaddr2
        - params: {ip: 198.51.100.10, cidr_netmask: 24}
        - ops:
          - {name: monitor, interval: 10s, timeout: 20s}

    p_web:
      crm.primitive_present:
        - agent: ocf:heartbeat:Dummy
        - ops: {monitor: {interval: 30s, timeout: 30s}}

    col_web_with_vip:
      crm.colocation_present:
        - rsc: p_web
        - with_rsc: p_vip

    ord_vip_before_web:
      crm.order_present:
        - first: p_vip
        - then: p_web

    crm-commit:
      crm.commit:
        - require:
          - crm: p_vip
          - crm: p_web
          - crm: col_web_with_vip
          - crm: ord_vip_before_web
"""

import json
import logging

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "crm"


def __virtual__():
    if "crm.stage" in __salt__:
        return __virtualname__
    return False, "crm states: the crm execution module is not loaded (are the Pacemaker CLI tools installed?)"


def _summary(changes, prefix=""):
    """One line per changed leaf: ``params.ip: '1' -> '2'`` (the values are already masked)."""
    lines = []
    if isinstance(changes, dict) and set(changes) == {"old", "new"}:
        old, new = changes["old"], changes["new"]
        if isinstance(old, dict) or isinstance(new, dict):
            shown = {k: v for k, v in (new if old is None else old).items() if k not in ("type", "id")}
            what = "new" if old is None else "removed" if new is None else "changed"
            return [f"{prefix + ' ' if prefix else ''}{what}: {json.dumps(shown, sort_keys=True)}"]
        return [f"{prefix}: {old!r} -> {new!r}"]
    if isinstance(changes, dict):
        for key, value in changes.items():
            lines += _summary(value, f"{prefix}.{key}" if prefix else str(key))
    return lines


def _pending_commit():
    """The id of a ``crm.commit`` state of this run that has not run yet, else None."""
    done = set()
    for tag in (__running__ or {}):
        parts = str(tag).split("_|-")
        if len(parts) == 4 and parts[0] == "crm" and parts[3] == "commit":
            done.add(parts[1])
    for chunk in __lowstate__ or ():
        if chunk.get("state") == "crm" and chunk.get("fun") == "commit" and chunk.get("__id__") not in done:
            return chunk.get("__id__")
    return None


def _agent_installed_by_run(agent):
    """In test mode: does an earlier state of this run (e.g. file.managed) create the agent file?"""
    parts = str(agent).split(":")
    if len(parts) != 3:
        return False
    suffix = f"/resource.d/{parts[1]}/{parts[2]}"
    for tag, result in (__running__ or {}).items():
        fields = str(tag).split("_|-")
        if (len(fields) == 4 and fields[2].endswith(suffix) and result.get("result") is None
                and result.get("changes")):
            return True
    return False


def _present(objtype, name, writer, secret_params=None, **spec):
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    test = bool(__opts__.get("test"))
    agent_pending = bool(test and objtype == "primitive" and _agent_installed_by_run(spec.get("agent")))
    try:
        staged = __salt__["crm.stage"](objtype, name, secret_params=secret_params,
                                       agent_pending=agent_pending, **spec)
    except CommandExecutionError as exc:
        __salt__["crm.mark_failed"](name)
        ret["result"] = False
        ret["comment"] = f"{exc}. Nothing written: this run's CIB transaction is abandoned."
        return ret
    changes = staged["changes"]
    if not changes:
        ret["comment"] = staged["comment"]
        return ret
    summary = "; ".join(_summary(changes))
    status = __salt__["crm.writer_status"](writer)
    if not status["writer"]:
        ret["comment"] = (f"Not the writer ({status['reason']}): nothing written from this node."
                          f" {objtype} {name} differs from the declaration: {summary}")
        return ret
    verb = "removed" if objtype == "absent" else "created" if changes.get("old", 0) is None else "updated"
    if test:
        ret["result"] = None
        ret["changes"] = changes
        note = f" {staged['note']}" if staged.get("note") else ""
        ret["comment"] = f"{objtype} {name} would be {verb}: {summary}.{note}"
        return ret
    commit_id = _pending_commit()
    if commit_id:
        ret["changes"] = changes
        ret["comment"] = (f"{objtype} {name} to be {verb} ({summary}); staged: crm.commit {commit_id!r}"
                          " writes it together with the rest of this run's changes in one validated"
                          " transaction, and reports whether that write succeeded.")
        return ret
    res = __salt__["crm.commit"](writer=writer)
    ret["result"] = res["result"]
    if res["result"]:
        ret["changes"] = changes
        ret["comment"] = f"{objtype} {name} {verb}: {summary}. {res['comment']}"
    else:
        ret["comment"] = f"{objtype} {name} not {verb}: {res['comment']}"
    return ret


def primitive_present(name, agent, params=None, meta=None, ops=None, utilization=None, description=None,
                      secret_params=None, writer=""):
    """
    A primitive resource exists exactly as declared (corrected in place if it drifted).

    name
        The resource id.
    agent
        ``ocf:<provider>:<type>`` (or ``<class>:<type>`` for stonith/systemd/lsb). Must be installed
        on the writer: parameters are checked against its meta-data.
    params
        Instance attributes. Exactly these: parameters added by hand are removed.
    meta
        Meta attributes. Exactly these, except ``target-role``/``is-managed``/``maintenance``, which
        are left alone unless declared.
    ops
        List of ``{name, interval, timeout, ...}`` (or a mapping ``{op name: {interval: ..}}``); each
        op needs an ``interval`` for monitor (others default to 0s). Exactly these ops.
    utilization
        Utilization attributes (exactly these).
    secret_params
        Extra parameter names to mask in output (names containing ``password`` always are).
    writer
        Minion id that writes the CIB; '' means the Pacemaker DC.

    .. code-block:: yaml

        p_glance-api:
          crm.primitive_present:
            - agent: ocf:openstack:glance-api
            - params: {config: /etc/glance/glance-api.conf, monitor_level: http}
            - meta: {migration-threshold: 3, failure-timeout: 120s}
            - ops:
              - {name: monitor, interval: 30s, timeout: 30s}
              - {name: start, timeout: 60s}
              - {name: stop, timeout: 60s}
    """
    return _present("primitive", name, writer, secret_params, agent=agent, params=params, meta=meta,
                    ops=ops, utilization=utilization, description=description)


def group_present(name, members, meta=None, description=None, writer=""):
    """
    A group of existing primitives, in this order (members added/removed/reordered in place).

    .. code-block:: yaml

        g_web:
          crm.group_present:
            - members: [p_vip, p_web]
    """
    return _present("group", name, writer, members=members, meta=meta, description=description)


def colocation_present(name, rsc=None, with_rsc=None, resources=None, score="INFINITY", rsc_role=None,
                       with_rsc_role=None, node_attribute=None, influence=None, writer=""):
    """
    A colocation constraint: ``rsc`` is placed where ``with_rsc`` runs (``resources: [rsc, with_rsc]``
    is the same). ``score`` defaults to INFINITY.

    .. code-block:: yaml

        col_web_with_vip:
          crm.colocation_present:
            - rsc: p_web
            - with_rsc: p_vip
    """
    return _present("colocation", name, writer, rsc=rsc, with_rsc=with_rsc, resources=resources,
                    score=score, rsc_role=rsc_role, with_rsc_role=with_rsc_role,
                    node_attribute=node_attribute, influence=influence)


def order_present(name, first=None, then=None, resources=None, kind="Mandatory", symmetrical=None,
                  first_action=None, then_action=None, require_all=None, writer=""):
    """
    An order constraint: ``first`` starts before ``then`` (``resources: [first, then]`` is the same).

    .. code-block:: yaml

        ord_vip_before_web:
          crm.order_present:
            - first: p_vip
            - then: p_web
            - kind: Mandatory
    """
    return _present("order", name, writer, first=first, then=then, resources=resources, kind=kind,
                    symmetrical=symmetrical, first_action=first_action, then_action=then_action,
                    require_all=require_all)


def property_present(name, properties=None, value=None, type="cluster", set_id=None, writer=""):
    """
    Cluster properties (``type: cluster``), resource defaults (``rsc_defaults``) or operation
    defaults (``op_defaults``) have these values. Only the declared names are managed; the others
    (including those Pacemaker writes itself, like ``dc-version``) are left alone. A name that
    already exists in another set of the section is updated where it is.

    With ``value`` instead of ``properties``, the state's name is the property name.

    .. code-block:: yaml

        cluster-options:
          crm.property_present:
            - properties: {no-quorum-policy: stop}

        resource-stickiness:
          crm.property_present:
            - type: rsc_defaults
            - value: 100
    """
    if properties is None and value is not None:
        properties = {name: value}
    return _present("property", name, writer, properties=properties, type=type, set_id=set_id)


def absent(name, writer=""):
    """
    The resource or constraint with id ``name`` is not in the configuration. Removing a resource
    that constraints still refer to fails unless those constraints are declared absent as well.

    .. code-block:: yaml

        p_old:
          crm.absent
    """
    return _present("absent", name, writer)


def commit(name, writer=""):
    """
    Write everything the ``crm`` states of this run staged, as one validated transaction.

    Put it after (``require``) all of the run's ``crm`` present/absent states. It writes nothing if
    any of them failed, if the staged CIB does not pass ``crm_verify``, if this node is not the
    writer, under ``test=True`` (it validates and says what it would write), or if the CIB changed
    since the run read it (it then fails and says so).

    .. code-block:: yaml

        crm-commit:
          crm.commit:
            - require:
              - crm: p_vip
    """
    res = __salt__["crm.commit"](test=bool(__opts__.get("test")), writer=writer)
    return {"name": name, "result": res["result"], "changes": res["changes"], "comment": res["comment"]}


def resource_restarted(name, timeout=120, wait=True):
    """
    Restart resource ``name`` if, and only if, it is active on this node, then wait (at most
    ``timeout`` seconds) for the cluster to settle. Meant to be ``onchanges`` of the resource's
    configuration file: each node restarts only its own active copy, so a config change rolled out
    to every node restarts the service once, where it runs.

    Uses ``crm_resource --restart``: the cluster stops and starts the resource in place (its
    constraints and placement unchanged), rather than a ban/clear cycle, which would move it to
    another node and could leave a ban behind if interrupted.

    .. code-block:: yaml

        restart-glance-api:
          crm.resource_restarted:
            - name: p_glance-api
            - onchanges:
              - file: /etc/glance/glance-api.conf
    """
    ret = {"name": name, "result": True, "changes": {}, "comment": ""}
    try:
        me = __salt__["crm.node_name"]()
        if me is None:
            ret["comment"] = f"No cluster (CIB_file is set): {name} runs nowhere, nothing to restart"
            return ret
        if __salt__["crm.last_commit"]() and not __opts__.get("test"):
            __salt__["crm.wait"](timeout)
        nodes = __salt__["crm.locate"](name)
        if me not in nodes:
            where = ", ".join(nodes) if nodes else "no node"
            ret["comment"] = f"{name} is not active on this node ({me}; active on: {where}): not restarted"
            return ret
        if __opts__.get("test"):
            ret["result"] = None
            ret["changes"] = {"restarted": {"old": None, "new": me}}
            ret["comment"] = f"{name} is active on this node ({me}) and would be restarted"
            return ret
        __salt__["crm.restart"](name, node=me if len(nodes) > 1 else None, timeout=timeout)
        if wait:
            __salt__["crm.wait"](timeout)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"{name}: {__salt__['crm.mask'](str(exc))}"
        return ret
    ret["changes"] = {"restarted": {"old": None, "new": me}}
    ret["comment"] = f"{name} restarted on {me}" + (" and the cluster settled" if wait else "")
    return ret
