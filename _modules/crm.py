"""
Pacemaker configuration (CIB) reconciliation over the Pacemaker command-line tools.

How a run works (the ``crm`` states drive it; :py:func:`apply` does the same in one call):

1. :py:func:`begin` reads the CIB once (``cibadmin --query``) into the run's transaction, kept in
   ``__context__`` (one dict per Salt state run).
2. :py:func:`stage` compares one declared object (primitive, group, colocation, order, a set of
   properties / rsc_defaults / op_defaults, or an absent id) with the CIB *by normalised content*:
   ids that tools generate for nvpairs, operations and attribute sets, attribute order, ``30`` vs
   ``30s`` vs ``30000ms`` and ``inf`` vs ``INFINITY`` are not differences. If it differs, the object is
   validated (parameters against the resource agent's meta-data from ``crm_resource --show-metadata``)
   and corrected *in place* in a copy of the CIB: the same element ids, nvpair and op ids are kept;
   nothing is deleted and recreated, and objects that were not declared are left alone.
3. :py:func:`commit` validates the whole staged CIB (``crm_verify -x``), builds one patch with
   ``crm_diff`` against the CIB that was read, and writes it with ONE ``cibadmin --patch``. The patch
   carries the version of the CIB it was computed from, so Pacemaker refuses it if anyone changed
   the configuration in between (the run then fails and says so; nothing is overwritten).

Secrets: parameters whose name contains ``password`` (or ``passwd``), plus the names given in
``secret_params``, are masked (``******``) in every return value, log line and error message,
including the output of the Pacemaker tools. Secrets never go on a command line: XML is passed on
stdin or in 0600 files in a private temporary directory.

``CIB_file``: all tools honour the ``CIB_file`` environment variable, and this module passes the
environment through unchanged; with it set there is no cluster and this process is the writer.

:depends: pacemaker-cli-utils (cibadmin, crm_verify, crm_diff, crm_resource, crmadmin, crm_node)
"""

import copy
import logging
import os
import re
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as _xml_escape

from salt.exceptions import CommandExecutionError

log = logging.getLogger(__name__)

__virtualname__ = "crm"

BINARIES = ("cibadmin", "crm_verify", "crm_diff", "crm_resource", "crmadmin", "crm_node")
TXN_KEY = "crm.txn"
META_KEY = "crm.agent_metadata"
LAST_KEY = "crm.last_commit"
WRITER_KEY = "crm.writer"
MASK = "******"
SECRET_WORDS = ("password", "passwd")
# Meta attributes that administrators and Pacemaker's own tools set at run time (crm resource
# stop/unmanage/maintenance, crm_resource --restart): left alone unless the formula declares them.
OPERATIONAL_META = frozenset(("target-role", "is-managed", "maintenance"))
OP_ATTRS = ("name", "interval", "timeout", "role", "on-fail", "start-delay", "interval-origin",
            "requires", "enabled", "record-pending", "description")
DURATION_ATTRS = frozenset(("interval", "timeout", "start-delay"))
BOOL_ATTRS = frozenset(("enabled", "record-pending", "symmetrical", "influence", "require-all"))
PROPERTY_SECTIONS = {
    "cluster": ("crm_config", "cluster_property_set", "cib-bootstrap-options"),
    "crm_config": ("crm_config", "cluster_property_set", "cib-bootstrap-options"),
    "rsc_defaults": ("rsc_defaults", "meta_attributes", "rsc-options"),
    "op_defaults": ("op_defaults", "meta_attributes", "op-options"),
}
# Order of the children of <configuration> (pacemaker-3.x schema).
CONFIG_ORDER = ("crm_config", "rsc_defaults", "op_defaults", "nodes", "resources", "constraints",
                "fencing-topology", "tags", "acls", "alerts")
RESOURCE_TAGS = frozenset(("primitive", "group", "clone", "master", "bundle", "template"))
CONSTRAINT_TAGS = frozenset(("rsc_location", "rsc_colocation", "rsc_order", "rsc_ticket"))
ROLE_ALIASES = {"master": "Promoted", "slave": "Unpromoted", "promoted": "Promoted",
                "unpromoted": "Unpromoted", "started": "Started", "stopped": "Stopped"}
ORDER_KINDS = ("Mandatory", "Optional", "Serialize")
RESOURCE_ACTIONS = ("start", "stop", "promote", "demote")
ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
DURATION_RE = re.compile(r"^\s*(\d+)\s*(ms|msec|us|usec|s|sec|m|min|h|hr)?\s*$", re.IGNORECASE)
ISO_RE = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$", re.IGNORECASE)
UNIT_MS = {None: 1000, "ms": 1, "msec": 1, "us": 0.001, "usec": 0.001, "s": 1000, "sec": 1000,
           "m": 60000, "min": 60000, "h": 3600000, "hr": 3600000}
TRUE_WORDS = ("true", "on", "yes", "y", "1")
FALSE_WORDS = ("false", "off", "no", "n", "0")
CIBADMIN_TIMEOUT = 60


class CrmError(CommandExecutionError):
    """A Pacemaker tool or a validation failed; the message is already masked."""


class AgentNotFoundError(CrmError):
    """``crm_resource --show-metadata`` does not know the resource agent."""


class ConcurrentChangeError(CrmError):
    """The CIB configuration changed between the read and the write."""


def __virtual__():
    missing = [name for name in BINARIES if not shutil.which(name)]
    if missing:
        return False, ("crm: missing Pacemaker command(s) {} (install pacemaker-cli-utils)"
                       .format(", ".join(missing)))
    return __virtualname__


# ---------------------------------------------------------------------------------------------
# Pure helpers: values, durations, masking
# ---------------------------------------------------------------------------------------------

def parse_duration_ms(value):
    """Milliseconds of a Pacemaker duration (``30``, ``30s``, ``1min``, ``500ms``, ``PT5M``), or None.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.parse_duration_ms 1min
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value * 1000 if value >= 0 else None
    text = str(value).strip()
    match = DURATION_RE.match(text)
    if match:
        unit = match.group(2).lower() if match.group(2) else None
        return int(int(match.group(1)) * UNIT_MS[unit])
    match = ISO_RE.match(text)
    if match and text.upper() not in ("P", "PT"):
        weeks, days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return ((((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000
    return None


def _fmt_ms(millis):
    if millis % 1000:
        return f"{millis}ms"
    return f"{millis // 1000}s"


def _to_text(value):
    """The CIB text of a declared scalar (YAML booleans become true/false)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise ValueError(f"{value!r} is not a scalar")


def _bool_word(text):
    low = str(text).strip().lower()
    if low in TRUE_WORDS:
        return True
    if low in FALSE_WORDS:
        return False
    return None


def canon_score(value):
    """Canonical Pacemaker score: ``INFINITY``, ``-INFINITY`` or an integer as text; None if invalid.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.canon_score inf
    """
    text = _to_text(value).strip()
    upper = text.upper()
    if upper in ("INFINITY", "+INFINITY", "INF", "+INF"):
        return "INFINITY"
    if upper in ("-INFINITY", "-INF"):
        return "-INFINITY"
    if re.match(r"^[+-]?\d+$", text):
        return str(int(text))
    return None


def _canon_role(value):
    if value is None:
        return None
    return ROLE_ALIASES.get(str(value).lower())


def same_value(key, current, wanted):
    """Whether two CIB values of attribute/nvpair ``key`` mean the same (no phantom changes).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.same_value timeout 30 30s
    """
    if current is None or wanted is None:
        return current is None and wanted is None
    current, wanted = str(current), str(wanted)
    if current == wanted:
        return True
    if _is_duration_key(key):
        cur_ms, want_ms = parse_duration_ms(current), parse_duration_ms(wanted)
        if cur_ms is not None and cur_ms == want_ms:
            return True
    if key in ("score", "resource-stickiness", "priority", "migration-threshold"):
        cur_s, want_s = _safe_score(current), _safe_score(wanted)
        if cur_s is not None and cur_s == want_s:
            return True
    if key in ("role", "rsc-role", "with-rsc-role"):
        return _canon_role(current) is not None and _canon_role(current) == _canon_role(wanted)
    if key in BOOL_ATTRS or _is_bool_key(key):
        cur_b, want_b = _bool_word(current), _bool_word(wanted)
        return cur_b is not None and cur_b == want_b
    return False


