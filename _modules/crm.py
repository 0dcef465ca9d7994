"""
Pacemaker configuration (CIB) and resource status over the Pacemaker command-line tools
(``cibadmin``, ``crm_verify``, ``crm_diff``, ``crm_resource``, ``crm_mon``, ``crmadmin``,
``crm_node``), run by the one tool runner ``_utils/pcmk_tools``.

:py:func:`apply` reconciles a list of objects as ONE transaction: it reads the CIB once
(``cibadmin --query``), stages every object in a copy of it (``_utils/pcmk_stage``: compared by
normalised content, corrected in place, ids kept), checks changed primitives against their agent's
meta-data (``crm_resource --show-metadata``), validates the staged CIB (``crm_verify``), and writes
it with ONE ``cibadmin --patch`` built by ``crm_diff`` against the CIB that was read. Pacemaker
refuses the patch if the configuration changed in between; a status-only change is rebased and
retried. The ``crm`` states call it.

Secrets: THE rule of ``_utils/glance_ha_secrets`` (names such as ``*_password``, ``api_token``,
``secret_key``, plus ``secret_params``) masks every return value, comment, error and tool output.
Secrets never go on a command line: XML goes on stdin or in 0600 files in a private directory.

``CIB_file``: every tool honours it and the environment is passed through unchanged; with it set
there is no cluster and this process is the writer.

:depends: pacemaker-cli-utils (cibadmin, crm_verify, crm_diff, crm_resource, crm_mon, crmadmin,
    crm_node)
"""

import os
import re
import shutil
import time

from salt.exceptions import CommandExecutionError

__virtualname__ = "crm"

BINARIES = ("cibadmin", "crm_verify", "crm_diff", "crm_resource", "crm_mon", "crmadmin", "crm_node")
META_KEY = "crm.agent_metadata"
LAST_KEY = "crm.last_commit"
WRITER_KEY = "crm.writer"
TOOL_TIMEOUT = 60
# Right after the cluster starts, the controllers elect a DC within seconds (election timeout 2 min
# at most by default, dc-deadtime 20 s); the writer election waits this long for one.
DC_WAIT = 60
# crmadmin -D blocks (up to its own 30 s) while the controller is down or restarting.
DC_QUERY_TIMEOUT = 10
# crmadmin -D's answer while no DC is elected (Pacemaker 2.1: crm_str(NULL); 2.1.7+: pcmk__s).
_NO_DC = {"<null>", "(null)", "null", "none", "not yet elected", ""}


class CrmError(CommandExecutionError):
    """A Pacemaker tool or a declaration failed; the message is already masked."""


def __virtual__():
    missing = [name for name in BINARIES if not shutil.which(name)]
    if missing:
        return False, ("crm: missing Pacemaker command(s) {} (install pacemaker-cli-utils)"
                       .format(", ".join(missing)))
    return __virtualname__


# ------------------------------------------------------------------------------- the tool runner
def _mask(text, secrets=(), extra=()):
    return __utils__["glance_ha_secrets.mask"](text, secrets, extra)


def _util(func, *args, **kwargs):
    """``__utils__[func]`` (``pcmk_tools``: the one runner of the Pacemaker tools); its errors as
    CrmError."""
    try:
        return __utils__[func](*args, **kwargs)
    except ValueError as exc:
        raise CrmError(str(exc)) from None


def _run(args, stdin=None, timeout=TOOL_TIMEOUT, secrets=(), extra=()):
    """(rc, stdout, masked one-line stderr) of a Pacemaker tool (``pcmk_tools.run``)."""
    return _util("pcmk_tools.run", args, stdin=stdin, timeout=timeout, secret_values=secrets, extra=extra)


def _query():
    return _util("pcmk_tools.query")


def _secret_names(secret_params):
    if secret_params is None:
        secret_params = __salt__["config.get"]("glance_ha:cluster:secret_params", [])
    return [str(p) for p in secret_params or ()]


def _cib(text):
    return _util("pcmk_cib.parse", text)


# ------------------------------------------------------------------------------- reading
def query(secret_params=None):
    """
    The whole CIB as XML text (``cibadmin --query``), read now, with the value of every secret
    parameter masked (``********``).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.query
    """
    return _mask(_query(), extra=_secret_names(secret_params))


