"""
One CIB transaction, in memory: declared objects are checked, compared with the CIB that was read
(by normalised content, :mod:`pcmk_cib`) and corrected *in place* in a copy of it, keeping every
element, nvpair and op id. Nothing here reads or writes the CIB or runs a tool: the CIB text, the
agents' meta-data and the secret parameter names are handed in.

    txn = Transaction(cib_xml, secret_params)
    txn.stage("primitive", "p_vip", agent=..., params=..., ops=...)   # one call per object
    txn.validate(metadata)      # {agent: parsed meta-data, or a reason it is missing}
    txn.check_references()
    txn.target_xml()            # the staged CIB: crm_verify it, crm_diff it against txn.read_xml

Object types and their arguments are those of the ``crm.*_present`` states: primitive, group,
clone, colocation, order, property, absent. Pure: no Salt dunders, no subprocess.
"""

import copy
import importlib.util
import os
import xml.etree.ElementTree as ET


def _cib():
    """pcmk_cib by path (Salt's loader gives _utils no package); its ``sibling`` keeps one copy."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pcmk_cib.py")
    spec = importlib.util.spec_from_file_location("_glance_ha_utils.pcmk_cib_loader", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.sibling("pcmk_cib")


cib = _cib()
values, secrets = cib.values, cib.secrets
PcmkError = values.PcmkError

# What an owner tag (:meth:`Transaction.own`) holds: the resources and constraints declared.
OWNABLE = ("primitive", "group", "clone", "colocation", "order")
TYPES = ("primitive", "group", "clone", "colocation", "order", "property", "property_absent", "absent")
PROPERTY_SECTIONS = {
    "cluster": ("crm_config", "cluster_property_set", "cib-bootstrap-options"),
    "crm_config": ("crm_config", "cluster_property_set", "cib-bootstrap-options"),
    "rsc_defaults": ("rsc_defaults", "meta_attributes", "rsc-options"),
    "op_defaults": ("op_defaults", "meta_attributes", "op-options"),
}
ORDER_KINDS = ("Mandatory", "Optional", "Serialize")
RESOURCE_ACTIONS = ("start", "stop", "promote", "demote")
ARGUMENTS = {
    "primitive": {"agent", "params", "meta", "ops", "utilization", "description"},
    "group": {"members", "meta", "description"},
    "clone": {"rsc", "meta", "description"},
    "colocation": {"rsc", "with_rsc", "resources", "score", "rsc_role", "with_rsc_role", "node_attribute",
                   "influence"},
    "order": {"first", "then", "resources", "kind", "symmetrical", "first_action", "then_action",
              "require_all"},
    "property": {"properties", "type", "set_id"},
    "property_absent": {"properties", "type"},
    "absent": set(),
}
# Constraint attributes Pacemaker may add with its default value: not a difference when undeclared.
DEFAULTS = {"node-attribute": "#uname", "symmetrical": "true", "first-action": "start",
            "rsc-role": "Started", "with-rsc-role": "Started", "influence": "true"}


def split_item(item):
    """(objtype, name, spec) of one item of an object list: ``{<objtype>: <name>, <argument>: ...}``,
    the arguments being those of ``crm.<objtype>_present`` (``crm.absent`` for absent)."""
    if not isinstance(item, dict):
        raise PcmkError(f"object {item!r}: must be a mapping {{<type>: <id>, <argument>: ...}}")
    kinds = [k for k in item if k in TYPES]
    if len(kinds) != 1:
        raise PcmkError(f"object {item!r}: needs exactly one of {', '.join(TYPES)} (its id)")
    objtype = kinds[0]
    name = item[objtype]
    spec = {str(k): v for k, v in item.items() if k != objtype}
    if objtype == "property" and spec.get("properties") is None and "value" in spec:
        spec["properties"] = {name: spec.pop("value")}
    return objtype, name, spec


def check_id(kind, name):
    if not values.is_id(name):
        raise PcmkError(f"{kind} {name!r}: not a valid Pacemaker id (letters, digits, '_', '.', '-';"
                        " not starting with a digit)")


def scalars(kind, name, what, data):
    """{str: str} of a declared mapping of scalars (None is {})."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise PcmkError(f"{kind} {name}: {what} must be a mapping of name: value")
    out = {}
    for key, value in data.items():
        try:
            out[str(key)] = values.to_text(value)
        except ValueError:
            raise PcmkError(f"{kind} {name}: {what} {key!r} must be a scalar (string, number or"
                            " boolean)") from None
    return out