def _safe_score(text):
    try:
        return canon_score(text)
    except ValueError:
        return None


def _is_duration_key(key):
    key = str(key)
    return (key in DURATION_ATTRS or key.endswith(("timeout", "-interval", "-delay"))
            or key in ("dc-deadtime", "shutdown-lock-limit"))


def _is_bool_key(key):
    key = str(key)
    return key.endswith("-enabled") or key in (
        "is-managed", "maintenance", "allow-migrate", "critical", "notify", "globally-unique",
        "ordered", "interleave", "symmetric-cluster", "stop-orphan-resources",
        "stop-orphan-actions", "start-failure-is-fatal", "enable-startup-probes", "shutdown-lock",
        "stop-all-resources", "startup-fencing", "concurrent-fencing", "have-watchdog",
        "allow-unhealthy-nodes")


def is_secret(name, secret_params=None):
    """Whether parameter ``name`` holds a secret (contains ``password``/``passwd`` or is listed).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.is_secret os_password
    """
    low = str(name).lower()
    if any(word in low for word in SECRET_WORDS):
        return True
    return low in {str(p).lower() for p in (secret_params or ())}


def mask_text(text, secrets):
    """``text`` with every secret value (also XML-escaped) replaced by ``******``.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.mask_text 'pw=hunter2' '["hunter2"]'
    """
    if text is None:
        return text
    text = str(text)
    forms = set()
    for secret in secrets or ():
        if secret in (None, ""):
            continue
        secret = str(secret)
        forms.add(secret)
        forms.add(_xml_escape(secret, {'"': "&quot;", "'": "&apos;"}))
        forms.add(_xml_escape(secret, {'"': "&quot;"}))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def _mask_data(data, secrets):
    if isinstance(data, dict):
        return {k: _mask_data(v, secrets) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask_data(v, secrets) for v in data]
    if isinstance(data, str):
        return mask_text(data, secrets)
    return data


# ---------------------------------------------------------------------------------------------
# Pure helpers: XML and normalisation
# ---------------------------------------------------------------------------------------------