def cib_versions():
    """
    The CIB's version now: ``{'admin_epoch': int, 'epoch': int, 'num_updates': int}``.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.cib_versions
    """
    return dict(zip(("admin_epoch", "epoch", "num_updates"), _util("pcmk_tools.versions_now")))


def get(name, secret_params=None):
    """
    The normalised form of configuration object ``name`` (dict: type, agent, params, meta, ops
    keyed ``<name>-<interval>``, ...; no ids, secret parameters masked), or None if there is none.
    ``secret_params``: more names to mask (default: pillar ``glance_ha:cluster:secret_params``).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.get p_glance-api
    """
    elem = __utils__["pcmk_cib.find_by_id"](_cib(_query()), name)
    return None if elem is None else __utils__["pcmk_cib.normalise"](elem, _secret_names(secret_params))


def show(kind=None, secret_params=None):
    """
    ``{id: normalised form}`` of all resources, constraints and property sets (as :py:func:`get`),
    secret parameters masked. ``kind``: only this type (primitive, group, colocation, order,
    location, property, ...).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.show
        salt '*' crm.show kind=primitive
    """
    return __utils__["pcmk_cib.objects"](_cib(_query()), kind, _secret_names(secret_params))


def agent_metadata(agent):
    """
    Parameters and actions resource agent ``agent`` (``ocf:heartbeat:IPaddr2``) advertises
    (``crm_resource --show-metadata``): ``{'params': {name: {'required': bool, 'unique': bool}},
    'actions': [str]}``, cached for the run. Raises if the agent is not installed.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.agent_metadata ocf:heartbeat:IPaddr2
    """
    found = _metadata([agent])[agent]
    if not isinstance(found, dict):
        raise CrmError(f"resource agent {agent} is not installed on this node ({found})")
    return found


def _metadata(agents):
    """{agent: parsed meta-data, or why it is missing (str)}; only successes are cached."""
    return _util("pcmk_tools.metadata", agents, __context__.setdefault(META_KEY, {}))


def verify(secret_params=None):
    """
    Validate the live (or ``CIB_file``) CIB with ``crm_verify``: ``{'valid': bool, 'output': str}``
    (output masked).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.verify
    """
    rc, out, err = _run(["crm_verify", "-V", "--live-check"], extra=_secret_names(secret_params))
    return {"valid": rc == 0, "output": _mask((out + err).strip(), extra=_secret_names(secret_params))}


# ------------------------------------------------------------------------------- the cluster
def node_name():
    """
    This node's name in the cluster (``crm_node -n``), str; None without a cluster (``CIB_file``).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.node_name
    """
    if os.environ.get("CIB_file"):
        return None
    return _util("pcmk_tools.answer", ["crm_node", "-n"])


def dc():
    """
    The name (str) of the cluster's Designated Controller (``crmadmin -D``), or None if there is
    none (not elected yet, the controller not answering within 10 s, no cluster, or ``CIB_file``).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.dc
    """
    if os.environ.get("CIB_file"):
        return None
    try:
        rc, out, _err = _run(["crmadmin", "-D"], timeout=DC_QUERY_TIMEOUT)
    except CrmError:    # no answer: the controller is starting, or restarting after a failure
        return None
    match = re.search(r"Designated Controller is:[ \t]*(.*)", out)
    if rc != 0 or not match or match.group(1).strip().lower() in _NO_DC:
        return None
    return match.group(1).strip()


def has_quorum():
    """
    Whether this node's partition has quorum (``crm_node -q``: 1 or 0), bool; True with ``CIB_file``.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.has_quorum
    """
    if os.environ.get("CIB_file"):
        return True
    # Without quorum crm_node -q prints 0 and exits with 106 (CRM_EX_QUORUM, "requires quorum").
    return _util("pcmk_tools.answer", ["crm_node", "-q"], ("0", "1"), rcs=(0, 106)) == "1"


def is_dc():
    """
    Whether this node is the DC (``crmadmin -D`` vs ``crm_node -n``), bool; True with ``CIB_file``.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.is_dc
    """
    if os.environ.get("CIB_file"):
        return True
    current = dc()
    return current is not None and current == node_name()


