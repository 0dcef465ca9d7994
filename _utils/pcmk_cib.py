"""
The CIB as XML: parse, find, edit attribute sets in place, normalise, diff, check a patch, rebase.

Normalised forms ignore what tools generate (ids of nvpairs, ops and attribute sets, attribute
order) and compare values by meaning (:mod:`pcmk_values`). Secret parameters are masked with THE
rule of :mod:`glance_ha_secrets` (names, plus the ``secret_params`` handed in).

Pure: no Salt dunders, no subprocess. Loaded by Salt as ``__utils__['pcmk_cib.<function>']``;
siblings are imported by path (Salt's loader gives ``_utils`` no package).
"""

import importlib.util
import json
import os
import re
import sys
import xml.etree.ElementTree as ET


def sibling(name):
    """The pure ``_utils`` module ``name`` next to this file (one copy per process)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    key = f"_glance_ha_utils.{name}:{path}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]


values = sibling("pcmk_values")
secrets = sibling("glance_ha_secrets")
PcmkError = values.PcmkError
MASK = secrets.MASK

# Meta attributes that administrators and Pacemaker's own tools set at run time (crm resource
# stop/unmanage/maintenance, crm_resource --restart): left alone unless the formula declares them.
OPERATIONAL_META = frozenset(("target-role", "is-managed", "maintenance"))
OP_ATTRS = ("name", "interval", "timeout", "role", "on-fail", "start-delay", "interval-origin",
            "requires", "enabled", "record-pending", "description")
# Order of the children of <configuration> (pacemaker-3.x schema).
CONFIG_ORDER = ("crm_config", "rsc_defaults", "op_defaults", "nodes", "resources", "constraints",
                "fencing-topology", "tags", "acls", "alerts")
RESOURCE_TAGS = frozenset(("primitive", "group", "clone", "master", "bundle", "template"))
CONSTRAINT_TAGS = frozenset(("rsc_location", "rsc_colocation", "rsc_order", "rsc_ticket"))
# Elements whose ``id`` is an IDREF naming another object, not an id of their own: a tag's member, a
# resource set's member, an ACL target's or user's role (Pacemaker's tags, constraints and acls schemas).
REFERENCE_TAGS = frozenset(("obj_ref", "resource_ref", "role", "role_ref"))
TYPE_OF_TAG = {"rsc_colocation": "colocation", "rsc_order": "order", "rsc_location": "location",
               "rsc_ticket": "ticket", "cluster_property_set": "property"}
# Elements of sections that are parts of an object, not objects of their own (crm.show).
PART_TAGS = frozenset(("nvpair", "op", "instance_attributes", "utilization", "resource_set",
                       "resource_ref", "rule", "expression", "date_expression", "operations", "obj_ref"))


# ------------------------------------------------------------------------------- documents
def parse(text):
    """Parse CIB XML text (comments kept, so an unrelated comment never turns into a change)."""
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    try:
        return ET.fromstring(text, parser=parser)
    except ET.ParseError as exc:
        raise PcmkError(f"the CIB is not valid XML: {exc}") from None


def to_xml(root):
    return ET.tostring(root, encoding="unicode")


def configuration_only(text):
    """CIB XML ``text`` with an empty ``<status>``: what validating a configuration change needs.

    With the status section, ``crm_verify`` warns about resources that still run but that the
    change removes ("active orphan") and exits non-zero, though Pacemaker stops such resources
    itself."""
    root = parse(text)
    for status in root.findall("status"):
        status.clear()
    return to_xml(root)


def versions(root):
    """(admin_epoch, epoch, num_updates) ints of a parsed CIB."""
    return tuple(int(root.get(key, "0")) for key in ("admin_epoch", "epoch", "num_updates"))


def fmt_versions(vers):
    return ".".join(str(v) for v in vers)


def config(root):
    conf = root.find("configuration")
    if conf is None:
        raise PcmkError("the CIB has no <configuration> section")
    return conf


def section(root, tag, create=False):
    """The ``<configuration>`` child ``tag``; created at its schema position if ``create``."""
    conf = config(root)
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


def parents(root):
    return {child: parent for parent in root.iter() for child in parent}


def find_by_id(root, obj_id):
    """The element with ``id`` ``obj_id`` in ``<configuration>`` (never a reference to it), or None."""
    for elem in config(root).iter():
        if elem.get("id") == obj_id and elem.tag not in REFERENCE_TAGS:
            return elem
    return None


def all_ids(root):
    return {elem.get("id") for elem in root.iter() if elem.get("id")}


def unique_id(base, ids):
    """A valid id from ``base`` not in ``ids`` (set, updated), the way crmsh makes them."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", base)
    if not re.match(r"^[A-Za-z_]", base):
        base = "_" + base
    candidate, counter = base, 0
    while candidate in ids:
        counter += 1
        candidate = f"{base}-{counter}"
    ids.add(candidate)
    return candidate