def declared_ops(name, ops):
    """Declared ops (a list of dicts, or a mapping {op name: attrs}) in normalised form."""
    if ops is None:
        return []
    if isinstance(ops, dict):
        ops = [dict(attrs or {}, name=op_name) for op_name, attrs in ops.items()]
    if not isinstance(ops, list):
        raise PcmkError(f"primitive {name}: ops must be a list of {{name: ..., interval: ...}} or a"
                        " mapping {op name: {interval: ..., timeout: ...}}")
    out = [_declared_op(name, raw) for raw in ops]
    keys = [op["key"] for op in out]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise PcmkError(f"primitive {name}: op(s) {', '.join(dupes)} declared more than once")
    return out


def _declared_op(name, raw):
    if not isinstance(raw, dict) or not raw.get("name"):
        raise PcmkError(f"primitive {name}: every op needs a name (e.g. {{name: monitor, interval: 30s}})")
    op_name = str(raw["name"])
    attrs, params, meta = {"name": op_name}, {}, {}
    for key, value in raw.items():
        if key == "name":
            continue
        if key in ("params", "instance_attributes"):
            params.update(scalars("primitive", name, f"op {op_name} params", value))
            continue
        if key in ("meta", "meta_attributes"):
            meta.update(scalars("primitive", name, f"op {op_name} meta", value))
            continue
        if str(key).isupper():  # OCF_CHECK_LEVEL and other agent variables
            params.update(scalars("primitive", name, f"op {op_name} params", {key: value}))
            continue
        attr = str(key).replace("_", "-")
        if attr not in cib.OP_ATTRS:
            raise PcmkError(f"primitive {name}: op {op_name}: unknown attribute {key!r} (known:"
                            f" {', '.join(cib.OP_ATTRS[1:])}; agent parameters go under params:)")
        try:
            attrs[attr] = values.to_text(value)
        except ValueError:
            raise PcmkError(f"primitive {name}: op {op_name}: {key} must be a scalar") from None
    if "interval" not in attrs:
        if op_name == "monitor":
            raise PcmkError(f"primitive {name}: op monitor: interval is required (e.g. 30s)")
        attrs["interval"] = "0s"
    for attr in values.DURATION_ATTRS:
        if attr in attrs:
            millis = values.parse_duration_ms(attrs[attr])
            if millis is None:
                raise PcmkError(f"primitive {name}: op {op_name}: {attr} {attrs[attr]!r} is not a valid"
                                " interval (e.g. 30s, 1min, 500ms, PT30S)")
            if attr == "timeout" and millis == 0:
                raise PcmkError(f"primitive {name}: op {op_name}: timeout must be greater than 0")
    if op_name == "monitor" and values.parse_duration_ms(attrs["interval"]) == 0:
        raise PcmkError(f"primitive {name}: op monitor: interval must be greater than 0")
    if "role" in attrs:
        role = values.canon_role(attrs["role"])
        if role is None:
            raise PcmkError(f"primitive {name}: op {op_name}: role {attrs['role']!r} is not one of"
                            " Started, Stopped, Promoted, Unpromoted")
        attrs["role"] = role
    key = cib.op_key(op_name, attrs.get("role"), values.parse_duration_ms(attrs["interval"]))
    return {"attrs": attrs, "params": params, "meta": meta, "key": key, "id": None}