def _parse_cib(text):
    """Parse CIB XML text (comments are kept so an unrelated comment never turns into a change)."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    try:
        return ET.fromstring(text, parser=parser)
    except ET.ParseError as exc:
        raise CrmError(f"the CIB is not valid XML: {exc}") from None


def _to_xml(root):
    return ET.tostring(root, encoding="unicode")


def _versions(root):
    """(admin_epoch, epoch, num_updates) of a parsed CIB."""
    return tuple(int(root.get(key, "0")) for key in ("admin_epoch", "epoch", "num_updates"))


def _fmt_versions(vers):
    return ".".join(str(v) for v in vers)


def _config(root):
    conf = root.find("configuration")
    if conf is None:
        raise CrmError("the CIB has no <configuration> section")
    return conf


def _section(root, tag, create=False):
    conf = _config(root)
    elem = conf.find(tag)
    if elem is None and create:
        elem = ET.Element(tag)
        pos = CONFIG_ORDER.index(tag) if tag in CONFIG_ORDER else len(CONFIG_ORDER)
        index = 0
        for index_, child in enumerate(list(conf)):
            if child.tag in CONFIG_ORDER and CONFIG_ORDER.index(child.tag) < pos:
                index = index_ + 1
        conf.insert(index, elem)
    return elem


def _parents(root):
    return {child: parent for parent in root.iter() for child in parent}


def _find_by_id(root, obj_id):
    """The element with ``id`` ``obj_id`` in ``<configuration>`` (not nvpairs of other objects)."""
    for elem in _config(root).iter():
        if elem.get("id") == obj_id:
            return elem
    return None


def _all_ids(root):
    return {elem.get("id") for elem in root.iter() if elem.get("id")}


def _unique_id(base, ids):
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)
    if not re.match(r"^[A-Za-z_]", base):
        base = "_" + base
    candidate, counter = base, 0
    while candidate in ids:
        counter += 1
        candidate = f"{base}-{counter}"
    ids.add(candidate)
    return candidate


def _plain_sets(elem, tag):
    """Attribute sets ``tag`` directly under ``elem`` that apply unconditionally (no rule/id-ref)."""
    return [s for s in elem.findall(tag) if s.find("rule") is None and s.get("id-ref") is None]


def _nv_read(elem, tag):
    """{name: value} of the unconditional ``tag`` sets of ``elem`` (first occurrence wins)."""
    values = {}
    for nvset in _plain_sets(elem, tag):
        for pair in nvset.findall("nvpair"):
            name = pair.get("name")
            if name is not None and name not in values and pair.get("id-ref") is None:
                values[name] = pair.get("value", "")
    return values


def _nv_equal(current, wanted, keep=frozenset()):
    """Declared names equal by meaning; extra current names allowed only if in ``keep``."""
    for name, value in wanted.items():
        if name not in current or not same_value(name, current[name], value):
            return False
    return all(name in wanted or name in keep for name in current)


def _nv_write(elem, tag, wanted, ids, set_base, keep=frozenset()):
    """Make the unconditional ``tag`` sets of ``elem`` hold ``wanted``, editing nvpairs in place."""
    sets = _plain_sets(elem, tag)
    had_pairs = {id(s): bool(s.findall("nvpair")) for s in sets}
    seen = set()
    for nvset in sets:
        for pair in list(nvset.findall("nvpair")):
            name = pair.get("name")
            if pair.get("id-ref") is not None:
                continue
            if name in wanted and name not in seen:
                seen.add(name)
                if not same_value(name, pair.get("value"), wanted[name]):
                    pair.set("value", wanted[name])
            elif name in wanted or name not in keep:
                nvset.remove(pair)
    missing = [name for name in wanted if name not in seen]
    if missing:
        if sets:
            target = sets[0]
        else:
            target = ET.SubElement(elem, tag, {"id": _unique_id(f"{set_base}-{tag}", ids)})
            sets = [target]
            had_pairs[id(target)] = True
        for name in missing:
            ET.SubElement(target, "nvpair", {"id": _unique_id(f"{target.get('id')}-{name}", ids),
                                             "name": name, "value": wanted[name]})
    for nvset in sets:
        if had_pairs.get(id(nvset)) and not nvset.findall("nvpair") and len(nvset) == 0:
            elem.remove(nvset)


def split_agent(agent):
    """(class, provider, type) of ``ocf:heartbeat:IPaddr2`` / ``stonith:fence_x`` / ``systemd:foo``.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.split_agent ocf:heartbeat:IPaddr2
    """
    parts = str(agent).split(":")
    if len(parts) == 3 and parts[0] == "ocf" and all(parts):
        return tuple(parts)
    if len(parts) == 2 and parts[0] not in ("ocf", "") and parts[1]:
        return parts[0], None, parts[1]
    raise ValueError(f"{agent!r} is not a resource agent (class:provider:type for ocf, class:type"
                     " otherwise)")


def _agent_of(elem):
    cls, prov, typ = elem.get("class"), elem.get("provider"), elem.get("type")
    return ":".join(p for p in (cls, prov, typ) if p)


def _op_key(name, role, interval_ms):
    role_part = f"-{role}" if role else ""
    return f"{name}{role_part}-{_fmt_ms(interval_ms or 0)}"


def _norm_op_elem(op):
    attrs = {k: v for k, v in op.attrib.items() if k != "id"}
    norm = {"attrs": attrs, "params": _nv_read(op, "instance_attributes"),
            "meta": _nv_read(op, "meta_attributes"), "id": op.get("id")}
    norm["key"] = _op_key(attrs.get("name"), _canon_role(attrs.get("role")) or attrs.get("role"),
                          parse_duration_ms(attrs.get("interval", "0")) or 0)
    return norm


def _op_equal(cur, want):
    cur_attrs, want_attrs = cur["attrs"], want["attrs"]
    names = set(cur_attrs) | set(want_attrs)
    for name in names:
        if not same_value(name, cur_attrs.get(name), want_attrs.get(name)):
            if name == "interval" and {cur_attrs.get(name), want_attrs.get(name)} <= {None, "0", "0s"}:
                continue
            return False
    return _nv_equal(cur["params"], want["params"]) and _nv_equal(cur["meta"], want["meta"])


def _ops_equal(current, wanted):
    if len(current) != len(wanted):
        return False
    pairs, left_cur, left_want = _match_ops(current, wanted)
    return not left_cur and not left_want and all(_op_equal(c, w) for c, w in pairs)


def _match_ops(current, wanted):
    """Pair current with wanted ops: same name/role/interval first, then same name/role."""
    left_cur, left_want, pairs = list(current), list(wanted), []
    for strict in (True, False):
        for want in list(left_want):
            for cur in left_cur:
                same_kind = (cur["attrs"].get("name") == want["attrs"].get("name")
                             and _canon_role(cur["attrs"].get("role")) == _canon_role(want["attrs"].get("role")))
                if same_kind and (not strict or cur["key"] == want["key"]):
                    if strict and not _op_equal(cur, want) and any(
                            c is not cur and c["key"] == want["key"] and _op_equal(c, want) for c in left_cur):
                        continue
                    pairs.append((cur, want))
                    left_cur.remove(cur)
                    left_want.remove(want)
                    break
    return pairs, left_cur, left_want


def _internal(elem):
    """Normalised form used for diffs: like :py:func:`_normalise`, unmasked, ops keyed by op id."""
    tag = elem.tag
    out = {"type": _TYPE_OF_TAG.get(tag, tag), "id": elem.get("id")}
    if tag == "primitive":
        out["agent"] = _agent_of(elem)
        if elem.get("description") is not None:
            out["description"] = elem.get("description")
        out["params"] = _nv_read(elem, "instance_attributes")
        out["meta"] = _nv_read(elem, "meta_attributes")
        utilization = _nv_read(elem, "utilization")
        if utilization:
            out["utilization"] = utilization
        ops_elem = elem.find("operations")
        ops = [_norm_op_elem(op) for op in (ops_elem.findall("op") if ops_elem is not None else [])]
        out["ops"] = {op["id"]: dict(_op_display(op), _key=op["key"]) for op in ops}
    elif tag == "group":
        out["members"] = [child.get("id") for child in elem if child.tag == "primitive"]
        out["meta"] = _nv_read(elem, "meta_attributes")
        if elem.get("description") is not None:
            out["description"] = elem.get("description")
    elif tag in CONSTRAINT_TAGS:
        out.update({k: v for k, v in elem.attrib.items() if k != "id"})
        sets = [_norm_set(s) for s in elem.findall("resource_set")]
        if sets:
            out["sets"] = sets
    elif tag in ("cluster_property_set", "meta_attributes"):
        out["properties"] = {p.get("name"): p.get("value", "") for p in elem.findall("nvpair")}
    else:
        out["xml"] = _to_xml(elem)
    return out


def _normalise(elem, secret_params=None):
    """The normalised, id-free form of a configuration element (what comparisons and diffs show).

    Ops are keyed ``<name>[-<role>]-<interval>``; secret parameters (names containing
    ``password``, or listed in ``secret_params``) are masked.
    """
    return _display(_internal(elem), secret_params)


_TYPE_OF_TAG = {"rsc_colocation": "colocation", "rsc_order": "order", "rsc_location": "location",
                "rsc_ticket": "ticket", "cluster_property_set": "property"}


def _norm_set(rset):
    out = {k: v for k, v in rset.attrib.items() if k != "id"}
    out["resources"] = [ref.get("id") for ref in rset.findall("resource_ref")]
    return out


def _op_display(op):
    shown = dict(op["attrs"])
    if op["params"]:
        shown["params"] = dict(op["params"])
    if op["meta"]:
        shown["meta"] = dict(op["meta"])
    return shown


def _mask_params(params, secret_params):
    return {k: (MASK if is_secret(k, secret_params) and v is not None else v) for k, v in params.items()}


def _display(internal, secret_params=None):
    """The user-facing form of an internal normalised object (no ids, secrets masked)."""
    out = {k: v for k, v in internal.items() if k != "ops" and v != {}}
    if "params" in out:
        out["params"] = _mask_params(out["params"], secret_params)
    if internal.get("ops"):
        out["ops"] = {}
        for op in internal["ops"].values():
            shown = {k: v for k, v in op.items() if k != "_key"}
            out["ops"][_unique_key(op["_key"], out["ops"])] = shown
    return out


def _unique_key(key, taken):
    candidate, counter = key, 1
    while candidate in taken:
        counter += 1
        candidate = f"{key}#{counter}"
    return candidate


def _diff(before, after, secret_params=None):
    """Per-field difference of two internal normalised objects; ops matched by their element id.

    Only what differs is shown; a changed secret shows as ``{'old': '******', 'new': '******'}``.
    """
    changes = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if key in ("type", "id", "ops") or old == new:
            continue
        if isinstance(old, dict) or isinstance(new, dict):
            old, new = old or {}, new or {}
            sub = {}
            for name in sorted(set(old) | set(new)):
                if old.get(name) != new.get(name):
                    pair = {"old": old.get(name), "new": new.get(name)}
                    if key == "params" and is_secret(name, secret_params):
                        pair = {k: (None if v is None else MASK) for k, v in pair.items()}
                    sub[name] = pair
            changes[key] = sub
        else:
            changes[key] = {"old": old, "new": new}
    old_ops, new_ops = before.get("ops") or {}, after.get("ops") or {}
    ops = {}
    for op_id in list(old_ops) + [i for i in new_ops if i not in old_ops]:
        old, new = old_ops.get(op_id), new_ops.get(op_id)
        if old == new:
            continue
        key = _unique_key((new or old)["_key"], ops)
        if old is None or new is None:
            shown = {k: v for k, v in (new or old).items() if k != "_key"}
            ops[key] = {"old": None, "new": shown} if old is None else {"old": shown, "new": None}
            continue
        ops[key] = {name: {"old": old.get(name), "new": new.get(name)}
                    for name in sorted(set(old) | set(new))
                    if name != "_key" and old.get(name) != new.get(name)}
        if old["_key"] != new["_key"]:
            ops[key]["op"] = {"old": old["_key"], "new": new["_key"]}
    if ops:
        changes["ops"] = ops
    return changes


# ---------------------------------------------------------------------------------------------
# Declared objects: validation and normalisation of the input
# ---------------------------------------------------------------------------------------------

def _check_id(kind, name):
    if not isinstance(name, str) or not ID_RE.match(name):
        raise CrmError(f"{kind} {name!r}: not a valid Pacemaker id (letters, digits, '_', '.', '-';"
                       " not starting with a digit)")


def _scalars(kind, name, what, data):
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CrmError(f"{kind} {name}: {what} must be a mapping of name: value")
    out = {}
    for key, value in data.items():
        try:
            out[str(key)] = _to_text(value)
        except ValueError:
            raise CrmError(f"{kind} {name}: {what} {key!r} must be a scalar (string, number or"
                           " boolean)") from None
    return out


def _declared_ops(name, ops):
    """Normalise declared ops: a list of dicts, or a mapping {op name: attrs}."""
    if ops is None:
        return []
    if isinstance(ops, dict):
        ops = [dict(attrs or {}, name=op_name) for op_name, attrs in ops.items()]
    if not isinstance(ops, list):
        raise CrmError(f"primitive {name}: ops must be a list of {{name: ..., interval: ...}} or a"
                       " mapping {op name: {interval: ..., timeout: ...}}")
    out = []
    for raw in ops:
        if not isinstance(raw, dict) or not raw.get("name"):
            raise CrmError(f"primitive {name}: every op needs a name (e.g. {{name: monitor,"
                           " interval: 30s}})")
        op_name = str(raw["name"])
        attrs, params, meta = {"name": op_name}, {}, {}
        for key, value in raw.items():
            if key == "name":
                continue
            if key in ("params", "instance_attributes"):
                params.update(_scalars("primitive", name, f"op {op_name} params", value))
                continue
            if key in ("meta", "meta_attributes"):
                meta.update(_scalars("primitive", name, f"op {op_name} meta", value))
                continue
            attr = str(key).replace("_", "-")
            if key == "OCF_CHECK_LEVEL" or str(key).isupper():
                params.update(_scalars("primitive", name, f"op {op_name} params", {key: value}))
                continue
            if attr not in OP_ATTRS:
                raise CrmError(f"primitive {name}: op {op_name}: unknown attribute {key!r} (known:"
                               f" {', '.join(OP_ATTRS[1:])}; agent parameters go under params:)")
            try:
                attrs[attr] = _to_text(value)
            except ValueError:
                raise CrmError(f"primitive {name}: op {op_name}: {key} must be a scalar") from None
        if "interval" not in attrs:
            if op_name == "monitor":
                raise CrmError(f"primitive {name}: op monitor: interval is required (e.g. 30s)")
            attrs["interval"] = "0s"
        for attr in DURATION_ATTRS:
            if attr in attrs:
                millis = parse_duration_ms(attrs[attr])
                if millis is None:
                    raise CrmError(f"primitive {name}: op {op_name}: {attr} {attrs[attr]!r} is not a"
                                   " valid interval (e.g. 30s, 1min, 500ms, PT30S)")
                if attr == "timeout" and millis == 0:
                    raise CrmError(f"primitive {name}: op {op_name}: timeout must be greater than 0")
        if op_name == "monitor" and parse_duration_ms(attrs["interval"]) == 0:
            raise CrmError(f"primitive {name}: op monitor: interval must be greater than 0")
        if "role" in attrs:
            role = _canon_role(attrs["role"])
            if role is None:
                raise CrmError(f"primitive {name}: op {op_name}: role {attrs['role']!r} is not one of"
                               " Started, Stopped, Promoted, Unpromoted")
            attrs["role"] = role
        key = _op_key(op_name, attrs.get("role"), parse_duration_ms(attrs["interval"]))
        out.append({"attrs": attrs, "params": params, "meta": meta, "key": key, "id": None})
    keys = [op["key"] for op in out]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise CrmError(f"primitive {name}: op(s) {', '.join(dupes)} declared more than once")
    return out


# ---------------------------------------------------------------------------------------------
# Running the tools
# ---------------------------------------------------------------------------------------------

def _run(args, stdin=None, timeout=CIBADMIN_TIMEOUT, secrets=()):
    """Run a Pacemaker tool (found on PATH, environment incl. CIB_file passed through unchanged)."""
    env = dict(os.environ)
    env.setdefault("LC_ALL", "C")
    log.debug("crm: running %s", " ".join(args))
    try:
        proc = subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=timeout,
                              env=env, check=False)
    except FileNotFoundError:
        raise CrmError(f"{args[0]}: command not found (install pacemaker-cli-utils)") from None
    except subprocess.TimeoutExpired:
        raise CrmError(f"{' '.join(args)}: no answer within {timeout} s") from None
    # One line: tools print multi-line errors; a state comment should read as one message.
    err = " ".join(_strip_ansi(proc.stderr).split())
    return proc.returncode, proc.stdout, mask_text(err, secrets)


def _strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;]*m", "", text or "")


def query():
    """The whole CIB as XML text (``cibadmin --query``), read now.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.query
    """
    rc, out, err = _run(["cibadmin", "--query"])
    if rc != 0:
        raise CrmError(f"cibadmin --query failed (rc={rc}): {err.strip()}")
    return out


def cib_versions():
    """The CIB's version now: ``{'admin_epoch': .., 'epoch': .., 'num_updates': ..}``.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.cib_versions
    """
    rc, out, err = _run(["cibadmin", "--query", "--xpath", "/cib", "--no-children"])
    if rc != 0:
        raise CrmError(f"cibadmin --query failed (rc={rc}): {err.strip()}")
    vers = _versions(_parse_cib(out))
    return dict(zip(("admin_epoch", "epoch", "num_updates"), vers))


def agent_metadata(agent):
    """Parameters and actions a resource agent advertises (``crm_resource --show-metadata``).

    Returns ``{'params': {name: {'required': bool, 'unique': bool}}, 'actions': [...]}``; cached
    for the run.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.agent_metadata ocf:heartbeat:IPaddr2
    """
    cache = __context__.setdefault(META_KEY, {})
    if agent in cache:
        return cache[agent]
    try:
        split_agent(agent)
    except ValueError as exc:
        raise AgentNotFoundError(str(exc)) from None
    rc, out, err = _run(["crm_resource", "--show-metadata", agent])
    if rc != 0 or "<resource-agent" not in out:
        raise AgentNotFoundError(f"resource agent {agent} is not installed on this node"
                                 f" (crm_resource --show-metadata: {err.strip() or 'rc=' + str(rc)})")
    try:
        root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", out))
    except ET.ParseError as exc:
        raise AgentNotFoundError(f"resource agent {agent}: meta-data is not valid XML ({exc})") from None
    params = {}
    for param in root.iter("parameter"):
        params[param.get("name")] = {"required": _bool_word(param.get("required", "0")) is True,
                                     "unique": _bool_word(param.get("unique", "0")) is True}
    actions = sorted({a.get("name") for a in root.iter("action") if a.get("name")})
    cache[agent] = {"params": params, "actions": actions}
    return cache[agent]


def validate_primitive(name, agent, params=None, ops=None, secret_params=None):
    """Check a primitive's agent, parameters and op names against the agent's meta-data.

    Raises an error naming the primitive and the parameter: unknown agent, unknown parameter,
    missing required parameter, op the agent does not advertise. Returns True.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.validate_primitive p_vip ocf:heartbeat:IPaddr2 params='{ip: 198.51.100.10}'
    """
    try:
        meta = agent_metadata(agent)
    except AgentNotFoundError as exc:
        raise AgentNotFoundError(f"primitive {name}: {exc}") from None
    known = meta["params"]
    params = params or {}
    unknown = sorted(p for p in params if p not in known)
    if unknown:
        raise CrmError(f"primitive {name}: parameter(s) {', '.join(repr(p) for p in unknown)} not"
                       f" known by {agent} (it has: {', '.join(sorted(known)) or 'none'})")
    missing = sorted(p for p, info in known.items() if info["required"] and p not in params)
    if missing:
        raise CrmError(f"primitive {name}: required parameter(s) {', '.join(repr(p) for p in missing)}"
                       f" of {agent} not given")
    for op in ops or ():
        op_name = op["attrs"]["name"]
        if meta["actions"] and op_name not in meta["actions"]:
            raise CrmError(f"primitive {name}: op {op_name!r} is not an action of {agent} (it has:"
                           f" {', '.join(meta['actions'])})")
    return True


def node_name():
    """This node's name in the cluster (``crm_node -n``); None without a cluster (``CIB_file``).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.node_name
    """
    if os.environ.get("CIB_file"):
        return None
    rc, out, err = _run(["crm_node", "-n"], timeout=30)
    if rc != 0:
        raise CrmError(f"crm_node -n failed (rc={rc}): {err.strip()}")
    return out.strip()


def dc():
    """The name of the cluster's Designated Controller (``crmadmin -D``), or None if there is none.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.dc
    """
    if os.environ.get("CIB_file"):
        return None
    rc, out, _err = _run(["crmadmin", "-D"], timeout=30)
    match = re.search(r"Designated Controller is:\s*(\S+)", out)
    if rc != 0 or not match:
        return None
    return match.group(1)


def is_dc():
    """Whether this node is the DC (``crmadmin -D`` vs ``crm_node -n``); True with ``CIB_file``.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.is_dc
    """
    if os.environ.get("CIB_file"):
        return True
    current = dc()
    return current is not None and current == node_name()


def is_writer(writer=""):
    """Whether this minion writes the CIB.

    ``writer``: a minion id (compared with ``grains['id']``), or '' for "the Pacemaker DC"; with
    ``writer=''`` and ``CIB_file`` set there is no cluster and this process is the writer. The
    reason is in :py:func:`writer_status`.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.is_writer
        salt '*' crm.is_writer writer=ctl1
    """
    return writer_status(writer)["writer"]


def writer_status(writer=""):
    """``{'writer': bool, 'reason': str}``: who writes the CIB in this run (cached for the run).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.writer_status
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
        current, me = dc(), node_name()
        if current is None:
            status = {"writer": False, "reason": "the cluster has no DC (Designated Controller) now"}
        else:
            status = {"writer": current == me,
                      "reason": f"the writer is the DC, {current}" + ("" if current == me else f" (this is {me})")}
    cache[writer] = status
    return status