def writer_status(writer="", dc_wait=DC_WAIT):
    """
    Who writes shared cluster state (the CIB, the Keystone catalog, glance's database) in this run:
    the one election of the formula. Returns ``{'writer': bool, 'reason': str}`` (cached for the run):

    - ``writer`` a minion id: this minion writes if its ``grains['id']`` is that id;
    - ``writer`` '' and ``CIB_file`` set: no cluster, this process writes;
    - ``writer`` '': the Pacemaker DC writes (``crmadmin -D`` vs ``crm_node -n``), and only while
      its partition has quorum (``crm_node -q``); a node without quorum never writes.

    With no DC elected yet (right after the cluster starts, or while the controller restarts), it
    asks again every 2 s for ``dc_wait`` seconds (default 60; plus at most one 10 s query), then
    raises CrmError saying so.

    ``reason`` says which rule decided, for a state comment.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.writer_status
        salt '*' crm.writer_status writer=ctl1
    """
    cache = __context__.setdefault(WRITER_KEY, {})
    if writer in cache:
        return cache[writer]
    if writer:
        me = __grains__.get("id")
        status = {"writer": writer == me,
                  "reason": f"the writer is minion {writer!r}" + ("" if writer == me else f", not {me!r}")}
    elif os.environ.get("CIB_file"):
        status = {"writer": True, "reason": "CIB_file is set: no cluster, this process writes the file"}
    else:
        status = _dc_status(float(dc_wait))
    cache[writer] = status
    return status


def agent_users(agent):
    """
    Ids (sorted list of str) of the resources in the CIB configuration that use resource agent
    ``agent`` (``class:provider:type``), read now.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.agent_users ocf:openstack:glance-api
    """
    return __utils__["pcmk_cib.agent_users"](_cib(_query()), agent)


def _dc_status(dc_wait):
    deadline = time.monotonic() + dc_wait
    current = dc()
    while current is None:
        if time.monotonic() >= deadline:
            raise CrmError(f"the cluster elected no DC (Designated Controller) within {dc_wait:.0f} s "
                           "(crmadmin -D): nobody can tell who writes; run again once it has one")
        time.sleep(2)
        current = dc()
    me = node_name()
    if not has_quorum():
        return {"writer": False, "reason": f"this node ({me}) is in a partition without quorum: it never writes"}
    if current != me:
        return {"writer": False, "reason": f"the writer is the DC, {current} (this is {me})"}
    return {"writer": True, "reason": f"the writer is the DC, {current}, which has quorum"}


def resource_status(name):
    """
    What Pacemaker says about resource ``name`` now (``crm_mon --output-as=xml`` and the CIB,
    parsed by ``_utils/pcmk_status``), a dict:

    - ``exists``, ``managed``, ``blocked``, ``failed`` (bool), ``role`` (str or None);
    - ``active_on`` / ``started_on``: sorted node names where it is active (failed or not) / runs;
    - ``target_role`` (str or None), ``is_managed``, ``maintenance`` (its meta attributes, bool),
      ``meta_from`` ({meta name: the resource, parent or 'rsc_defaults' that sets it});
    - ``cluster_maintenance``: the cluster property ``maintenance-mode`` (bool); ``dc``; ``quorum``
      (bool, this node's partition);
    - ``nodes``: {node: {'online', 'standby', 'maintenance'}};
    - ``fail_counts`` ({node: int}, INFINITY as 1000000), ``migration_threshold`` (int),
      ``failures`` ({node: [{'op', 'rc', 'status', 'reason'}]}), ``banned_on`` ({node: location
      constraint id}), ``probes`` ({node: OCF rc of its last recorded probe}), ``known_on`` (nodes
      with any history), ``excluded`` ({node: why it cannot run there now});
    - ``clone``: id of the clone holding it, or None;
    - ``health``: ``{'state', 'ok', 'final', 'comment', 'fix'}``: whether it runs on exactly one
      node, or inside a clone on every online node where it can run (state ``started``; ``cluster-maintenance`` and ``no-quorum`` are ok too: nothing
      checked), or why not
      (``target-role-stopped``, ``unmanaged``, ``maintenance``, ``blocked``, ``failed-everywhere``,
      ``multiple``, ``not-started``, ``absent``, ``partial``: a clone not yet started on every
      node where it can run) and the command that fixes it.

    Raises CrmError if a tool fails. Works on ``CIB_file`` too.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.resource_status p_glance-api
    """
    return _util("pcmk_status.resource_status", _util("pcmk_tools.mon"), _query(), name)