def validate_primitive(name, agent, params, ops, meta):
    """Check a primitive against its agent's parsed meta-data ``meta`` (:func:`pcmk_cib.agent_metadata`):
    unknown or missing required parameters, ops the agent does not advertise."""
    known = meta["params"]
    unknown = sorted(p for p in params if p not in known)
    if unknown:
        raise PcmkError(f"primitive {name}: parameter(s) {', '.join(repr(p) for p in unknown)} not"
                        f" known by {agent} (it has: {', '.join(sorted(known)) or 'none'})")
    missing = sorted(p for p, info in known.items() if info["required"] and p not in params)
    if missing:
        raise PcmkError(f"primitive {name}: required parameter(s) {', '.join(repr(p) for p in missing)}"
                        f" of {agent} not given")
    for op in ops:
        op_name = op["attrs"]["name"]
        if meta["actions"] and op_name not in meta["actions"]:
            raise PcmkError(f"primitive {name}: op {op_name!r} is not an action of {agent} (it has:"
                            f" {', '.join(meta['actions'])})")


class Transaction:
    """The CIB that was read (``read_xml``, ``read``) and its staged copy (``target``); ``changes``
    {object id: masked diff} in ``order``; ``secrets``: every secret value seen (to mask output)."""

    def __init__(self, xml, secret_params=()):
        self.read_xml = xml
        self.read = cib.parse(xml)
        self.target = copy.deepcopy(self.read)
        self.secret_names = {str(p) for p in (secret_params or ())}
        self.secrets = cib.secret_values(self.read, self.secret_names)
        self.changes, self.order, self.notes = {}, [], []
        self._specs, self._validate, self._declared = {}, [], []

    def mask(self, text):
        return secrets.mask(text, self.secrets, self.secret_names)

    def mask_data(self, data):
        return secrets.mask_data(data, self.secrets, self.secret_names)

    def stage(self, objtype, name, **spec):
        """Compare one declared object with the staged CIB and correct it there. Returns
        ``{'id', 'changes', 'comment'}`` (masked; ``changes`` empty when it is as declared).
        Raises :class:`PcmkError` (masked, naming the object) on bad input."""
        handler = _STAGERS.get(objtype)
        if handler is None:
            raise PcmkError(f"unknown object type {objtype!r} (one of {', '.join(TYPES)})")
        unknown = set(spec) - ARGUMENTS[objtype]
        try:
            if unknown:
                raise PcmkError(f"{objtype} {name}: unknown argument(s) {', '.join(sorted(unknown))}")
            result = handler(self, name, spec)
        except PcmkError as exc:
            raise PcmkError(self.mask(str(exc))) from None
        if objtype in OWNABLE and result["id"] not in self._declared:
            self._declared.append(result["id"])
        self._record(objtype, result, spec)
        result["changes"] = self.mask_data(result["changes"])
        return result

    def _record(self, objtype, result, spec):
        if result["changes"]:
            obj_id, fingerprint = result["id"], (objtype, repr(sorted(spec.items())))
            if self._specs.setdefault(obj_id, fingerprint) != fingerprint:
                raise PcmkError(f"{objtype} {obj_id}: declared twice with different content")
            self.changes[obj_id] = self.mask_data(result["changes"])
            if obj_id not in self.order:
                self.order.append(obj_id)

    def own(self, tag_id):
        """Mark the resources and constraints declared so far (:meth:`stage`) as owned: the members of
        the CIB tag ``tag_id``, and nothing else. Owned objects that are no longer declared are staged
        for removal (constraints first), in this transaction; the tag goes when it owns nothing."""
        check_id("owner tag", tag_id)
        elem = _existing(self, "owner tag", "tag", tag_id)
        before = cib.internal(elem) if elem is not None else None
        owned = before["members"] if before else []
        stale = [i for i in owned if i not in self._declared]
        kinds = {i: getattr(cib.find_by_id(self.target, i), "tag", None) for i in stale}
        for obj_id in sorted(stale, key=lambda i: kinds[i] not in cib.CONSTRAINT_TAGS):
            if kinds[obj_id] in cib.RESOURCE_TAGS | cib.CONSTRAINT_TAGS:
                self._record("absent", _stage_absent(self, obj_id, {}), {})
        if owned == self._declared:
            return
        if elem is None:
            elem = ET.SubElement(cib.section(self.target, "tags", create=True), "tag", {"id": tag_id})
        for ref in list(elem):
            elem.remove(ref)
        for obj_id in self._declared:
            ET.SubElement(elem, "obj_ref", {"id": obj_id})
        if not self._declared:
            cib.parents(self.target)[elem].remove(elem)
        after = cib.internal(elem) if self._declared else None
        changes = {"old": None, "new": cib.display(after)} if before is None else (
            {"old": cib.display(before), "new": None} if after is None else cib.diff(before, after))
        self._record("tag", {"id": tag_id, "changes": changes}, {})

    def agents_to_validate(self):
        """The agents (set) whose meta-data :meth:`validate` needs: those of changed primitives."""
        return {agent for _name, agent, _params, _ops in self._validate}

    def validate(self, metadata, pending=None):
        """Check every changed primitive against ``metadata`` ({agent: parsed meta-data, or a str
        saying why it is missing}). An agent that is missing but listed in ``pending`` ({agent:
        where this run installs it from}) is not an error: its check is deferred, with a note."""
        for name, agent, params, ops in self._validate:
            meta = metadata.get(agent)
            if isinstance(meta, dict):
                try:
                    validate_primitive(name, agent, params, ops, meta)
                except PcmkError as exc:
                    raise PcmkError(self.mask(str(exc))) from None
            elif agent in (pending or {}):
                self.notes.append(f"agent {agent} of {name} is not installed yet (this run installs it"
                                  f" from {pending[agent]}): its parameters are checked when applied")
            else:
                raise values.AgentNotFoundError(
                    f"primitive {name}: resource agent {agent} is not installed on this node ({meta})")

    def check_references(self):
        """Constraints of the staged CIB must only name resources that exist after this transaction."""
        existing = cib.resource_ids(self.target)
        before = cib.references(self.read)
        problems = []
        for con_id, ids in sorted(cib.references(self.target).items()):
            for rid in ids:
                if rid not in existing and (con_id in self.order or rid in self.order
                                            or rid not in before.get(con_id, [])):
                    why = "which this run removes" if rid in self.order else "which does not exist"
                    problems.append(f"constraint {con_id} refers to resource {rid} {why}")
        if problems:
            raise PcmkError("; ".join(problems) + " (declare the resource, or declare the constraint absent)")
        resources = cib.section(self.target, "resources")
        for wrapper in resources.iter() if resources is not None else []:
            if wrapper.tag in ("group", "clone") and not [c for c in wrapper if c.tag in cib.RESOURCE_TAGS]:
                raise PcmkError(f"{wrapper.tag} {wrapper.get('id')} would be left without a resource"
                                " (declare it absent)")

    def target_xml(self):
        """The staged CIB (str), ``num_updates`` one above the CIB that was read."""
        target = copy.deepcopy(self.target)
        target.set("num_updates", str(cib.versions(self.read)[2] + 1))
        return cib.to_xml(target)


