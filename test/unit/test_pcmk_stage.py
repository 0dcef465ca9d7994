"""_utils/pcmk_stage.py: one CIB transaction in memory: declarations, staging in place, validation
against agent meta-data that is handed in, masking (pure; no Salt dunders set, no process started)."""

import ast

import pytest

from test.modload import ROOT, load

stage = load("_utils/pcmk_stage.py")
cib = stage.cib

EMPTY = """<cib admin_epoch="0" epoch="5" num_updates="2"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options">
<nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
</cluster_property_set></crm_config><nodes/><resources/><constraints/></configuration><status/></cib>"""

# Written by hand/crmsh: other ids, other attribute order, equivalent spellings.
HAND = """<cib admin_epoch="0" epoch="9" num_updates="0"><configuration><crm_config/><nodes/><resources>
<primitive type="IPaddr2" provider="heartbeat" class="ocf" id="p_vip">
  <operations><op timeout="20" interval="10000ms" name="monitor" id="weird-op-id"/></operations>
  <instance_attributes id="ia-1"><nvpair value="24" name="cidr_netmask" id="x1"/>
    <nvpair value="198.51.100.10" name="ip" id="x2"/></instance_attributes>
  <meta_attributes id="ma-1"><nvpair id="x3" name="target-role" value="Stopped"/></meta_attributes>
</primitive>
<primitive id="p_other" class="ocf" provider="heartbeat" type="Dummy"/>
</resources><constraints>
<rsc_colocation id="col" score="inf" with-rsc="p_vip" rsc="p_other"/>
</constraints></configuration><status/></cib>"""

META = {"ocf:heartbeat:IPaddr2": {"params": {"ip": {"required": True, "unique": True},
                                             "cidr_netmask": {"required": False, "unique": False},
                                             "nic": {"required": False, "unique": False}},
                                  "actions": ["meta-data", "monitor", "start", "stop", "validate-all"]},
        "ocf:heartbeat:Dummy": {"params": {"state": {"required": False, "unique": False},
                                           "passwd": {"required": False, "unique": False},
                                           "api_token": {"required": False, "unique": False}},
                                "actions": ["meta-data", "monitor", "start", "stop"]}}

VIP = {"agent": "ocf:heartbeat:IPaddr2", "params": {"ip": "198.51.100.10", "cidr_netmask": 24},
       "ops": [{"name": "monitor", "interval": "10s", "timeout": "20s"}]}


def test_declared_ops_forms_and_errors():
    ops = stage.declared_ops("p", {"monitor": {"interval": "30s", "OCF_CHECK_LEVEL": 10, "on_fail": "restart"},
                                   "start": {"timeout": 60}})
    assert ops[0]["attrs"] == {"name": "monitor", "interval": "30s", "on-fail": "restart"}
    assert ops[0]["params"] == {"OCF_CHECK_LEVEL": "10"} and ops[0]["key"] == "monitor-30s"
    assert ops[1]["attrs"]["interval"] == "0s" and ops[1]["key"] == "start-0s"
    role = stage.declared_ops("p", [{"name": "monitor", "interval": 5, "role": "Master"}])
    assert role[0]["attrs"]["role"] == "Promoted" and role[0]["key"] == "monitor-Promoted-5s"
    for bad, words in [([{"name": "monitor"}], "interval is required"),
                       ([{"name": "monitor", "interval": "0"}], "greater than 0"),
                       ([{"name": "monitor", "interval": "5q"}], "'5q' is not a valid interval"),
                       ([{"name": "start", "timeout": "0"}], "timeout must be greater than 0"),
                       ([{"name": "monitor", "interval": 5, "timout": 3}], "unknown attribute 'timout'"),
                       ([{"name": "monitor", "interval": 5}, {"name": "monitor", "interval": "5s"}],
                        "monitor-5s declared more than once"),
                       ([{"interval": 5}], "needs a name"), ("monitor", "must be a list")]:
        with pytest.raises(stage.PcmkError, match=words):
            stage.declared_ops("p", bad)