def locate(name):
    """The nodes where resource ``name`` is active now (``crm_resource --locate``); [] if none.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.locate p_glance-api
    """
    rc, out, err = _run(["crm_resource", "--locate", "--resource", name], timeout=30)
    if rc != 0:
        if "No such" in err or "not found" in err.lower():
            return []
        raise CrmError(f"crm_resource --locate --resource {name} failed (rc={rc}): {err.strip()}")
    return sorted({m.group(1) for m in re.finditer(r"is running on:\s*(\S+)", out)})


def restart(name, node=None, timeout=120):
    """Restart resource ``name`` through the cluster (``crm_resource --restart``), waiting for it.

    ``node``: only the instance on that node (clones). ``timeout``: seconds.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.restart p_glance-api
    """
    args = ["crm_resource", "--restart", "--resource", name, f"--timeout={int(timeout)}s"]
    if node:
        args += ["--node", node]
    rc, out, err = _run(args, timeout=int(timeout) + 30)
    if rc != 0:
        raise CrmError(f"crm_resource --restart --resource {name} failed (rc={rc}):"
                       f" {(err or out).strip()}")
    return True


def wait(timeout=120):
    """Wait until the cluster has no pending actions (``crm_resource --wait``), at most ``timeout`` s.

    Returns True when settled; raises if it did not settle in time.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.wait timeout=60
    """
    if os.environ.get("CIB_file"):
        return True
    rc, out, err = _run(["crm_resource", "--wait", f"--timeout={int(timeout)}s"], timeout=int(timeout) + 30)
    if rc != 0:
        raise CrmError(f"the cluster did not settle within {int(timeout)} s (crm_resource --wait,"
                       f" rc={rc}): {(err or out).strip()}")
    return True