def _created_or_diff(before, elem, secret_names=()):
    after = cib.internal(elem)
    if before is None:
        return {"old": None, "new": cib.display(after, secret_names)}
    return cib.diff(before, after, secret_names)


def _existing(txn, kind, tag, name):
    elem = cib.find_by_id(txn.target, name)
    if elem is not None and elem.tag != tag:
        raise PcmkError(f"{kind} {name}: the id {name!r} is already used by a <{elem.tag}>")
    return elem


def _stage_primitive(txn, name, spec):
    check_id("primitive", name)
    agent = spec.get("agent")
    try:
        cls, provider, typ = values.split_agent(agent)
    except ValueError as exc:
        raise PcmkError(f"primitive {name}: {exc}") from None
    params = scalars("primitive", name, "params", spec.get("params"))
    meta = scalars("primitive", name, "meta", spec.get("meta"))
    utilization = scalars("primitive", name, "utilization", spec.get("utilization"))
    ops = declared_ops(name, spec.get("ops"))
    description = spec.get("description")
    txn.secrets |= {v for k, v in params.items() if secrets.is_secret(k, txn.secret_names) and v}
    elem = _existing(txn, "primitive", "primitive", name)
    want = {"agent": agent, "params": params, "meta": meta, "utilization": utilization,
            "ops": ops, "description": None if description is None else str(description)}
    if elem is not None and _primitive_matches(elem, want):
        return {"id": name, "changes": {}, "comment": f"primitive {name} is as declared"}
    txn._validate.append((name, agent, params, ops))
    before = cib.internal(elem) if elem is not None else None
    ids = cib.all_ids(txn.target)
    if elem is None:
        attrs = {"id": name, "class": cls}
        if provider:
            attrs["provider"] = provider
        attrs["type"] = typ
        elem = ET.SubElement(cib.section(txn.target, "resources", create=True), "primitive", attrs)
    else:
        for key, value in (("class", cls), ("provider", provider), ("type", typ)):
            if value is None:
                elem.attrib.pop(key, None)
            elif elem.get(key) != value:
                elem.set(key, value)
    if description is not None:
        elem.set("description", str(description))
    cib.nv_write(elem, "instance_attributes", params, ids, name)
    cib.nv_write(elem, "meta_attributes", meta, ids, name, keep=cib.OPERATIONAL_META)
    cib.nv_write(elem, "utilization", utilization, ids, name)
    cib.write_ops(elem, ops, ids, name)
    if not _primitive_matches(elem, want):  # pragma: no cover - a bug, never a silent bad write
        raise PcmkError(f"primitive {name}: internal error, the staged element does not match")
    return {"id": name, "changes": _created_or_diff(before, elem, txn.secret_names),
            "comment": f"primitive {name} staged"}