def test_split_item():
    assert stage.split_item({"primitive": "p", "agent": "a"}) == ("primitive", "p", {"agent": "a"})
    assert stage.split_item({"property": "resource-stickiness", "type": "rsc_defaults", "value": 100}) == (
        "property", "resource-stickiness", {"type": "rsc_defaults", "properties": {"resource-stickiness": 100}})
    for bad in ({"agent": "a"}, {"primitive": "p", "absent": "q"}, "p"):
        with pytest.raises(stage.PcmkError, match="exactly one of|must be a mapping"):
            stage.split_item(bad)


def test_normalisation_ignores_ids_order_and_spelling():
    txn = stage.begin(HAND)
    elem = cib.find_by_id(txn.target, "p_vip")
    want = {"agent": VIP["agent"], "params": {"ip": "198.51.100.10", "cidr_netmask": "24"}, "meta": {},
            "utilization": {}, "ops": stage.declared_ops("p_vip", VIP["ops"]), "description": None}
    # 10000ms = 10s, 20 = 20s, other ids, other order, an operational target-role: no difference.
    assert stage._primitive_matches(elem, want)
    shown = cib.normalise(elem)
    assert shown["ops"] == {"monitor-10s": {"name": "monitor", "interval": "10000ms", "timeout": "20"}}
    assert shown["params"] == {"ip": "198.51.100.10", "cidr_netmask": "24"}


def test_stage_no_change_is_no_change():
    txn = stage.begin(HAND)
    assert txn.stage("primitive", "p_vip", **VIP)["changes"] == {}
    assert txn.stage("colocation", "col", rsc="p_other", with_rsc="p_vip")["changes"] == {}
    assert txn.order == [] and txn.agents_to_validate() == set()


def test_stage_corrects_in_place_keeping_ids():
    txn = stage.begin(HAND)
    ids_before = [e.get("id") for e in cib.find_by_id(txn.target, "p_vip").iter()]
    res = txn.stage("primitive", "p_vip", agent=VIP["agent"], params={"ip": "198.51.100.20", "cidr_netmask": 24},
                    meta={"migration-threshold": 3},
                    ops=[{"name": "monitor", "interval": "15s", "timeout": "20s"}])
    assert res["changes"] == {
        "params": {"ip": {"old": "198.51.100.10", "new": "198.51.100.20"}},
        "meta": {"migration-threshold": {"old": None, "new": "3"}},
        "ops": {"monitor-15s": {"interval": {"old": "10000ms", "new": "15s"},
                                "op": {"old": "monitor-10s", "new": "monitor-15s"}}}}
    elem = cib.find_by_id(txn.target, "p_vip")
    ids_after = [e.get("id") for e in elem.iter()]
    assert ids_after[: len(ids_before)] == ids_before  # same ids; one nvpair added at the end of the set
    assert elem.find("meta_attributes/nvpair[@name='target-role']").get("value") == "Stopped"
    assert elem.find("operations/op").get("id") == "weird-op-id"
    assert txn.order == ["p_vip"] and txn.changes["p_vip"] == res["changes"]
    # The CIB that was read is untouched (it is what crm_diff compares against).
    assert cib.find_by_id(txn.read, "p_vip").find("operations/op").get("interval") == "10000ms"
    assert cib.versions(cib.parse(txn.target_xml())) == (0, 9, 1)


def test_stage_removes_undeclared_params_and_ops():
    txn = stage.begin(HAND)
    res = txn.stage("primitive", "p_vip", agent=VIP["agent"], params={"ip": "198.51.100.10"}, ops=[])
    assert res["changes"]["params"] == {"cidr_netmask": {"old": "24", "new": None}}
    assert res["changes"]["ops"] == {"monitor-10s": {"old": {"name": "monitor", "interval": "10000ms",
                                                             "timeout": "20"}, "new": None}}
    assert cib.find_by_id(txn.target, "p_vip").find("operations") is None


def test_stage_creates_with_tool_style_ids():
    txn = stage.begin(EMPTY)
    res = txn.stage("primitive", "p_vip", **VIP)
    assert res["changes"]["old"] is None
    elem = cib.find_by_id(txn.target, "p_vip")
    assert [e.get("id") for e in elem.iter() if e.get("id")] == [
        "p_vip", "p_vip-instance_attributes", "p_vip-instance_attributes-ip",
        "p_vip-instance_attributes-cidr_netmask", "p_vip-monitor-10s"]