def locate(name):
    """
    The nodes (sorted list of str) where resource ``name`` is active now (failed or not); [] if
    none or if there is no such resource.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.locate p_glance-api
    """
    return resource_status(name)["active_on"]


def restart(name, node=None, timeout=120):
    """
    Restart resource ``name`` through the cluster (``crm_resource --restart``: stop and start in
    place), waiting for it; True, or raises. ``node``: only the instance on that node (clones).
    ``timeout``: seconds.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.restart p_glance-api
    """
    args = ["crm_resource", "--restart", "--resource", name, f"--timeout={int(timeout)}s"]
    if node:
        args += ["--node", node]
    rc, out, err = _run(args, timeout=int(timeout) + 30)
    if rc != 0:
        raise CrmError(f"crm_resource --restart --resource {name} failed (rc={rc}): {err or out.strip()}")
    return True


def refresh(name, node=None):
    """
    Forget the operation history of resource ``name`` (only on node ``node`` if given) so that the
    cluster probes it again (``crm_resource --refresh``): e.g. after its agent was installed on a
    node whose earlier probe found it missing (rc 5, "not installed"). True, or raises.

    CLI Example:

    .. code-block:: bash

        salt ctl4 crm.refresh p_glance-api node=ctl4
    """
    args = ["crm_resource", "--refresh", "--resource", name] + (["--node", node] if node else [])
    rc, out, err = _run(args, timeout=60)
    if rc != 0:
        raise CrmError(f"{' '.join(args)} failed (rc={rc}): {err or out.strip()}")
    return True


def wait(timeout=120):
    """
    Wait until the cluster has no pending actions (``crm_resource --wait``), at most ``timeout``
    seconds. True when settled (at once with ``CIB_file``); raises if it did not settle in time.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.wait timeout=60
    """
    if os.environ.get("CIB_file"):
        return True
    rc, out, err = _run(["crm_resource", "--wait", f"--timeout={int(timeout)}s"], timeout=int(timeout) + 30)
    if rc != 0:
        raise CrmError(f"the cluster did not settle within {int(timeout)} s (crm_resource --wait,"
                       f" rc={rc}): {err or out.strip()}")
    return True


# ------------------------------------------------------------------------------- the transaction
def diff(objects, secret_params=None, agent_sources=None, owner=None):
    """
    What :py:func:`apply` would change for ``objects`` (same arguments), on any node (writer or
    not), written nowhere: ``{'result': True|None|False, 'changes': {object id: diff}, 'comment':
    str}`` (result None when something would change).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.diff '[{primitive: p_vip, agent: "ocf:heartbeat:IPaddr2", params: {ip: 198.51.100.10}}]'
    """
    return _apply(objects, True, None, secret_params, agent_sources, owner)


def apply(objects, test=False, writer="", secret_params=None, agent_sources=None, owner=None):
    """
    Reconcile ``objects`` with the CIB as ONE transaction: one read, one ``crm_verify``-validated
    ``cibadmin --patch``, by the writer only (:py:func:`writer_status`).

    objects
        list of ``{<type>: <id>, <argument>: ...}``, type one of primitive, group, colocation,
        order, property, absent; the arguments are those of the matching ``crm`` state.
    test
        validate and report, write nothing.
    writer
        minion id that writes; '' means the Pacemaker DC.
    secret_params
        more parameter names to mask (default: pillar ``glance_ha:cluster:secret_params``).
    agent_sources
        ``{agent: where this run installs it from}``: with ``test``, an agent listed here that is
        not installed yet is not an error; its parameter check waits for the real run.
    owner
        id of a CIB ``<tag>`` that marks what the caller owns: the declared resources and
        constraints become its members, and the members no longer declared (a renamed resource, its
        constraints) are removed in the same transaction. Objects outside the tag are never touched.

    Returns ``{'result': True|None|False, 'changes': {object id: diff}, 'comment': str}``: result
    None under ``test`` when something would change; ``changes`` empty when nothing was (or, off
    the writer, would be) written. Nothing is written unless every object is valid.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.apply '[{property: options, properties: {stonith-enabled: false}}]' test=True
    """
    return _apply(objects, test, writer, secret_params, agent_sources, owner)