def _primitive_matches(elem, want):
    if cib.agent_of(elem) != want["agent"]:
        return False
    if want["description"] is not None and elem.get("description") != want["description"]:
        return False
    return (cib.nv_equal(cib.nv_read(elem, "instance_attributes"), want["params"])
            and cib.nv_equal(cib.nv_read(elem, "meta_attributes"), want["meta"], keep=cib.OPERATIONAL_META)
            and cib.nv_equal(cib.nv_read(elem, "utilization"), want["utilization"])
            and cib.ops_equal(cib.ops_of(elem), want["ops"]))


def _stage_group(txn, name, spec):
    check_id("group", name)
    members = spec.get("members")
    if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
        raise PcmkError(f"group {name}: members must be a non-empty list of primitive ids")
    if len(set(members)) != len(members):
        raise PcmkError(f"group {name}: a member is listed twice")
    meta = scalars("group", name, "meta", spec.get("meta"))
    description = spec.get("description")
    target = txn.target
    elem = _existing(txn, "group", "group", name)
    parent_of = cib.parents(target)
    for member in members:
        prim = cib.find_by_id(target, member)
        if prim is None:
            raise PcmkError(f"group {name}: member {member!r} does not exist (declare it before the group)")
        if prim.tag != "primitive":
            raise PcmkError(f"group {name}: member {member!r} is a <{prim.tag}>, not a primitive")
        parent = parent_of.get(prim)
        if parent is not None and parent.tag not in ("resources", "group"):
            raise PcmkError(f"group {name}: member {member!r} is inside a <{parent.tag}>")

    if elem is not None and _wrapper_matches(elem, members, meta, description):
        return {"id": name, "changes": {}, "comment": f"group {name} is as declared"}
    before = cib.internal(elem) if elem is not None else None
    ids = cib.all_ids(target)
    resources = cib.section(target, "resources", create=True)
    if elem is None:
        elem = ET.SubElement(resources, "group", {"id": name})
    if description is not None:
        elem.set("description", str(description))
    cib.nv_write(elem, "meta_attributes", meta, ids, name, keep=cib.OPERATIONAL_META)
    for child in [c for c in elem if c.tag == "primitive" and c.get("id") not in members]:
        elem.remove(child)
        resources.append(child)
    parent_of = cib.parents(target)
    for member in members:
        prim = cib.find_by_id(target, member)
        parent_of[prim].remove(prim)
        elem.append(prim)
    for other in list(resources.findall("group")):
        if other is not elem and not other.findall("primitive"):
            raise PcmkError(f"group {name}: taking {', '.join(members)} would leave group"
                            f" {other.get('id')} empty")
    return {"id": name, "changes": _created_or_diff(before, elem), "comment": f"group {name} staged"}