def test_validation_against_the_agent_meta_data_handed_in():
    def staged(**spec):
        txn = stage.begin(EMPTY)
        txn.stage("primitive", "p_vip", **spec)
        assert txn.agents_to_validate() == {spec["agent"]}
        return txn

    with pytest.raises(stage.PcmkError, match=r"primitive p_vip: required parameter\(s\) 'ip'"):
        staged(agent=VIP["agent"], params={"cidr_netmask": 24}).validate(META)
    with pytest.raises(stage.PcmkError, match=r"primitive p_vip: parameter\(s\) 'bogus' not known by"):
        staged(agent=VIP["agent"], params={"ip": "1.2.3.4", "bogus": 1}).validate(META)
    with pytest.raises(stage.PcmkError, match=r"op 'promote' is not an action"):
        staged(agent=VIP["agent"], params={"ip": "1.2.3.4"}, ops=[{"name": "promote", "interval": "0"}]).validate(META)
    with pytest.raises(stage.PcmkError, match="not a valid Pacemaker id"):
        stage.begin(EMPTY).stage("primitive", "1vip", **VIP)
    staged(**VIP).validate(META)


def test_missing_agent_is_an_error_unless_the_run_installs_it():
    txn = stage.begin(EMPTY)
    txn.stage("primitive", "p_api", agent="ocf:openstack:glance-api", params={"config": "/x"})
    with pytest.raises(stage.values.AgentNotFoundError, match="p_api: resource agent ocf:openstack:glance-api is"
                                                              " not installed on this node"):
        txn.validate({"ocf:openstack:glance-api": "crm_resource --show-metadata: no such agent"})
    txn.validate({"ocf:openstack:glance-api": "missing"}, {"ocf:openstack:glance-api": "salt://agent"})
    assert "from salt://agent" in txn.notes[0] and "checked when applied" in txn.notes[0]


def test_secret_values_masked_in_stage_results_and_errors():
    txn = stage.begin(EMPTY, ["state"])
    res = txn.stage("primitive", "p_d", agent="ocf:heartbeat:Dummy",
                    params={"passwd": "pw-123456", "state": "s-9", "api_token": "tok-77"})
    assert res["changes"]["new"]["params"] == {"passwd": "********", "state": "********", "api_token": "********"}
    with pytest.raises(stage.PcmkError) as err:
        txn.stage("primitive", "p_e", agent="ocf:heartbeat:Dummy", params={"passwd": "pw-123456", "nope": "pw-123456"},
                  ops="tok-77")
    assert "pw-123456" not in str(err.value) and "tok-77" not in str(err.value)
    assert txn.mask("echo pw-123456 s-9 tok-77") == "echo ******** ******** ********"
    assert txn.mask('value="a&amp;b" raw') == 'value="a&amp;b" raw'
    txn.secrets.add("a&b<c")
    assert txn.mask('value="a&amp;b&lt;c" raw a&b<c') == 'value="********" raw ********'


def test_group_moves_members_in_place():
    txn = stage.begin(HAND)
    res = txn.stage("group", "g", members=["p_vip", "p_other"])
    assert res["changes"]["new"]["members"] == ["p_vip", "p_other"]
    group = cib.find_by_id(txn.target, "g")
    assert [c.get("id") for c in group] == ["p_vip", "p_other"]
    assert group.find("primitive/operations/op").get("id") == "weird-op-id"
    with pytest.raises(stage.PcmkError, match="member 'nope' does not exist"):
        txn.stage("group", "g2", members=["nope"])