def verify(cib=None):
    """Validate a CIB with ``crm_verify``: the live/``CIB_file`` one, or the XML text ``cib``.

    Returns ``{'valid': bool, 'output': str}``.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.verify
    """
    if cib is None:
        rc, out, err = _run(["crm_verify", "-V", "--live-check"])
        return {"valid": rc == 0, "output": (out + err).strip()}
    with _private_dir() as tmp:
        path = _write_private(tmp, "cib.xml", cib)
        rc, out, err = _run(["crm_verify", "-V", "--xml-file", path])
        return {"valid": rc == 0, "output": " ".join((out + " " + err).replace(path, "<staged CIB>").split())}


class _private_dir:
    """A 0700 temporary directory removed on exit (files with secrets never lie around)."""

    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="salt-crm-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def _write_private(directory, name, text):
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


# ---------------------------------------------------------------------------------------------
# The run's transaction
# ---------------------------------------------------------------------------------------------

def _txn():
    return __context__.get(TXN_KEY)


def _new_txn(xml):
    root = _parse_cib(xml)
    txn = {"read_xml": xml, "read": root, "target": copy.deepcopy(root), "changes": {},
           "order": [], "failed": [], "secret_names": set(), "secrets": set(),
           "staged_specs": {}, "notes": []}
    _collect_secrets(txn, root)
    __context__[TXN_KEY] = txn
    return txn


def _collect_secrets(txn, root, names=None):
    """Remember the values of every secret-named nvpair of the CIB, to mask them in any output."""
    extra = set(names or ()) | txn["secret_names"]
    for pair in _config(root).iter("nvpair"):
        if is_secret(pair.get("name", ""), extra) and pair.get("value"):
            txn["secrets"].add(pair.get("value"))


def begin(refresh=False):
    """Open the run's transaction: read the CIB once (later calls in the same run reuse it).

    Returns the CIB version read and what is staged so far.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.begin
    """
    txn = _txn()
    if txn is None or refresh:
        txn = _new_txn(query())
    return {"versions": _fmt_versions(_versions(txn["read"])), "staged": list(txn["order"])}


def discard():
    """Drop the run's transaction and everything staged in it (nothing is written).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.discard
    """
    __context__.pop(TXN_KEY, None)
    return True


def pending():
    """The changes staged in the run's transaction, per object id (secrets masked).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.pending
    """
    txn = _txn()
    if txn is None:
        return {}
    return {obj_id: txn["changes"][obj_id] for obj_id in txn["order"]}


def mark_failed(name):
    """Record that the state of object ``name`` failed: :py:func:`commit` then writes nothing.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.mark_failed p_vip
    """
    txn = _txn()
    if txn is None:
        begin()
        txn = _txn()
    if name not in txn["failed"]:
        txn["failed"].append(name)
    return True


def mask(text):
    """``text`` with every secret of the run's transaction masked.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.mask 'some text'
    """
    txn = _txn()
    return mask_text(text, txn["secrets"] if txn else ())


def stage(objtype, name, secret_params=None, agent_pending=False, **spec):
    """Compare one declared object with the CIB and stage the correction in the run's transaction.

    ``objtype``: primitive, group, colocation, order, property, absent. ``spec`` holds the object's
    declaration (see the states). Returns ``{'id', 'changes', 'comment'}``; ``changes`` is empty when
    the CIB already matches. Raises a masked error naming the object (and parameter) on bad input;
    nothing is staged then. Nothing is written: see :py:func:`commit`.

    ``agent_pending``: the agent is being installed in this (test) run; if it is missing, skip the
    parameter validation instead of failing.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.stage primitive p_vip agent=ocf:heartbeat:IPaddr2 params='{ip: 198.51.100.10}'
    """
    spec = {k: v for k, v in spec.items() if not str(k).startswith("__")}
    begin()
    txn = _txn()
    names = {str(p) for p in (secret_params or ())}
    if names - txn["secret_names"]:
        txn["secret_names"] |= names
        _collect_secrets(txn, txn["read"], names)
    handler = _STAGERS.get(objtype)
    if handler is None:
        raise CrmError(f"unknown object type {objtype!r} (one of {', '.join(sorted(_STAGERS))})")
    try:
        result = handler(txn, name, spec, names, agent_pending)
    except CrmError as exc:
        raise type(exc)(mask_text(str(exc), txn["secrets"])) from None
    if result["changes"]:
        obj_id = result["id"]
        previous = txn["staged_specs"].get(obj_id)
        if previous is not None and previous != (objtype, repr(sorted(spec.items()))):
            raise CrmError(f"{objtype} {name}: declared twice in this run with different content")
        txn["staged_specs"][obj_id] = (objtype, repr(sorted(spec.items())))
        txn["changes"][obj_id] = result["changes"]
        if obj_id not in txn["order"]:
            txn["order"].append(obj_id)
    result["changes"] = _mask_data(result["changes"], txn["secrets"])
    return result


def _stage_primitive(txn, name, spec, secret_names, agent_pending):
    _check_id("primitive", name)
    unknown = set(spec) - {"agent", "params", "meta", "ops", "utilization", "description"}
    if unknown:
        raise CrmError(f"primitive {name}: unknown argument(s) {', '.join(sorted(unknown))}")
    agent = spec.get("agent")
    try:
        cls, provider, typ = split_agent(agent)
    except ValueError as exc:
        raise CrmError(f"primitive {name}: {exc}") from None
    params = _scalars("primitive", name, "params", spec.get("params"))
    meta = _scalars("primitive", name, "meta", spec.get("meta"))
    utilization = _scalars("primitive", name, "utilization", spec.get("utilization"))
    ops = _declared_ops(name, spec.get("ops"))
    description = spec.get("description")
    for key, value in params.items():
        if is_secret(key, secret_names):
            txn["secrets"].add(value)
    target = txn["target"]
    elem = _find_by_id(target, name)
    if elem is not None and elem.tag != "primitive":
        raise CrmError(f"primitive {name}: the id {name!r} is already used by a <{elem.tag}>")
    want = {"agent": agent, "params": params, "meta": meta, "utilization": utilization,
            "ops": ops, "description": None if description is None else str(description)}
    if elem is not None and _primitive_matches(elem, want):
        return {"id": name, "changes": {}, "comment": f"primitive {name} is as declared"}
    note = ""
    try:
        validate_primitive(name, agent, params, ops)
    except AgentNotFoundError:
        if not agent_pending:
            raise
        note = (f" (agent {agent} is not installed yet; a state of this run installs it, so its"
                " parameters are validated when applied for real)")
    before = _internal(elem) if elem is not None else None
    ids = _all_ids(target)
    if elem is None:
        attrs = {"id": name, "class": cls}
        if provider:
            attrs["provider"] = provider
        attrs["type"] = typ
        elem = ET.SubElement(_section(target, "resources", create=True), "primitive", attrs)
    else:
        for key, value in (("class", cls), ("provider", provider), ("type", typ)):
            if value is None:
                elem.attrib.pop(key, None)
            elif elem.get(key) != value:
                elem.set(key, value)
    if description is not None:
        elem.set("description", str(description))
    _nv_write(elem, "instance_attributes", params, ids, name)
    _nv_write(elem, "meta_attributes", meta, ids, name, keep=OPERATIONAL_META)
    _nv_write(elem, "utilization", utilization, ids, name)
    _write_ops(elem, ops, ids, name)
    if not _primitive_matches(elem, want):  # pragma: no cover - a bug, never a silent bad write
        raise CrmError(f"primitive {name}: internal error, the staged element does not match")
    after = _internal(elem)
    changes = ({"old": None, "new": _display(after, secret_names)} if before is None
               else _diff(before, after, secret_names))
    return {"id": name, "changes": changes, "comment": f"primitive {name} staged{note}", "note": note.strip()}