def _wrapper_matches(elem, children, meta, description):
    """A group or clone holds exactly ``children`` (ids, in order) with these meta attributes."""
    return ([c.get("id") for c in elem if c.tag in cib.RESOURCE_TAGS] == children
            and cib.nv_equal(cib.nv_read(elem, "meta_attributes"), meta, keep=cib.OPERATIONAL_META)
            and (description is None or elem.get("description") == str(description)))


def _stage_clone(txn, name, spec):
    """A clone of one existing primitive or group (moved into it, keeping every id); a resource it
    held before goes back to the top level."""
    check_id("clone", name)
    rsc = spec.get("rsc")
    if not isinstance(rsc, str) or not rsc:
        raise PcmkError(f"clone {name}: rsc must name the primitive or group to clone")
    meta = scalars("clone", name, "meta", spec.get("meta"))
    description = spec.get("description")
    target = txn.target
    elem = _existing(txn, "clone", "clone", name)
    child = cib.find_by_id(target, rsc)
    if child is None:
        raise PcmkError(f"clone {name}: {rsc!r} does not exist (declare it before the clone)")
    if child.tag not in ("primitive", "group"):
        raise PcmkError(f"clone {name}: {rsc!r} is a <{child.tag}>, not a primitive or group")
    parent = cib.parents(target).get(child)
    if parent is not None and parent.tag not in ("resources", "clone"):
        raise PcmkError(f"clone {name}: {rsc!r} is inside {parent.tag} {parent.get('id')}")

    if elem is not None and _wrapper_matches(elem, [rsc], meta, description):
        return {"id": name, "changes": {}, "comment": f"clone {name} is as declared"}
    before = cib.internal(elem) if elem is not None else None
    ids = cib.all_ids(target)
    resources = cib.section(target, "resources", create=True)
    if elem is None:
        elem = ET.Element("clone", {"id": name})
        resources.insert(list(resources).index(child) if parent is resources else len(resources), elem)
    if description is not None:
        elem.set("description", str(description))
    cib.nv_write(elem, "meta_attributes", meta, ids, name, keep=cib.OPERATIONAL_META)
    for other in [c for c in elem if c.tag in cib.RESOURCE_TAGS and c is not child]:
        elem.remove(other)
        resources.append(other)
    if parent is not elem:
        parent.remove(child)
        elem.append(child)
    return {"id": name, "changes": _created_or_diff(before, elem), "comment": f"clone {name} staged"}


def _stage_constraint(txn, tag, kind, name, wanted, allowed_extra=()):
    check_id(kind, name)
    elem = _existing(txn, kind, tag, name)

    def matches(con):
        if con.findall("resource_set"):
            return False
        current = {k: v for k, v in con.attrib.items() if k != "id"}
        for key in set(current) | set(wanted):
            if not values.same_value(key, current.get(key), wanted.get(key)):
                if key in allowed_extra and key not in wanted and _default_equal(key, current.get(key), wanted):
                    continue
                return False
        return True

    if elem is not None and matches(elem):
        return {"id": name, "changes": {}, "comment": f"{kind} {name} is as declared"}
    before = cib.internal(elem) if elem is not None else None
    if elem is None:
        elem = ET.SubElement(cib.section(txn.target, "constraints", create=True), tag, {"id": name})
    for child in list(elem):
        elem.remove(child)
    for attr in list(elem.attrib):
        if attr != "id" and attr not in wanted:
            del elem.attrib[attr]
    for attr, value in wanted.items():
        if not values.same_value(attr, elem.get(attr), value):
            elem.set(attr, value)
    return {"id": name, "changes": _created_or_diff(before, elem), "comment": f"{kind} {name} staged"}