def test_clone_wraps_a_primitive_in_place_and_its_removal_keeps_a_declared_one():
    txn = stage.begin(HAND)
    txn.stage("primitive", "p_other", agent="ocf:heartbeat:Dummy")
    res = txn.stage("clone", "cl_other", rsc="p_other", meta={"interleave": True})
    assert res["changes"] == {"old": None, "new": {"type": "clone", "id": "cl_other", "members": ["p_other"],
                                                   "meta": {"interleave": "true"}}}
    resources = cib.section(txn.target, "resources")
    assert [c.get("id") for c in resources] == ["p_vip", "cl_other"]
    assert [c.get("id") for c in cib.find_by_id(txn.target, "cl_other") if c.tag == "primitive"] == ["p_other"]
    again = stage.begin(txn.target_xml())
    assert again.stage("clone", "cl_other", rsc="p_other", meta={"interleave": "true"})["changes"] == {}
    with pytest.raises(stage.PcmkError, match="it is the resource of clone cl_other; declare the clone absent"):
        again.stage("absent", "p_other")
    # the primitive is declared: it outlives its clone, back at the top level
    back = stage.begin(txn.target_xml())
    back.stage("primitive", "p_other", agent="ocf:heartbeat:Dummy")
    assert back.stage("absent", "cl_other")["changes"]["new"] is None
    assert cib.parents(back.target)[cib.find_by_id(back.target, "p_other")].tag == "resources"
    back.check_references()
    # not declared: it goes with the clone
    gone = stage.begin(txn.target_xml())
    gone.stage("absent", "cl_other")
    assert cib.find_by_id(gone.target, "p_other") is None
    for bad, words in [({"rsc": "nope"}, "'nope' does not exist"), ({"rsc": "col"}, "is a <rsc_colocation>"),
                       ({}, "rsc must name")]:
        with pytest.raises(stage.PcmkError, match=words):
            stage.begin(HAND).stage("clone", "cl", **bad)


def test_a_clone_left_empty_is_refused():
    txn = stage.begin(HAND)
    txn.stage("clone", "cl_a", rsc="p_other")
    txn.stage("clone", "cl_b", rsc="p_other")  # takes it from cl_a
    with pytest.raises(stage.PcmkError, match="clone cl_a would be left without a resource"):
        txn.check_references()


def test_a_tag_reference_is_not_the_object():
    txn = stage.begin(HAND)
    txn.stage("primitive", "p_vip", **VIP)
    txn.own("formula")
    txn = stage.begin(txn.target_xml())
    txn.stage("absent", "p_vip")
    assert txn.stage("absent", "p_vip")["changes"] == {}  # only the tag's obj_ref is left


def test_constraints_and_references():
    txn = stage.begin(HAND)
    res = txn.stage("colocation", "col", rsc="p_other", with_rsc="p_vip", score=500)
    assert res["changes"] == {"score": {"old": "inf", "new": "500"}}
    txn.stage("order", "o1", first="p_vip", then="p_other", kind="optional")
    assert cib.find_by_id(txn.target, "o1").get("kind") == "Optional"
    txn.stage("absent", "p_other")
    with pytest.raises(stage.PcmkError, match="constraint col refers to resource p_other which this run removes"):
        txn.check_references()
    with pytest.raises(stage.PcmkError, match="already used by a <primitive>"):
        txn.stage("order", "p_vip", first="a", then="b")


def test_properties_in_any_set_updated_in_place_and_removed():
    txn = stage.begin(EMPTY)
    res = txn.stage("property", "x", properties={"stonith-enabled": False, "no-quorum-policy": "stop"})
    assert res["changes"] == {"cluster": {"no-quorum-policy": {"old": None, "new": "stop"}}}
    res = txn.stage("property", "y", properties={"resource-stickiness": 100}, type="rsc_defaults")
    conf = txn.target.find("configuration")
    assert [c.tag for c in conf][:3] == ["crm_config", "rsc_defaults", "nodes"]
    assert res["changes"] == {"rsc_defaults": {"resource-stickiness": {"old": None, "new": "100"}}}
    assert txn.order == ["crm_config:cib-bootstrap-options", "rsc_defaults:rsc-options"]
    again = stage.begin(txn.target_xml())
    res = again.stage("property_absent", "rsc_defaults", type="rsc_defaults", properties=["resource-stickiness"])
    assert res["changes"] == {"rsc_defaults": {"resource-stickiness": {"old": "100", "new": None}}}
    assert cib.find_by_id(again.target, "rsc-options") is None  # the set it emptied goes too
    res = again.stage("property_absent", "c", properties=["no-such-property"])
    assert res["changes"] == {}