def secret_values(root, extra=()):
    """Values (set of str) of every secret-named nvpair of the configuration."""
    return {pair.get("value") for pair in config(root).iter("nvpair")
            if pair.get("value") and secrets.is_secret(pair.get("name", ""), extra)}


# ------------------------------------------------------------------------------- attribute sets
def plain_sets(elem, tag):
    """Attribute sets ``tag`` directly under ``elem`` that apply unconditionally (no rule/id-ref)."""
    return [s for s in elem.findall(tag) if s.find("rule") is None and s.get("id-ref") is None]


def nv_read(elem, tag):
    """{name: value} of the unconditional ``tag`` sets of ``elem`` (first occurrence wins)."""
    found = {}
    for nvset in plain_sets(elem, tag):
        for pair in nvset.findall("nvpair"):
            name = pair.get("name")
            if name is not None and name not in found and pair.get("id-ref") is None:
                found[name] = pair.get("value", "")
    return found


def nv_equal(current, wanted, keep=frozenset()):
    """Declared names equal by meaning; extra current names allowed only if in ``keep``."""
    for name, value in wanted.items():
        if name not in current or not values.same_value(name, current[name], value):
            return False
    return all(name in wanted or name in keep for name in current)


def nv_write(elem, tag, wanted, ids, set_base, keep=frozenset()):
    """Make the unconditional ``tag`` sets of ``elem`` hold ``wanted``, editing nvpairs in place."""
    sets = plain_sets(elem, tag)
    had_pairs = {id(s): bool(s.findall("nvpair")) for s in sets}
    seen = set()
    for nvset in sets:
        for pair in list(nvset.findall("nvpair")):
            name = pair.get("name")
            if pair.get("id-ref") is not None:
                continue
            if name in wanted and name not in seen:
                seen.add(name)
                if not values.same_value(name, pair.get("value"), wanted[name]):
                    pair.set("value", wanted[name])
            elif name in wanted or name not in keep:
                nvset.remove(pair)
    missing = [name for name in wanted if name not in seen]
    if missing:
        if sets:
            target = sets[0]
        else:
            target = ET.SubElement(elem, tag, {"id": unique_id(f"{set_base}-{tag}", ids)})
            sets = [target]
            had_pairs[id(target)] = True
        for name in missing:
            ET.SubElement(target, "nvpair", {"id": unique_id(f"{target.get('id')}-{name}", ids),
                                             "name": name, "value": wanted[name]})
    for nvset in sets:
        if had_pairs.get(id(nvset)) and not nvset.findall("nvpair") and len(nvset) == 0:
            elem.remove(nvset)


# ------------------------------------------------------------------------------- operations
def agent_of(elem):
    cls, prov, typ = elem.get("class"), elem.get("provider"), elem.get("type")
    return ":".join(p for p in (cls, prov, typ) if p)


