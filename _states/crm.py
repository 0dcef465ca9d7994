"""
Reconcile Pacemaker objects: primitives, groups, clones, colocation and order constraints, cluster
properties / rsc_defaults / op_defaults, absent objects, and restarts where a resource is active.

One state, one transaction
--------------------------
A Pacemaker change must land in one piece (a primitive must never start before its constraints
exist), so the unit of work is one state call: :py:func:`configured` takes the whole list of
objects, reads the CIB once, compares each object with it by normalised content, corrects drift in
place (ids kept), validates the result with ``crm_verify`` and writes it as ONE ``cibadmin --patch``
that Pacemaker refuses if someone else changed the configuration after the read. Its ``changes``
hold the exact diff of each object, by id. No state looks at other states.

The per-object states (``primitive_present``, ``group_present``, ``clone_present``, ``colocation_present``,
``order_present``, ``property_present``, ``absent``) are each their own one-object transaction.

With ``test=True``: ``result: None``, the exact diff, ``crm_verify`` of the staged CIB, nothing
written. A second run reports no changes and does not write (the CIB ``epoch`` stays as it is).
Objects that are not declared are never touched; ``target-role``, ``is-managed`` and
``maintenance`` meta attributes are left alone unless declared.

One writer (``crm.writer_status``): only the DC (or the minion named in ``writer``) writes; on the
other nodes the states succeed, say that they are not the writer, and describe what differs.

Secrets (THE rule of ``_utils/glance_ha_secrets``, plus ``secret_params``) are masked in returns,
comments, logs and error messages.

.. code-block:: yaml

    web-cluster:
      crm.configured:
        - objects:
          - primitive: p_vip
            agent: ocf:heartbeat:IPaddr2
            params: {ip: 198.51.100.10, cidr_netmask: 24}
            ops: [{name: monitor, interval: 10s, timeout: 20s}]
          - primitive: p_web
            agent: ocf:heartbeat:Dummy
            ops: {monitor: {interval: 30s, timeout: 30s}}
          - colocation: col_web_with_vip
            rsc: p_web
            with_rsc: p_vip
          - order: ord_vip_before_web
            first: p_vip
            then: p_web
"""

import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "crm"


def __virtual__():
    if "crm.apply" in __salt__:
        return __virtualname__
    return False, "crm states: the crm execution module is not loaded (are the Pacemaker CLI tools installed?)"


def configured(name, objects, writer="", secret_params=None, agent_sources=None, owner=None):
    """
    The objects of ``objects`` are in the CIB exactly as declared, reconciled as ONE transaction.

    objects
        List of ``{<type>: <id>, <argument>: ...}``; type one of ``primitive``, ``group``, ``clone``,
        ``colocation``, ``order``, ``property``, ``absent``; the arguments are those of the
        matching per-object state below (``property``'s id is only a label; ``absent`` has none).
    writer
        Minion id that writes the CIB; '' means the Pacemaker DC.
    secret_params
        More parameter names to mask in output (THE secrets rule always applies).
    agent_sources
        ``{agent: source}`` of agents that this run installs (e.g. by a ``file.managed`` this
        state requires). Under ``test=True`` such an agent may be missing: its parameter check is
        deferred and the comment says so. A real run always checks against the installed agent.
    owner
        Id of the CIB ``<tag>`` marking the objects this state owns: the declared resources and
        constraints are its members; members no longer declared (a renamed resource and its
        constraints) are removed in the same transaction. Objects outside the tag are never touched.

    ``changes``: ``{object id: diff}`` (``{'old': None, 'new': {...}}`` for a new object).
    """
    res = __salt__["crm.apply"](objects, test=bool(__opts__.get("test")), writer=writer,
                                secret_params=secret_params, agent_sources=agent_sources, owner=owner)
    return __utils__["glance_ha_states.ret"](name, res["result"], res["changes"], res["comment"])


def _one(objtype, name, writer, secret_params=None, **spec):
    """One object as its own transaction; ``changes`` is that object's diff."""
    res = __salt__["crm.apply"]([dict(spec, **{objtype: name})], test=bool(__opts__.get("test")),
                                writer=writer, secret_params=secret_params)
    changes = next(iter(res["changes"].values()), {})
    return __utils__["glance_ha_states.ret"](name, res["result"], changes, res["comment"])


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
        More parameter names to mask in output.
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
    return _one("primitive", name, writer, secret_params, agent=agent, params=params, meta=meta, ops=ops,
                utilization=utilization, description=description)