def _default_equal(key, current, wanted):
    """An attribute present in the CIB but not declared, whose value is Pacemaker's default."""
    if key == "then-action":
        return values.same_value(key, current, wanted.get("first-action", "start"))
    return key in DEFAULTS and values.same_value(key, current, DEFAULTS[key])


def _pair(kind, name, spec, first, second):
    """(first, second) from the two named arguments or from ``resources: [first, second]``."""
    one, two = spec.get(first), spec.get(second)
    if spec.get("resources") is not None:
        res = spec["resources"]
        if not isinstance(res, list) or len(res) != 2:
            raise PcmkError(f"{kind} {name}: resources must list exactly two ids [{first}, {second}]")
        one, two = res
    if not one or not two:
        raise PcmkError(f"{kind} {name}: {first} and {second} are required")
    return str(one), str(two)


def _stage_colocation(txn, name, spec):
    rsc, with_rsc = _pair("colocation", name, spec, "rsc", "with_rsc")
    score = values.canon_score(spec.get("score", "INFINITY"))
    if score is None:
        raise PcmkError(f"colocation {name}: score {spec.get('score')!r} is not a score (integer,"
                        " INFINITY or -INFINITY)")
    wanted = {"rsc": rsc, "with-rsc": with_rsc, "score": score}
    for key, attr in (("rsc_role", "rsc-role"), ("with_rsc_role", "with-rsc-role")):
        if spec.get(key) is not None:
            role = values.canon_role(spec[key])
            if role is None:
                raise PcmkError(f"colocation {name}: {key} {spec[key]!r} is not a role")
            wanted[attr] = role
    if spec.get("node_attribute") is not None:
        wanted["node-attribute"] = str(spec["node_attribute"])
    if spec.get("influence") is not None:
        wanted["influence"] = values.to_text(spec["influence"])
    return _stage_constraint(txn, "rsc_colocation", "colocation", name, wanted,
                             allowed_extra=("rsc-role", "with-rsc-role", "node-attribute", "influence"))


def _stage_order(txn, name, spec):
    first, then = _pair("order", name, spec, "first", "then")
    kind = str(spec.get("kind") or "Mandatory").capitalize()
    if kind not in ORDER_KINDS:
        raise PcmkError(f"order {name}: kind {spec.get('kind')!r} is not one of {', '.join(ORDER_KINDS)}")
    wanted = {"first": first, "then": then, "kind": kind}
    for key, attr in (("first_action", "first-action"), ("then_action", "then-action")):
        if spec.get(key) is not None:
            if spec[key] not in RESOURCE_ACTIONS:
                raise PcmkError(f"order {name}: {key} {spec[key]!r} is not one of {', '.join(RESOURCE_ACTIONS)}")
            wanted[attr] = spec[key]
    for key, attr in (("symmetrical", "symmetrical"), ("require_all", "require-all")):
        if spec.get(key) is not None:
            wanted[attr] = values.to_text(spec[key])
    return _stage_constraint(txn, "rsc_order", "order", name, wanted,
                             allowed_extra=("symmetrical", "first-action", "then-action"))