def agent_users(root, agent):
    """Ids (sorted list) of the primitives of the CIB ``root`` whose agent is ``agent``
    (``ocf:openstack:glance-api``), wherever they stand (top level, group, clone, bundle)."""
    return sorted(elem.get("id") for elem in config(root).iter("primitive") if agent_of(elem) == agent)


def op_key(name, role, interval_ms):
    """``<name>[-<role>]-<interval>``: how an op is named in normalised forms and diffs."""
    role_part = f"-{role}" if role else ""
    return f"{name}{role_part}-{values.fmt_ms(interval_ms or 0)}"


def norm_op(op):
    """{attrs, params, meta, id, key} of an ``<op>`` element."""
    attrs = {k: v for k, v in op.attrib.items() if k != "id"}
    norm = {"attrs": attrs, "params": nv_read(op, "instance_attributes"),
            "meta": nv_read(op, "meta_attributes"), "id": op.get("id")}
    role = values.canon_role(attrs.get("role")) or attrs.get("role")
    norm["key"] = op_key(attrs.get("name"), role, values.parse_duration_ms(attrs.get("interval", "0")) or 0)
    return norm


def ops_of(elem):
    ops_elem = elem.find("operations")
    return [norm_op(op) for op in (ops_elem.findall("op") if ops_elem is not None else [])]


def op_equal(cur, want):
    cur_attrs, want_attrs = cur["attrs"], want["attrs"]
    for name in set(cur_attrs) | set(want_attrs):
        if not values.same_value(name, cur_attrs.get(name), want_attrs.get(name)):
            if name == "interval" and {cur_attrs.get(name), want_attrs.get(name)} <= {None, "0", "0s"}:
                continue
            return False
    return nv_equal(cur["params"], want["params"]) and nv_equal(cur["meta"], want["meta"])


def match_ops(current, wanted):
    """Pair current with wanted ops: same name/role/interval first, then same name/role."""
    left_cur, left_want, pairs = list(current), list(wanted), []
    for strict in (True, False):
        for want in list(left_want):
            for cur in left_cur:
                same_kind = (cur["attrs"].get("name") == want["attrs"].get("name")
                             and values.canon_role(cur["attrs"].get("role"))
                             == values.canon_role(want["attrs"].get("role")))
                if same_kind and (not strict or cur["key"] == want["key"]):
                    if strict and not op_equal(cur, want) and any(
                            c is not cur and c["key"] == want["key"] and op_equal(c, want) for c in left_cur):
                        continue
                    pairs.append((cur, want))
                    left_cur.remove(cur)
                    left_want.remove(want)
                    break
    return pairs, left_cur, left_want


def ops_equal(current, wanted):
    if len(current) != len(wanted):
        return False
    pairs, left_cur, left_want = match_ops(current, wanted)
    return not left_cur and not left_want and all(op_equal(c, w) for c, w in pairs)


def write_ops(elem, ops, ids, name):
    """Make ``elem``'s ops exactly ``ops`` (declared form), editing matched ops in place."""
    ops_elem = elem.find("operations")
    current = ops_of(elem)
    if ops_elem is None and not ops:
        return
    if ops_elem is None:
        ops_elem = ET.SubElement(elem, "operations")
    by_id = {op.get("id"): op for op in ops_elem.findall("op")}
    pairs, left_cur, left_want = match_ops(current, ops)
    for cur, want in pairs:
        if op_equal(cur, want):
            continue
        op = by_id[cur["id"]]
        for attr in list(op.attrib):
            if attr != "id" and attr not in want["attrs"]:
                del op.attrib[attr]
        for attr, value in want["attrs"].items():
            if not values.same_value(attr, op.get(attr), value):
                op.set(attr, value)
        nv_write(op, "instance_attributes", want["params"], ids, cur["id"])
        nv_write(op, "meta_attributes", want["meta"], ids, cur["id"])
    for cur in left_cur:
        ops_elem.remove(by_id[cur["id"]])
    for want in left_want:
        interval = values.fmt_ms(values.parse_duration_ms(want["attrs"]["interval"]) or 0)
        role = want["attrs"].get("role")
        base = f"{name}-{want['attrs']['name']}-{interval}" + (f"-{role}" if role else "")
        attrs = {"id": unique_id(base, ids)}
        attrs.update(sorted(want["attrs"].items(), key=lambda kv: OP_ATTRS.index(kv[0])))
        op = ET.SubElement(ops_elem, "op", attrs)
        nv_write(op, "instance_attributes", want["params"], ids, attrs["id"])
        nv_write(op, "meta_attributes", want["meta"], ids, attrs["id"])
    if len(ops_elem) == 0:
        elem.remove(ops_elem)