def group_present(name, members, meta=None, description=None, writer=""):
    """
    A group of existing primitives, in this order (members added/removed/reordered in place).

    .. code-block:: yaml

        g_web:
          crm.group_present:
            - members: [p_vip, p_web]
    """
    return _one("group", name, writer, members=members, meta=meta, description=description)


def clone_present(name, rsc, meta=None, description=None, writer=""):
    """
    An anonymous clone of an existing primitive or group (moved into the clone, ids kept).

    .. code-block:: yaml

        cl_web:
          crm.clone_present:
            - rsc: p_web
            - meta: {interleave: true}
    """
    return _one("clone", name, writer, rsc=rsc, meta=meta, description=description)


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
    return _one("colocation", name, writer, rsc=rsc, with_rsc=with_rsc, resources=resources, score=score,
                rsc_role=rsc_role, with_rsc_role=with_rsc_role, node_attribute=node_attribute,
                influence=influence)


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
    return _one("order", name, writer, first=first, then=then, resources=resources, kind=kind,
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
    return _one("property", name, writer, properties=properties, type=type, set_id=set_id)


def absent(name, writer=""):
    """
    The resource or constraint with id ``name`` is not in the configuration. Removing a resource
    that constraints still refer to fails unless those constraints go in the same transaction
    (list them all in one :py:func:`configured`).

    .. code-block:: yaml

        p_old:
          crm.absent
    """
    return _one("absent", name, writer)


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
    test = bool(__opts__.get("test"))
    ret = __utils__["glance_ha_states.ret"](name)
    try:
        me = __salt__["crm.node_name"]()
        if me is None:
            ret["comment"] = f"No cluster (CIB_file is set): {name} runs nowhere, nothing to restart"
            return ret
        if __salt__["crm.last_commit"]() and not test:
            __salt__["crm.wait"](timeout)  # this run wrote the CIB: let the cluster act on it first
        nodes = __salt__["crm.locate"](name)
        if me not in nodes:
            where = ", ".join(nodes) if nodes else "no node"
            ret["comment"] = f"{name} is not active on this node ({me}; active on: {where}): not restarted"
            return ret
        changes = {"restarted": {"old": None, "new": me}}
        if not test:
            __salt__["crm.restart"](name, node=me if len(nodes) > 1 else None, timeout=timeout)
            if wait:
                __salt__["crm.wait"](timeout)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"{name}: {exc}"
        return ret
    return __utils__["glance_ha_states.pending"](
        ret, test, changes, f"{name} is active on this node ({me}) and would be restarted",
        f"{name} restarted on {me}" + (" and the cluster settled" if wait else ""))


def resource_probed(name, timeout=30, interval=1):
    """
    Resource ``name`` has been probed on this node, and the probe did not fail. If it never ran
    here, or failed (e.g. rc 5 "not installed": the node joined, or the resource was created, before
    this node had the agent), the resource is refreshed on this node only (``crm_resource --refresh
    --resource <name> --node <this node>``) and the new probe awaited (at most ``timeout`` s), so
    the node is a failover target without a manual refresh. Require the agent's file.

    Succeeds without acting when the resource is not in the CIB yet, when Pacemaker does not answer
    on this node (it probes everything when it starts, the agent then in place), or without a
    cluster (``CIB_file``).

    .. code-block:: yaml

        glance-api-probed:
          crm.resource_probed:
            - name: p_glance-api
            - require:
              - file: /usr/lib/ocf/resource.d/openstack/glance-api
    """
    test = bool(__opts__.get("test"))
    ret = __utils__["glance_ha_states.ret"](name)
    needs_probe = __utils__["pcmk_status.needs_probe"]
    try:
        me = __salt__["crm.node_name"]()
        if me is None:
            ret["comment"] = f"No cluster (CIB_file is set): {name} is probed nowhere"
            return ret
        status = __salt__["crm.resource_status"](name)
    except CommandExecutionError as exc:
        # Pacemaker is not running here (yet): when it starts it probes with the agent in place.
        ret["comment"] = f"The cluster does not answer on this node ({exc}): its probes run once it does"
        return ret
    try:
        if not status["exists"]:
            ret["comment"] = f"{name} is not in the CIB yet: the cluster probes it on every node when it is created"
            return ret
        if not needs_probe(status, me):
            ret["comment"] = f"{name} was probed on this node ({me})"
            return ret
        before = (f"probe failed (rc {status['probes'][me]})" if me in status["probes"]
                  else "never probed")
        changes = {"refreshed": {"old": before, "new": me}}
        if test:
            return __utils__["glance_ha_states.pending"](
                ret, True, changes, f"{name} {before} on this node ({me}): would refresh it here", "")
        __salt__["crm.refresh"](name, node=me)
        deadline = time.monotonic() + float(timeout)
        status = __salt__["crm.resource_status"](name)
        while needs_probe(status, me) and time.monotonic() < deadline:
            time.sleep(float(interval))
            status = __salt__["crm.resource_status"](name)
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"{name}: {exc}"
        return ret
    ret["changes"] = changes
    if needs_probe(status, me):
        ret["result"] = False
        probe = status["probes"].get(me)
        ret["comment"] = (f"{name} {before} on this node ({me}); refreshed, but its probe "
                          + (f"failed again (rc {probe})" if probe is not None else f"did not run within {timeout} s"))
        return ret
    ret["comment"] = f"{name} {before} on this node ({me}): refreshed here, the new probe passed"
    return ret


def resource_running(name, timeout=120, interval=2):
    """
    Resource ``name`` is started on exactly one node (inside a clone: on every online node where it
    can run, at least one): a check that changes nothing, meant to be the
    last state of a highstate. It lets the cluster settle first (``crm_resource --wait``), then asks
    again every ``interval`` seconds while the cluster may still resolve it by itself (a start or a
    failover in progress), at most ``timeout`` seconds in all.

    Fails naming the reason and the command that fixes it (nothing is fixed here: each of these is
    an administrator's decision or needs one): ``target-role=Stopped`` (set by hand, or left by an
    interrupted ``crm_resource --restart``), unmanaged (``is-managed=false``, a node in
    maintenance), the resource in maintenance, blocked, failed or banned on every node, active on
    more than one node, or not in the CIB.

    Under the cluster property ``maintenance-mode=true`` (an operator's maintenance window), or on
    a node whose partition has no quorum (the quorate one decides where it runs), it succeeds and
    says that nothing was checked. ``test=True`` checks once, waits for nothing, and
    reports a problem as ``result: None``. With ``CIB_file`` set (no cluster) it checks the file
    once.

    .. code-block:: yaml

        glance-api-running:
          crm.resource_running:
            - name: p_glance-api
            - order: last
    """
    test = bool(__opts__.get("test"))
    ret = __utils__["glance_ha_states.ret"](name)
    deadline = time.monotonic() + float(timeout)
    try:
        live = __salt__["crm.node_name"]() is not None
        if live and not test:
            try:
                __salt__["crm.wait"](timeout)
            except CommandExecutionError:
                pass  # not settled in time: the status below says what is wrong
        while True:
            health = __salt__["crm.resource_status"](name)["health"]
            if health["ok"] or health["final"] or test or not live or time.monotonic() >= deadline:
                break
            time.sleep(float(interval))
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"{name}: {exc}"
        return ret
    if health["ok"]:
        ret["comment"] = health["comment"]
        return ret
    waited = "" if health["final"] or test or not live else f" after waiting {timeout} s"
    comment = f"{health['comment']}{waited}" + (f". Fix: {health['fix']}" if health["fix"] else "")
    ret["result"], ret["comment"] = (None, f"Now: {comment}") if test else (False, comment)
    return ret


def agent_unused(name, timeout=120, interval=2):
    """
    Wait until no resource in the CIB uses resource agent ``name`` (``class:provider:type``) and
    the cluster has settled (the removed resources are stopped), at most ``timeout`` seconds.
    Meant to be required by whatever removes the agent or the files its resources read: on a
    cluster only the writer removes the resources, so every other node waits here for that write
    rather than pull the agent from under a running instance (whose stop would then fail).

    ``test=True`` reports the resources that still use the agent and waits for nothing.

    .. code-block:: yaml

        glance-api-agent-unused:
          crm.agent_unused:
            - name: ocf:openstack:glance-api
    """
    ret = __utils__["glance_ha_states.ret"](name)
    deadline = time.monotonic() + float(timeout)
    try:
        users = __salt__["crm.agent_users"](name)
        if __opts__.get("test"):
            if users:
                ret["result"] = None
                ret["comment"] = f"{name} is used by {', '.join(users)}: would wait until they are removed"
            else:
                ret["comment"] = f"No resource uses {name}"
            return ret
        while users and time.monotonic() < deadline:
            time.sleep(float(interval))
            users = __salt__["crm.agent_users"](name)
        if users:
            ret["result"] = False
            ret["comment"] = (f"{name} is still used by {', '.join(users)} after {timeout} s: remove those"
                              " resources first (glance_ha.cluster.clean on the writer)")
            return ret
        __salt__["crm.wait"](max(1, int(deadline - time.monotonic())))
    except CommandExecutionError as exc:
        ret["result"] = False
        ret["comment"] = f"{name}: {exc}"
        return ret
    ret["comment"] = f"No resource uses {name}, and the cluster has settled"
    return ret