def _stage_property(txn, name, spec):
    kind, section_tag, set_tag, default_set = _property_section(name, spec)
    props = scalars("property", name, "properties", spec.get("properties"))
    if not props:
        raise PcmkError(f"property {name}: no properties declared")
    set_id = spec.get("set_id") or default_set
    check_id("property set", set_id)
    target = txn.target
    sect = cib.section(target, section_tag)
    pairs = {}
    if sect is not None:
        for nvset in cib.plain_sets(sect, set_tag):
            for pair in nvset.findall("nvpair"):
                pairs.setdefault(pair.get("name"), pair)
    differs = {k: v for k, v in props.items()
               if k not in pairs or not values.same_value(k, pairs[k].get("value"), v)}
    obj_id = f"{section_tag}:{set_id}"
    if not differs:
        return {"id": obj_id, "changes": {},
                "comment": f"{kind} properties {', '.join(sorted(props))} are as declared"}
    sect = cib.section(target, section_tag, create=True)
    ids = cib.all_ids(target)
    changes = {}
    for key, value in differs.items():
        if key in pairs:
            changes[key] = {"old": pairs[key].get("value"), "new": value}
            pairs[key].set("value", value)
            continue
        nvset = next((s for s in sect.findall(set_tag) if s.get("id") == set_id), None)
        if nvset is None:
            existing = cib.find_by_id(target, set_id)
            if existing is not None:
                raise PcmkError(f"property {name}: the id {set_id!r} is already used by a <{existing.tag}>")
            nvset = ET.SubElement(sect, set_tag, {"id": set_id})
            ids.add(set_id)
        ET.SubElement(nvset, "nvpair", {"id": cib.unique_id(f"{set_id}-{key}", ids), "name": key,
                                        "value": value})
        changes[key] = {"old": None, "new": value}
    return {"id": obj_id, "changes": {kind: changes}, "comment": f"{kind} properties staged"}


def _property_section(name, spec):
    kind = spec.get("type") or "cluster"
    if kind not in PROPERTY_SECTIONS:
        raise PcmkError(f"property {name}: type {kind!r} is not one of cluster, rsc_defaults, op_defaults")
    return (kind, *PROPERTY_SECTIONS[kind])


def _stage_property_absent(txn, name, spec):
    kind, section_tag, set_tag, _default = _property_section(name, spec)
    names = spec.get("properties")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise PcmkError(f"property {name}: properties must be a non-empty list of names")
    obj_id = f"{section_tag}:{','.join(names)}"
    sect = cib.section(txn.target, section_tag)
    changes = {}
    for nvset in cib.plain_sets(sect, set_tag) if sect is not None else []:
        gone = [pair for pair in nvset.findall("nvpair") if pair.get("name") in names]
        for pair in gone:
            changes.setdefault(pair.get("name"), {"old": pair.get("value"), "new": None})
            nvset.remove(pair)
        if gone and len(nvset) == 0:
            sect.remove(nvset)
    if not changes:
        return {"id": obj_id, "changes": {}, "comment": f"{kind} properties {', '.join(names)} are absent"}
    return {"id": obj_id, "changes": {kind: changes}, "comment": f"{kind} properties staged for removal"}


def _stage_absent(txn, name, spec):
    target = txn.target
    elem = cib.find_by_id(target, name)
    if elem is None:
        return {"id": name, "changes": {}, "comment": f"{name} is absent"}
    parent = cib.parents(target).get(elem)
    if elem.tag not in cib.RESOURCE_TAGS | cib.CONSTRAINT_TAGS:
        raise PcmkError(f"absent {name}: {name!r} is a <{elem.tag}>; only resources and constraints"
                        " can be removed with crm.absent")
    before = cib.normalise(elem, txn.secret_names)
    if parent.tag == "clone":
        raise PcmkError(f"absent {name}: it is the resource of clone {parent.get('id')}; declare the"
                        " clone absent instead")
    parent.remove(elem)
    if elem.tag == "clone":
        # A resource this transaction declares outlives the clone around it (active-active back to
        # active-passive): it goes back to the top level, ids kept.
        for child in [c for c in elem if c.get("id") in txn._declared]:
            parent.append(child)
    if parent.tag == "group" and not parent.findall("primitive"):
        raise PcmkError(f"absent {name}: it is the last member of group {parent.get('id')}; declare"
                        " the group absent instead")
    return {"id": name, "changes": {"old": before, "new": None},
            "comment": f"{elem.tag} {name} staged for removal"}


_STAGERS = {"primitive": _stage_primitive, "group": _stage_group, "clone": _stage_clone,
            "colocation": _stage_colocation,
            "order": _stage_order, "property": _stage_property, "property_absent": _stage_property_absent,
            "absent": _stage_absent}


def begin(xml, secret_params=()):
    """A :class:`Transaction` over the CIB text ``xml`` (Salt's loader exposes functions only)."""
    return Transaction(xml, secret_params)