def _primitive_matches(elem, want):
    if _agent_of(elem) != want["agent"]:
        return False
    if want["description"] is not None and elem.get("description") != want["description"]:
        return False
    if not _nv_equal(_nv_read(elem, "instance_attributes"), want["params"]):
        return False
    if not _nv_equal(_nv_read(elem, "meta_attributes"), want["meta"], keep=OPERATIONAL_META):
        return False
    if not _nv_equal(_nv_read(elem, "utilization"), want["utilization"]):
        return False
    ops_elem = elem.find("operations")
    current = [_norm_op_elem(op) for op in (ops_elem.findall("op") if ops_elem is not None else [])]
    return _ops_equal(current, want["ops"])


def _write_ops(elem, ops, ids, name):
    ops_elem = elem.find("operations")
    current = [_norm_op_elem(op) for op in (ops_elem.findall("op") if ops_elem is not None else [])]
    if ops_elem is None and not ops:
        return
    if ops_elem is None:
        ops_elem = ET.SubElement(elem, "operations")
    by_id = {op.get("id"): op for op in ops_elem.findall("op")}
    pairs, left_cur, left_want = _match_ops(current, ops)
    for cur, want in pairs:
        if _op_equal(cur, want):
            continue
        op = by_id[cur["id"]]
        for attr in list(op.attrib):
            if attr != "id" and attr not in want["attrs"]:
                del op.attrib[attr]
        for attr, value in want["attrs"].items():
            if not same_value(attr, op.get(attr), value):
                op.set(attr, value)
        _nv_write(op, "instance_attributes", want["params"], ids, cur["id"])
        _nv_write(op, "meta_attributes", want["meta"], ids, cur["id"])
    for cur in left_cur:
        ops_elem.remove(by_id[cur["id"]])
    for want in left_want:
        interval = _fmt_ms(parse_duration_ms(want["attrs"]["interval"]) or 0)
        role = want["attrs"].get("role")
        base = f"{name}-{want['attrs']['name']}-{interval}" + (f"-{role}" if role else "")
        attrs = {"id": _unique_id(base, ids)}
        attrs.update(sorted(want["attrs"].items(), key=lambda kv: OP_ATTRS.index(kv[0])))
        op = ET.SubElement(ops_elem, "op", attrs)
        _nv_write(op, "instance_attributes", want["params"], ids, attrs["id"])
        _nv_write(op, "meta_attributes", want["meta"], ids, attrs["id"])
    if len(ops_elem) == 0:
        elem.remove(ops_elem)


def _stage_group(txn, name, spec, secret_names, agent_pending):
    _check_id("group", name)
    unknown = set(spec) - {"members", "meta", "description"}
    if unknown:
        raise CrmError(f"group {name}: unknown argument(s) {', '.join(sorted(unknown))}")
    members = spec.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise CrmError(f"group {name}: members must be a non-empty list of primitive ids")
    if len(set(members)) != len(members):
        raise CrmError(f"group {name}: a member is listed twice")
    meta = _scalars("group", name, "meta", spec.get("meta"))
    description = spec.get("description")
    target = txn["target"]
    elem = _find_by_id(target, name)
    if elem is not None and elem.tag != "group":
        raise CrmError(f"group {name}: the id {name!r} is already used by a <{elem.tag}>")
    parents = _parents(target)
    for member in members:
        prim = _find_by_id(target, member)
        if prim is None:
            raise CrmError(f"group {name}: member {member!r} does not exist (declare it with"
                           " crm.primitive_present before the group)")
        if prim.tag != "primitive":
            raise CrmError(f"group {name}: member {member!r} is a <{prim.tag}>, not a primitive")
        parent = parents.get(prim)
        if parent is not None and parent.tag not in ("resources", "group"):
            raise CrmError(f"group {name}: member {member!r} is inside a <{parent.tag}>")

    def matches(group):
        current = [c.get("id") for c in group if c.tag == "primitive"]
        return (current == members
                and _nv_equal(_nv_read(group, "meta_attributes"), meta, keep=OPERATIONAL_META)
                and (description is None or group.get("description") == str(description)))

    if elem is not None and matches(elem):
        return {"id": name, "changes": {}, "comment": f"group {name} is as declared"}
    before = _internal(elem) if elem is not None else None
    ids = _all_ids(target)
    resources = _section(target, "resources", create=True)
    if elem is None:
        elem = ET.SubElement(resources, "group", {"id": name})
    if description is not None:
        elem.set("description", str(description))
    _nv_write(elem, "meta_attributes", meta, ids, name, keep=OPERATIONAL_META)
    for child in [c for c in elem if c.tag == "primitive" and c.get("id") not in members]:
        elem.remove(child)
        resources.append(child)
    parents = _parents(target)
    for member in members:
        prim = _find_by_id(target, member)
        parents[prim].remove(prim)
        elem.append(prim)
    for other in list(resources.findall("group")):
        if other is not elem and not other.findall("primitive"):
            raise CrmError(f"group {name}: taking {', '.join(members)} would leave group"
                           f" {other.get('id')} empty")
    after = _internal(elem)
    changes = {"old": None, "new": _display(after)} if before is None else _diff(before, after)
    return {"id": name, "changes": changes, "comment": f"group {name} staged"}


def _stage_constraint(tag, kind, txn, name, wanted, allowed_extra=()):
    _check_id(kind, name)
    target = txn["target"]
    elem = _find_by_id(target, name)
    if elem is not None and elem.tag != tag:
        raise CrmError(f"{kind} {name}: the id {name!r} is already used by a <{elem.tag}>")

    def matches(con):
        if con.findall("resource_set"):
            return False
        current = {k: v for k, v in con.attrib.items() if k != "id"}
        for key in set(current) | set(wanted):
            if not same_value(key, current.get(key), wanted.get(key)):
                if key in allowed_extra and key not in wanted and _default_equal(key, current.get(key), wanted):
                    continue
                return False
        return True

    if elem is not None and matches(elem):
        return {"id": name, "changes": {}, "comment": f"{kind} {name} is as declared"}
    before = _internal(elem) if elem is not None else None
    if elem is None:
        elem = ET.SubElement(_section(target, "constraints", create=True), tag, {"id": name})
    for child in list(elem):
        elem.remove(child)
    for attr in list(elem.attrib):
        if attr != "id" and attr not in wanted:
            del elem.attrib[attr]
    for attr, value in wanted.items():
        if not same_value(attr, elem.get(attr), value):
            elem.set(attr, value)
    after = _internal(elem)
    changes = {"old": None, "new": _display(after)} if before is None else _diff(before, after)
    return {"id": name, "changes": changes, "comment": f"{kind} {name} staged"}


def _default_equal(key, current, wanted):
    """An attribute present in the CIB but not declared, whose value is Pacemaker's default."""
    defaults = {"node-attribute": "#uname", "symmetrical": "true", "first-action": "start",
                "rsc-role": "Started", "with-rsc-role": "Started", "influence": "true"}
    if key == "then-action":
        return same_value(key, current, wanted.get("first-action", "start"))
    return key in defaults and same_value(key, current, defaults[key])