# ------------------------------------------------------------------------------- normal forms
def internal(elem):
    """Normalised form used for diffs: unmasked, ops keyed by their element id."""
    tag = elem.tag
    out = {"type": TYPE_OF_TAG.get(tag, tag), "id": elem.get("id")}
    if tag == "primitive":
        out["agent"] = agent_of(elem)
        if elem.get("description") is not None:
            out["description"] = elem.get("description")
        out["params"] = nv_read(elem, "instance_attributes")
        out["meta"] = nv_read(elem, "meta_attributes")
        utilization = nv_read(elem, "utilization")
        if utilization:
            out["utilization"] = utilization
        out["ops"] = {op["id"]: dict(_op_display(op), _key=op["key"]) for op in ops_of(elem)}
    elif tag in ("group", "clone"):
        out["members"] = [child.get("id") for child in elem if child.tag in RESOURCE_TAGS]
        out["meta"] = nv_read(elem, "meta_attributes")
        if elem.get("description") is not None:
            out["description"] = elem.get("description")
    elif tag in CONSTRAINT_TAGS:
        out.update({k: v for k, v in elem.attrib.items() if k != "id"})
        sets = [_norm_set(s) for s in elem.findall("resource_set")]
        if sets:
            out["sets"] = sets
    elif tag == "tag":
        out["members"] = [ref.get("id") for ref in elem.findall("obj_ref")]
    elif tag in ("cluster_property_set", "meta_attributes"):
        out["properties"] = {p.get("name"): p.get("value", "") for p in elem.findall("nvpair")}
    else:
        out["xml"] = to_xml(elem)
    return out


def normalise(elem, secret_params=()):
    """The id-free, user-facing form of a configuration element (what ``crm.show`` and diffs show):
    ops keyed ``<name>[-<role>]-<interval>``, secret parameters masked."""
    return display(internal(elem), secret_params)


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


def display(norm, secret_params=()):
    """The user-facing form of an :func:`internal` object (no ids, secret params masked)."""
    out = {k: v for k, v in norm.items() if k != "ops" and v != {}}
    if "params" in out:
        out["params"] = {k: (MASK if v is not None and secrets.is_secret(k, secret_params) else v)
                         for k, v in out["params"].items()}
    if norm.get("ops"):
        out["ops"] = {}
        for op in norm["ops"].values():
            shown = {k: v for k, v in op.items() if k != "_key"}
            out["ops"][_unique_key(op["_key"], out["ops"])] = shown
    return out


def _unique_key(key, taken):
    candidate, counter = key, 1
    while candidate in taken:
        counter += 1
        candidate = f"{key}#{counter}"
    return candidate