def test_declared_twice_differently_is_refused():
    txn = stage.begin(EMPTY)
    txn.stage("primitive", "p_vip", **VIP)
    with pytest.raises(stage.PcmkError, match="declared twice"):
        txn.stage("primitive", "p_vip", **dict(VIP, params={"ip": "198.51.100.99"}))


def test_the_cib_library_is_pure():
    # No Salt dunders, no process, no Salt: everything it needs is handed in (doc/crm.md, Layers).
    for name in ("pcmk_values", "pcmk_cib", "pcmk_stage"):
        tree = ast.parse((ROOT / "_utils" / f"{name}.py").read_text(encoding="utf-8"))
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not {n for n in names if n.startswith("__") and n.endswith("__")} - {"__file__", "__name__"}, name
        assert not imported & {"subprocess", "salt"}, name


def test_own_marks_the_declared_objects_and_removes_the_undeclared_owned_ones():
    txn = stage.begin(HAND)
    txn.stage("primitive", "p_vip", **VIP)
    txn.own("formula")
    assert txn.changes["formula"] == {"old": None, "new": {"type": "tag", "id": "formula", "members": ["p_vip"]}}
    owned = cib.parse(txn.target_xml())
    assert [ref.get("id") for ref in owned.find("configuration/tags/tag")] == ["p_vip"]
    # next run: p_vip renamed to p_vip2; the constraint "col" (not owned) still names p_vip
    txn = stage.begin(cib.to_xml(owned))
    txn.stage("primitive", "p_vip2", **dict(VIP, params={"ip": "198.51.100.11"}))
    txn.own("formula")
    assert txn.changes["p_vip"]["new"] is None and txn.changes["p_vip2"]["old"] is None
    assert txn.changes["formula"] == {"members": {"old": ["p_vip"], "new": ["p_vip2"]}}
    assert cib.find_by_id(txn.target, "p_other") is not None and cib.find_by_id(txn.target, "col") is not None
    with pytest.raises(stage.PcmkError, match="constraint col refers to resource p_vip which this run removes"):
        txn.check_references()
    # nothing declared: the owned objects and the tag go; what is not owned stays
    txn = stage.begin(cib.to_xml(owned).replace('<rsc_colocation id="col" score="inf" with-rsc="p_vip" rsc="p_other"/>',
                                                ""))
    txn.own("formula")
    assert set(txn.changes) == {"p_vip", "formula"} and txn.changes["formula"]["new"] is None
    assert cib.find_by_id(txn.target, "formula") is None and cib.find_by_id(txn.target, "p_other") is not None
    with pytest.raises(stage.PcmkError, match="already used by a <primitive>"):
        stage.begin(HAND).own("p_other")


def test_a_deleted_owned_object_is_recreated_despite_its_reference_in_the_tag():
    """An administrator deletes an owned constraint (cibadmin --delete leaves the tag's <obj_ref>): the next
    run re-creates it; the reference is not mistaken for an object using the id (shown failing when
    find_by_id matched <obj_ref>: "the id 'col_p' is already used by a <obj_ref>")."""
    txn = stage.begin(EMPTY)
    txn.stage("primitive", "p_vip", **VIP)
    txn.stage("primitive", "p_other", agent="ocf:heartbeat:Dummy")
    txn.stage("colocation", "col_p", rsc="p_other", with_rsc="p_vip", score="INFINITY")
    txn.own("formula")
    deleted = txn.target_xml().replace('<rsc_colocation id="col_p" rsc="p_other" with-rsc="p_vip" score="INFINITY" />', "")
    assert "<rsc_colocation" not in deleted and '<obj_ref id="col_p" />' in deleted
    txn = stage.begin(deleted)
    txn.stage("primitive", "p_vip", **VIP)
    txn.stage("primitive", "p_other", agent="ocf:heartbeat:Dummy")
    txn.stage("colocation", "col_p", rsc="p_other", with_rsc="p_vip", score="INFINITY")
    txn.own("formula")
    assert set(txn.changes) == {"col_p"} and txn.changes["col_p"]["old"] is None
    assert cib.find_by_id(txn.target, "col_p").tag == "rsc_colocation"