def _stage_colocation(txn, name, spec, secret_names, agent_pending):
    unknown = set(spec) - {"rsc", "with_rsc", "resources", "score", "rsc_role", "with_rsc_role",
                           "node_attribute", "influence"}
    if unknown:
        raise CrmError(f"colocation {name}: unknown argument(s) {', '.join(sorted(unknown))}")
    rsc, with_rsc = spec.get("rsc"), spec.get("with_rsc")
    if spec.get("resources") is not None:
        res = spec["resources"]
        if not isinstance(res, list) or len(res) != 2:
            raise CrmError(f"colocation {name}: resources must list exactly two ids [rsc, with_rsc]"
                           " (rsc is placed where with_rsc runs)")
        rsc, with_rsc = res
    if not rsc or not with_rsc:
        raise CrmError(f"colocation {name}: rsc and with_rsc are required")
    score = canon_score(spec.get("score", "INFINITY"))
    if score is None:
        raise CrmError(f"colocation {name}: score {spec.get('score')!r} is not a score (integer,"
                       " INFINITY or -INFINITY)")
    wanted = {"rsc": str(rsc), "with-rsc": str(with_rsc), "score": score}
    for key, attr in (("rsc_role", "rsc-role"), ("with_rsc_role", "with-rsc-role")):
        if spec.get(key) is not None:
            role = _canon_role(spec[key])
            if role is None:
                raise CrmError(f"colocation {name}: {key} {spec[key]!r} is not a role")
            wanted[attr] = role
    if spec.get("node_attribute") is not None:
        wanted["node-attribute"] = str(spec["node_attribute"])
    if spec.get("influence") is not None:
        wanted["influence"] = _to_text(spec["influence"])
    return _stage_constraint("rsc_colocation", "colocation", txn, name, wanted,
                             allowed_extra=("rsc-role", "with-rsc-role", "node-attribute", "influence"))


def _stage_order(txn, name, spec, secret_names, agent_pending):
    unknown = set(spec) - {"first", "then", "resources", "kind", "symmetrical", "first_action",
                           "then_action", "require_all"}
    if unknown:
        raise CrmError(f"order {name}: unknown argument(s) {', '.join(sorted(unknown))}")
    first, then = spec.get("first"), spec.get("then")
    if spec.get("resources") is not None:
        res = spec["resources"]
        if not isinstance(res, list) or len(res) != 2:
            raise CrmError(f"order {name}: resources must list exactly two ids [first, then]")
        first, then = res
    if not first or not then:
        raise CrmError(f"order {name}: first and then are required")
    kind = str(spec.get("kind") or "Mandatory").capitalize()
    if kind not in ORDER_KINDS:
        raise CrmError(f"order {name}: kind {spec.get('kind')!r} is not one of {', '.join(ORDER_KINDS)}")
    wanted = {"first": str(first), "then": str(then), "kind": kind}
    for key, attr in (("first_action", "first-action"), ("then_action", "then-action")):
        if spec.get(key) is not None:
            if spec[key] not in RESOURCE_ACTIONS:
                raise CrmError(f"order {name}: {key} {spec[key]!r} is not one of"
                               f" {', '.join(RESOURCE_ACTIONS)}")
            wanted[attr] = spec[key]
    for key, attr in (("symmetrical", "symmetrical"), ("require_all", "require-all")):
        if spec.get(key) is not None:
            wanted[attr] = _to_text(spec[key])
    return _stage_constraint("rsc_order", "order", txn, name, wanted,
                             allowed_extra=("symmetrical", "first-action", "then-action"))


def _stage_property(txn, name, spec, secret_names, agent_pending):
    unknown = set(spec) - {"properties", "type", "set_id"}
    if unknown:
        raise CrmError(f"property {name}: unknown argument(s) {', '.join(sorted(unknown))}")
    kind = spec.get("type") or "cluster"
    if kind not in PROPERTY_SECTIONS:
        raise CrmError(f"property {name}: type {kind!r} is not one of cluster, rsc_defaults, op_defaults")
    section_tag, set_tag, default_set = PROPERTY_SECTIONS[kind]
    props = _scalars("property", name, "properties", spec.get("properties"))
    if not props:
        raise CrmError(f"property {name}: no properties declared")
    set_id = spec.get("set_id") or default_set
    _check_id("property set", set_id)
    target = txn["target"]
    section = _section(target, section_tag)
    pairs = {}
    if section is not None:
        for nvset in _plain_sets(section, set_tag):
            for pair in nvset.findall("nvpair"):
                pairs.setdefault(pair.get("name"), pair)
    differs = {k: v for k, v in props.items()
               if k not in pairs or not same_value(k, pairs[k].get("value"), v)}
    if not differs:
        return {"id": f"{section_tag}:{set_id}", "changes": {},
                "comment": f"{kind} properties {', '.join(sorted(props))} are as declared"}
    section = _section(target, section_tag, create=True)
    ids = _all_ids(target)
    changes = {}
    for key, value in differs.items():
        if key in pairs:
            changes[key] = {"old": pairs[key].get("value"), "new": value}
            pairs[key].set("value", value)
            continue
        nvset = next((s for s in section.findall(set_tag) if s.get("id") == set_id), None)
        if nvset is None:
            existing = _find_by_id(target, set_id)
            if existing is not None:
                raise CrmError(f"property {name}: the id {set_id!r} is already used by a <{existing.tag}>")
            nvset = ET.SubElement(section, set_tag, {"id": set_id})
            ids.add(set_id)
        ET.SubElement(nvset, "nvpair", {"id": _unique_id(f"{set_id}-{key}", ids), "name": key,
                                        "value": value})
        changes[key] = {"old": None, "new": value}
    return {"id": f"{section_tag}:{set_id}", "changes": {kind: changes},
            "comment": f"{kind} properties staged"}


def _stage_absent(txn, name, spec, secret_names, agent_pending):
    if spec:
        raise CrmError(f"absent {name}: unknown argument(s) {', '.join(sorted(spec))}")
    target = txn["target"]
    elem = _find_by_id(target, name)
    if elem is None:
        return {"id": name, "changes": {}, "comment": f"{name} is absent"}
    parents = _parents(target)
    parent = parents.get(elem)
    if elem.tag not in RESOURCE_TAGS | CONSTRAINT_TAGS:
        raise CrmError(f"absent {name}: {name!r} is a <{elem.tag}>; only resources and constraints"
                       " can be removed with crm.absent")
    before = _display(_internal(elem), secret_names)
    parent.remove(elem)
    if parent.tag == "group" and not parent.findall("primitive"):
        raise CrmError(f"absent {name}: it is the last member of group {parent.get('id')}; declare"
                       " the group absent instead")
    return {"id": name, "changes": {"old": before, "new": None},
            "comment": f"{elem.tag} {name} staged for removal"}


_STAGERS = {"primitive": _stage_primitive, "group": _stage_group, "colocation": _stage_colocation,
            "order": _stage_order, "property": _stage_property, "absent": _stage_absent}


def _references(root):
    """{constraint id: [resource ids it refers to]}."""
    refs = {}
    cons = _section(root, "constraints")
    if cons is None:
        return refs
    for con in cons:
        if not isinstance(con.tag, str):
            continue
        ids = [con.get(a) for a in ("rsc", "with-rsc", "first", "then") if con.get(a)]
        ids += [ref.get("id") for ref in con.iter("resource_ref")]
        refs[con.get("id")] = ids
    return refs


def _resource_ids(root):
    res = _section(root, "resources")
    return {e.get("id") for e in (res.iter() if res is not None else []) if e.tag in RESOURCE_TAGS}


def _check_references(txn):
    """Constraints of the staged CIB must only name resources that exist (after this transaction)."""
    existing = _resource_ids(txn["target"])
    before = _references(txn["read"])
    problems = []
    for con_id, ids in sorted(_references(txn["target"]).items()):
        for rid in ids:
            if rid not in existing and (con_id in txn["order"] or rid in txn["order"]
                                        or rid not in before.get(con_id, [])):
                why = "which this run removes" if rid in txn["order"] else "which does not exist"
                problems.append(f"constraint {con_id} refers to resource {rid} {why}")
    if problems:
        raise CrmError("; ".join(problems) + " (declare the resource, or declare the constraint absent)")