def _apply(objects, test, writer, secret_params, agent_sources, owner):
    """:py:func:`apply`; ``writer`` None: report as the writer would, whoever this node is."""
    extra = _secret_names(secret_params)
    if not isinstance(objects, list):
        return _ret(False, "Nothing written: objects must be a list of {<type>: <id>, ...}")
    try:
        txn = __utils__["pcmk_stage.begin"](_query(), extra)
    except (ValueError, CommandExecutionError) as exc:
        return _ret(False, f"Nothing written: {exc}")
    errors = []
    for item in objects:
        try:
            objtype, name, spec = __utils__["pcmk_stage.split_item"](item)
            txn.stage(objtype, name, **spec)
        except ValueError as exc:
            errors.append(txn.mask(str(exc)))
    try:
        if owner and not errors:
            txn.own(owner)
        if not errors and txn.order:
            txn.validate(_metadata(txn.agents_to_validate()), agent_sources if test else None)
    except ValueError as exc:
        errors.append(str(exc))
    if errors:
        return _ret(False, "Nothing written: " + "; ".join(errors))
    if not txn.order:
        return _ret(True, f"Nothing to write: the CIB is as declared ({len(objects)} object(s))")
    staged = ", ".join(txn.order)
    details = "; ".join(f"{obj_id} {line}" for obj_id in txn.order
                        for line in __utils__["pcmk_cib.summary"](txn.changes[obj_id]))
    try:
        status = {"writer": True} if writer is None else writer_status(writer)
    except CrmError as exc:
        return _ret(False, f"Nothing written: {exc}")
    if not status["writer"]:
        return _ret(True, f"Not the writer ({status['reason']}): nothing written from this node."
                          f" Differs from the declaration: {details}")
    read_vers = __utils__["pcmk_cib.versions"](txn.read)
    try:
        txn.check_references()
        target_xml = txn.target_xml()
        check = _util("pcmk_tools.verify_text", target_xml, txn.secrets, extra)
        if not check["valid"]:
            if not _util("pcmk_tools.verify_text", txn.read_xml, txn.secrets, extra)["valid"]:
                raise CrmError("the cluster configuration was already invalid before this run (fix it"
                               f" first, e.g. stonith-enabled with no fencing device): {check['output']}")
            raise CrmError(f"crm_verify rejects the staged CIB ({staged}): {check['output']}")
        notes = "".join(f" Note: {note}." for note in txn.notes)
        if test:
            return _ret(None, f"Would write {len(txn.order)} object(s) in one transaction: {staged}"
                              f" (crm_verify: valid). {details}.{notes}", txn.changes)
        new_vers = _util("pcmk_tools.patch", txn, target_xml, extra)
    except (ValueError, CommandExecutionError) as exc:
        return _ret(False, txn.mask(str(exc) if str(exc).startswith("Nothing written") else
                                    f"Nothing written: {exc}"))
    fmt = __utils__["pcmk_cib.fmt_versions"]
    __context__[LAST_KEY] = {"objects": dict(txn.changes),
                             "versions": {"old": fmt(read_vers), "new": fmt(new_vers)}}
    return _ret(True, f"Wrote {len(txn.order)} object(s) in one transaction (CIB {fmt(read_vers)} ->"
                      f" {fmt(new_vers)}): {staged}. {details}", txn.changes)


def _ret(result, comment, changes=None):
    return {"result": result, "changes": dict(changes or {}), "comment": comment}


def last_commit():
    """
    What the last successful write of this run wrote: ``{'objects': {id: diff}, 'versions':
    {'old': 'a.e.n', 'new': 'a.e.n'}}`` (masked), or {} if this run wrote nothing.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.last_commit
    """
    return __context__.get(LAST_KEY, {})