def diff(before, after, secret_params=()):
    """Per-field difference of two :func:`internal` objects; ops matched by their element id.

    Only what differs is shown; a changed secret shows as ``{'old': MASK, 'new': MASK}``.
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
                    if key == "params" and secrets.is_secret(name, secret_params):
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


def summary(changes, prefix=""):
    """One line (list of str) per changed leaf of a diff: ``params.ip: '1' -> '2'``; a created or
    removed object as ``new: {...}`` / ``removed: {...}``. The values are shown as they are given
    (masked already)."""
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
            lines += summary(value, f"{prefix}.{key}" if prefix else str(key))
    return lines


def objects(root, kind=None, secret_params=()):
    """{id: normalised form} of every resource, constraint and property set (``kind``: only this
    type, e.g. primitive, colocation, property)."""
    out = {}
    for tag in ("crm_config", "rsc_defaults", "op_defaults", "resources", "constraints", "tags"):
        sect = section(root, tag)
        if sect is None:
            continue
        for elem in sect.iter():
            if elem is sect or not isinstance(elem.tag, str) or not elem.get("id") or elem.tag in PART_TAGS:
                continue
            if elem.tag == "meta_attributes" and tag not in ("rsc_defaults", "op_defaults"):
                continue
            norm = normalise(elem, secret_params)
            if kind is None or norm["type"] == kind:
                out[elem.get("id")] = norm
    return out


# ------------------------------------------------------------------------------- agents, references
def agent_metadata(agent, text):
    """``{'params': {name: {'required': bool, 'unique': bool}}, 'actions': [names]}`` of the
    meta-data XML ``text`` of resource agent ``agent``."""
    try:
        # the DOCTYPE, with its internal subset when there is one (OCF 1.1 agents extend ra-api-1.dtd)
        root = ET.fromstring(re.sub(r"<!DOCTYPE[^>\[]*(\[.*?\])?\s*>", "", text, count=1, flags=re.DOTALL))
    except ET.ParseError as exc:
        raise values.AgentNotFoundError(f"resource agent {agent}: meta-data is not valid XML ({exc})") from None
    params = {}
    for param in root.iter("parameter"):
        params[param.get("name")] = {"required": values.bool_word(param.get("required", "0")) is True,
                                     "unique": values.bool_word(param.get("unique", "0")) is True}
    actions = sorted({a.get("name") for a in root.iter("action") if a.get("name")})
    return {"params": params, "actions": actions}


def references(root):
    """{constraint id: [resource ids it refers to]}."""
    refs = {}
    cons = section(root, "constraints")
    if cons is None:
        return refs
    for con in cons:
        if not isinstance(con.tag, str):
            continue
        ids = [con.get(a) for a in ("rsc", "with-rsc", "first", "then") if con.get(a)]
        ids += [ref.get("id") for ref in con.iter("resource_ref")]
        refs[con.get("id")] = ids
    return refs


def resource_ids(root):
    res = section(root, "resources")
    return {e.get("id") for e in (res.iter() if res is not None else []) if e.tag in RESOURCE_TAGS}


# ------------------------------------------------------------------------------- patches
def check_patch_scope(patch):
    """A ``crm_diff`` patch may only touch the configuration (never status, never the versions)."""
    root = ET.fromstring(patch)
    for change in root.iter("change"):
        path = change.get("path", "")
        if path.startswith("/cib/configuration"):
            continue
        attrs = {c.get("name") for c in change.iter("change-attr")}
        if path == "/cib" and change.get("operation") == "modify" and attrs <= {"num_updates", "epoch"}:
            continue  # crm_diff records the version bump of the <cib> element itself
        raise PcmkError(f"Nothing written: internal error, the patch would touch {path}")


def same_configuration(one, other):
    """Whether two parsed CIBs hold the same configuration (versions and canonical XML)."""
    if versions(one)[:2] != versions(other)[:2]:
        return False
    return (ET.canonicalize(to_xml(config(one)), strip_text=True)
            == ET.canonicalize(to_xml(config(other)), strip_text=True))


def rebase(fresh, target_xml):
    """``fresh`` (a parsed CIB whose status moved on) with the configuration of ``target_xml``,
    ``num_updates`` one above ``fresh``'s: the XML text to diff against ``fresh``."""
    target = parse(to_xml(fresh))
    conf_index = list(target).index(config(target))
    target.remove(config(target))
    target.insert(conf_index, config(parse(target_xml)))
    target.set("num_updates", str(versions(fresh)[2] + 1))
    return to_xml(target)