def commit(test=False, writer=""):
    """Write everything staged in the run's transaction as ONE validated CIB patch.

    Validates the staged CIB (``crm_verify``), then, on the writer only, builds the patch
    (``crm_diff`` against the CIB that was read) and applies it with one ``cibadmin --patch``.
    Pacemaker refuses the patch if the configuration changed since the read: the call then fails
    with a clear message and nothing is overwritten. ``test=True`` validates and writes nothing.

    Returns ``{'result': True|False|None, 'comment': str, 'changes': {...}}`` (secrets masked).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.commit test=True
    """
    txn = _txn()
    if txn is None or (not txn["order"] and not txn["failed"]):
        return {"result": True, "changes": {}, "comment": "Nothing to write: the CIB is as declared"}
    secrets = txn["secrets"]
    if txn["failed"]:
        return {"result": False, "changes": {},
                "comment": "Nothing written: the declaration of {} failed (see those states); the"
                           " transaction is all or nothing".format(", ".join(txn["failed"]))}
    staged = ", ".join(txn["order"])
    read_vers = _versions(txn["read"])
    status = writer_status(writer)
    if not status["writer"]:
        return {"result": True, "changes": {},
                "comment": f"Not the writer ({status['reason']}): {staged} not written from this node"}
    try:
        _check_references(txn)
        target = copy.deepcopy(txn["target"])
        target.set("num_updates", str(read_vers[2] + 1))
        target_xml = _to_xml(target)
        check = verify(target_xml)
        if not check["valid"]:
            if not verify(txn["read_xml"])["valid"]:
                raise CrmError("the cluster configuration was already invalid before this run (fix it"
                               f" first, e.g. stonith-enabled with no fencing device): {check['output']}")
            raise CrmError(f"crm_verify rejects the staged CIB ({staged}): {check['output']}")
    except CrmError as exc:
        return {"result": False, "changes": {}, "comment": "Nothing written: " + mask_text(str(exc), secrets)}
    if test:
        return {"result": None, "changes": {},
                "comment": f"Would write {len(txn['order'])} object(s) in one transaction: {staged}"
                           " (crm_verify: valid)"}
    try:
        new_vers = _write(txn, target_xml)
    except CrmError as exc:
        return {"result": False, "changes": {}, "comment": mask_text(str(exc), secrets)}
    written = {obj_id: txn["changes"][obj_id] for obj_id in txn["order"]}
    __context__[LAST_KEY] = {"objects": _mask_data(written, secrets),
                             "versions": {"old": _fmt_versions(read_vers), "new": _fmt_versions(new_vers)}}
    __context__.pop(TXN_KEY, None)
    return {"result": True,
            "changes": {"written": list(txn["order"]),
                        "cib_version": {"old": _fmt_versions(read_vers), "new": _fmt_versions(new_vers)}},
            "comment": f"Wrote {len(txn['order'])} object(s) in one transaction: {staged}"}


def _write(txn, target_xml, attempts=3):
    """Patch the CIB; on a version conflict that is only a status update, rebuild and retry."""
    read_xml = txn["read_xml"]
    read_root = txn["read"]
    secrets = txn["secrets"]
    for _attempt in range(attempts):
        with _private_dir() as tmp:
            old_path = _write_private(tmp, "read.xml", read_xml)
            new_path = _write_private(tmp, "target.xml", target_xml)
            rc, patch, err = _run(["crm_diff", "--original", old_path, "--new", new_path], secrets=secrets)
        if rc == 0:
            return _versions(read_root)
        if rc != 1 or "<diff" not in patch:
            raise CrmError(f"Nothing written: crm_diff failed (rc={rc}): {err.strip()}")
        _check_patch_scope(patch)
        rc, _out, err = _run(["cibadmin", "--patch", "--xml-pipe"], stdin=patch, secrets=secrets)
        if rc == 0:
            now = cib_versions()
            return now["admin_epoch"], now["epoch"], now["num_updates"]
        fresh_xml = query()
        fresh = _parse_cib(fresh_xml)
        old_conf = ET.canonicalize(_to_xml(_config(read_root)), strip_text=True)
        new_conf = ET.canonicalize(_to_xml(_config(fresh)), strip_text=True)
        if _versions(fresh)[:2] != _versions(read_root)[:2] or old_conf != new_conf:
            raise ConcurrentChangeError(
                "Nothing written: the CIB configuration changed since this run read it (version"
                f" {_fmt_versions(_versions(read_root))} -> {_fmt_versions(_versions(fresh))}); someone"
                " else wrote it, so it is not overwritten. Re-run to reconcile against the new"
                f" configuration. (cibadmin --patch rc={rc}: {mask_text(err.strip(), secrets)})")
        # Only the status section moved on (num_updates): rebase the staged configuration on it.
        target = copy.deepcopy(fresh)
        conf_index = list(target).index(_config(target))
        target.remove(_config(target))
        target.insert(conf_index, copy.deepcopy(_config(_parse_cib(target_xml))))
        target.set("num_updates", str(_versions(fresh)[2] + 1))
        read_xml, read_root, target_xml = fresh_xml, fresh, _to_xml(target)
    raise CrmError(f"Nothing written: the CIB status kept changing; gave up after {attempts} attempts")


def _check_patch_scope(patch):
    """The patch may only touch the configuration section (never status, never the versions)."""
    root = ET.fromstring(patch)
    for change in root.iter("change"):
        path = change.get("path", "")
        if path.startswith("/cib/configuration"):
            continue
        attrs = {c.get("name") for c in change.iter("change-attr")}
        if path == "/cib" and change.get("operation") == "modify" and attrs <= {"num_updates", "epoch"}:
            continue  # crm_diff records the version bump of the <cib> element itself
        raise CrmError(f"Nothing written: internal error, the patch would touch {path}")


def last_commit():
    """What the last successful :py:func:`commit` of this run wrote (objects and CIB versions).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.last_commit
    """
    return __context__.get(LAST_KEY, {})


def get(name):
    """The normalised form of configuration object ``name`` (secret parameters masked), or None.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.get p_glance-api
    """
    root = _parse_cib(query())
    elem = _find_by_id(root, name)
    return None if elem is None else _normalise(elem)


def show(kind=None):
    """All resources and constraints (and property sets), normalised, secrets masked.

    ``kind``: only this type (primitive, group, colocation, order, location, property, ...).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.show
        salt '*' crm.show kind=primitive
    """
    root = _parse_cib(query())
    out = {}
    for tag in ("crm_config", "rsc_defaults", "op_defaults", "resources", "constraints"):
        section = _section(root, tag)
        if section is None:
            continue
        for elem in section.iter():
            if elem is section or not isinstance(elem.tag, str) or not elem.get("id"):
                continue
            if elem.tag in ("nvpair", "op", "instance_attributes", "utilization", "resource_set",
                            "resource_ref", "rule", "expression", "date_expression", "operations"):
                continue
            if elem.tag == "meta_attributes" and tag not in ("rsc_defaults", "op_defaults"):
                continue
            norm = _normalise(elem)
            if kind is None or norm["type"] == kind:
                out[elem.get("id")] = norm
    return out


def diff(objtype, name, secret_params=None, **spec):
    """What staging object ``name`` would change, without keeping it staged or writing.

    CLI Example:

    .. code-block:: bash

        salt '*' crm.diff primitive p_vip agent=ocf:heartbeat:IPaddr2 params='{ip: 198.51.100.10}'
    """
    saved = __context__.get(TXN_KEY)
    try:
        __context__.pop(TXN_KEY, None)
        return stage(objtype, name, secret_params=secret_params, **spec)["changes"]
    finally:
        if saved is None:
            __context__.pop(TXN_KEY, None)
        else:
            __context__[TXN_KEY] = saved


def apply(objects, test=False, writer="", secret_params=None):
    """Reconcile a list of objects in one transaction: read once, stage each, write once.

    ``objects``: list of ``{objtype: ..., name: ..., <declaration>}`` (as in :py:func:`stage`).

    CLI Example:

    .. code-block:: bash

        salt '*' crm.apply '[{objtype: property, name: p, properties: {stonith-enabled: false}}]'
    """
    discard()
    begin()
    changes = {}
    try:
        for obj in objects:
            obj = dict(obj)
            objtype, name = obj.pop("objtype"), obj.pop("name")
            staged = stage(objtype, name, secret_params=secret_params, **obj)
            if staged["changes"]:
                changes[staged["id"]] = staged["changes"]
    except CommandExecutionError as exc:
        discard()
        return {"result": False, "changes": {}, "comment": f"Nothing written: {exc}"}
    ret = commit(test=test, writer=writer)
    ret["objects"] = changes
    discard()
    return ret
