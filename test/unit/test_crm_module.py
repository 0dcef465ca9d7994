"""Pure functions of _modules/crm.py: values, normalisation, diffs, staging on parsed XML, masking.

Staging runs on an in-memory CIB with the agent meta-data pre-seeded in ``__context__``: no
Pacemaker process is started here (the functional tests do that)."""

import importlib.util
import pathlib
import xml.etree.ElementTree as ET

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


crm = load("crm_exec_under_test", ROOT / "_modules" / "crm.py")

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
                                           "passwd": {"required": False, "unique": False}},
                                "actions": ["meta-data", "monitor", "start", "stop"]}}

VIP = {"agent": "ocf:heartbeat:IPaddr2", "params": {"ip": "198.51.100.10", "cidr_netmask": 24},
       "ops": [{"name": "monitor", "interval": "10s", "timeout": "20s"}]}


@pytest.fixture
def txn():
    crm.__context__ = {crm.META_KEY: dict(META)}
    crm.__grains__ = {"id": "unit"}

    def make(xml):
        return crm._new_txn(xml)

    yield make
    del crm.__context__


@pytest.mark.parametrize("text,millis", [
    ("30", 30000), ("30s", 30000), ("30sec", 30000), ("500ms", 500), ("1min", 60000), ("1m", 60000),
    ("2h", 7200000), ("PT5M", 300000), ("P1DT1S", 86401000), (45, 45000), ("0", 0), ("10us", 0)])
def test_durations(text, millis):
    assert crm.parse_duration_ms(text) == millis


@pytest.mark.parametrize("text", ["30x", "-5s", "", "s", "1.5s", "P", "PT", None, True, "ten"])
def test_bad_durations(text):
    assert crm.parse_duration_ms(text) is None


@pytest.mark.parametrize("value,canon", [("inf", "INFINITY"), ("+INFINITY", "INFINITY"), ("-inf", "-INFINITY"),
                                         (100, "100"), ("+7", "7"), ("red", None)])
def test_scores(value, canon):
    assert crm.canon_score(value) == canon


@pytest.mark.parametrize("key,cur,want,same", [
    ("timeout", "30", "30s", True), ("interval", "1min", "60s", True), ("interval", "1min", "30s", False),
    ("score", "inf", "INFINITY", True), ("role", "Master", "Promoted", True), ("role", "Slave", "Promoted", False),
    ("is-managed", "yes", "true", True), ("symmetrical", "0", "false", True),
    ("ip", "198.51.100.1", "198.51.100.01", False), ("config", "true", "yes", False),
    ("failure-timeout", "2min", "120s", True), ("dc-deadtime", "2s", "2000ms", True), ("x", None, None, True),
    ("x", None, "a", False)])
def test_same_value(key, cur, want, same):
    assert crm.same_value(key, cur, want) is same


def test_secret_names_and_masking():
    assert crm.is_secret("os_password") and crm.is_secret("DB_PASSWD") and crm.is_secret("token", ["Token"])
    assert not crm.is_secret("config")
    text = 'value="a&amp;b&lt;c" raw a&b<c and s3cr3t'
    assert crm.mask_text(text, {"a&b<c", "s3cr3t"}) == 'value="******" raw ****** and ******'


def test_tool_output_is_masked():
    # A real process whose stderr echoes a secret (as crm_verify/cibadmin may): masked on the way in.
    _rc, _out, err = crm._run(["sh", "-c", "echo 'bad value hunter2-x' >&2; exit 1"], secrets={"hunter2-x"})
    assert err.strip() == "bad value ******"


@pytest.mark.parametrize("agent,parts", [("ocf:heartbeat:IPaddr2", ("ocf", "heartbeat", "IPaddr2")),
                                         ("stonith:fence_xvm", ("stonith", None, "fence_xvm")),
                                         ("systemd:nginx", ("systemd", None, "nginx"))])
def test_split_agent(agent, parts):
    assert crm.split_agent(agent) == parts


@pytest.mark.parametrize("agent", ["ocf:heartbeat", "IPaddr2", "ocf::IPaddr2", ":x"])
def test_split_agent_refuses(agent):
    with pytest.raises(ValueError):
        crm.split_agent(agent)


def test_declared_ops_forms_and_errors():
    ops = crm._declared_ops("p", {"monitor": {"interval": "30s", "OCF_CHECK_LEVEL": 10, "on_fail": "restart"},
                                  "start": {"timeout": 60}})
    assert ops[0]["attrs"] == {"name": "monitor", "interval": "30s", "on-fail": "restart"}
    assert ops[0]["params"] == {"OCF_CHECK_LEVEL": "10"} and ops[0]["key"] == "monitor-30s"
    assert ops[1]["attrs"]["interval"] == "0s" and ops[1]["key"] == "start-0s"
    role = crm._declared_ops("p", [{"name": "monitor", "interval": 5, "role": "Master"}])
    assert role[0]["attrs"]["role"] == "Promoted" and role[0]["key"] == "monitor-Promoted-5s"
    for bad, words in [([{"name": "monitor"}], "interval is required"),
                       ([{"name": "monitor", "interval": "0"}], "greater than 0"),
                       ([{"name": "monitor", "interval": "5q"}], "'5q' is not a valid interval"),
                       ([{"name": "start", "timeout": "0"}], "timeout must be greater than 0"),
                       ([{"name": "monitor", "interval": 5, "timout": 3}], "unknown attribute 'timout'"),
                       ([{"name": "monitor", "interval": 5}, {"name": "monitor", "interval": "5s"}],
                        "monitor-5s declared more than once"),
                       ([{"interval": 5}], "needs a name"), ("monitor", "must be a list")]:
        with pytest.raises(crm.CrmError, match=words):
            crm._declared_ops("p", bad)


def test_normalisation_ignores_ids_order_and_spelling(txn):
    state = txn(HAND)
    elem = crm._find_by_id(state["target"], "p_vip")
    want = {"agent": VIP["agent"], "params": {"ip": "198.51.100.10", "cidr_netmask": "24"}, "meta": {},
            "utilization": {}, "ops": crm._declared_ops("p_vip", VIP["ops"]), "description": None}
    # 10000ms = 10s, 20 = 20s, other ids, other order, an operational target-role: no difference.
    assert crm._primitive_matches(elem, want)
    shown = crm._normalise(elem)
    assert shown["ops"] == {"monitor-10s": {"name": "monitor", "interval": "10000ms", "timeout": "20"}}
    assert shown["params"] == {"ip": "198.51.100.10", "cidr_netmask": "24"}


def test_stage_no_change_is_no_change(txn):
    state = txn(HAND)
    res = crm.stage("primitive", "p_vip", **VIP)
    assert res["changes"] == {}
    res = crm.stage("colocation", "col", rsc="p_other", with_rsc="p_vip")
    assert res["changes"] == {}
    assert state["order"] == [] and crm.commit()["comment"].startswith("Nothing to write")


def test_stage_corrects_in_place_keeping_ids(txn):
    state = txn(HAND)
    ids_before = [e.get("id") for e in crm._find_by_id(state["target"], "p_vip").iter()]
    res = crm.stage("primitive", "p_vip", agent=VIP["agent"], params={"ip": "198.51.100.20", "cidr_netmask": 24},
                    meta={"migration-threshold": 3},
                    ops=[{"name": "monitor", "interval": "15s", "timeout": "20s"}])
    assert res["changes"] == {
        "params": {"ip": {"old": "198.51.100.10", "new": "198.51.100.20"}},
        "meta": {"migration-threshold": {"old": None, "new": "3"}},
        "ops": {"monitor-15s": {"interval": {"old": "10000ms", "new": "15s"},
                                "op": {"old": "monitor-10s", "new": "monitor-15s"}}}}
    elem = crm._find_by_id(state["target"], "p_vip")
    ids_after = [e.get("id") for e in elem.iter()]
    assert ids_after[: len(ids_before)] == ids_before  # same ids; one nvpair added at the end of the set
    assert elem.find("meta_attributes/nvpair[@name='target-role']").get("value") == "Stopped"
    assert elem.find("operations/op").get("id") == "weird-op-id"
    assert state["order"] == ["p_vip"]
    # The CIB that was read is untouched (it is what crm_diff compares against).
    assert crm._find_by_id(state["read"], "p_vip").find("operations/op").get("interval") == "10000ms"


def test_stage_removes_undeclared_params_and_ops(txn):
    state = txn(HAND)
    res = crm.stage("primitive", "p_vip", agent=VIP["agent"], params={"ip": "198.51.100.10"}, ops=[])
    assert res["changes"]["params"] == {"cidr_netmask": {"old": "24", "new": None}}
    assert res["changes"]["ops"] == {"monitor-10s": {"old": {"name": "monitor", "interval": "10000ms",
                                                             "timeout": "20"}, "new": None}}
    elem = crm._find_by_id(state["target"], "p_vip")
    assert elem.find("operations") is None


def test_stage_creates_with_tool_style_ids(txn):
    state = txn(EMPTY)
    res = crm.stage("primitive", "p_vip", **VIP)
    assert res["changes"]["old"] is None
    elem = crm._find_by_id(state["target"], "p_vip")
    assert [e.get("id") for e in elem.iter() if e.get("id")] == [
        "p_vip", "p_vip-instance_attributes", "p_vip-instance_attributes-ip",
        "p_vip-instance_attributes-cidr_netmask", "p_vip-monitor-10s"]


def test_stage_validates_against_the_agent_meta_data(txn):
    txn(EMPTY)
    with pytest.raises(crm.CrmError, match=r"primitive p_vip: required parameter\(s\) 'ip'"):
        crm.stage("primitive", "p_vip", agent=VIP["agent"], params={"cidr_netmask": 24})
    with pytest.raises(crm.CrmError, match=r"primitive p_vip: parameter\(s\) 'bogus' not known by"):
        crm.stage("primitive", "p_vip", agent=VIP["agent"], params={"ip": "1.2.3.4", "bogus": 1})
    with pytest.raises(crm.CrmError, match=r"op 'promote' is not an action"):
        crm.stage("primitive", "p_vip", agent=VIP["agent"], params={"ip": "1.2.3.4"},
                  ops=[{"name": "promote", "interval": "0"}])
    with pytest.raises(crm.CrmError, match="not a valid Pacemaker id"):
        crm.stage("primitive", "1vip", **VIP)


def test_secret_values_masked_in_stage_results_and_errors(txn):
    txn(EMPTY)
    res = crm.stage("primitive", "p_d", agent="ocf:heartbeat:Dummy", params={"passwd": "pw-123456", "state": "s-9"},
                    secret_params=["state"])
    assert res["changes"]["new"]["params"] == {"passwd": "******", "state": "******"}
    with pytest.raises(crm.CrmError) as err:
        crm.stage("primitive", "p_e", agent="ocf:heartbeat:Dummy", params={"passwd": "pw-123456", "nope": "pw-123456"})
    assert "pw-123456" not in str(err.value) and "'nope'" in str(err.value)
    assert crm.mask("echo pw-123456 s-9") == "echo ****** ******"


def test_group_moves_members_in_place(txn):
    state = txn(HAND)
    res = crm.stage("group", "g", members=["p_vip", "p_other"])
    assert res["changes"]["new"]["members"] == ["p_vip", "p_other"]
    group = crm._find_by_id(state["target"], "g")
    assert [c.get("id") for c in group] == ["p_vip", "p_other"]
    assert group.find("primitive/operations/op").get("id") == "weird-op-id"
    with pytest.raises(crm.CrmError, match="member 'nope' does not exist"):
        crm.stage("group", "g2", members=["nope"])


def test_constraints_and_references(txn):
    state = txn(HAND)
    res = crm.stage("colocation", "col", rsc="p_other", with_rsc="p_vip", score=500)
    assert res["changes"] == {"score": {"old": "inf", "new": "500"}}
    crm.stage("order", "o1", first="p_vip", then="p_other", kind="optional")
    assert crm._find_by_id(state["target"], "o1").get("kind") == "Optional"
    crm.stage("absent", "p_other")
    with pytest.raises(crm.CrmError, match="constraint col refers to resource p_other which this run removes"):
        crm._check_references(state)
    with pytest.raises(crm.CrmError, match="already used by a <primitive>"):
        crm.stage("order", "p_vip", first="a", then="b")


def test_properties_in_any_set_updated_in_place(txn):
    state = txn(EMPTY)
    res = crm.stage("property", "x", properties={"stonith-enabled": False, "no-quorum-policy": "stop"})
    assert res["changes"] == {"cluster": {"no-quorum-policy": {"old": None, "new": "stop"}}}
    res = crm.stage("property", "y", properties={"resource-stickiness": 100}, type="rsc_defaults")
    conf = state["target"].find("configuration")
    assert [c.tag for c in conf][:3] == ["crm_config", "rsc_defaults", "nodes"]
    assert res["changes"] == {"rsc_defaults": {"resource-stickiness": {"old": None, "new": "100"}}}


def test_failed_declaration_blocks_the_commit(txn):
    txn(EMPTY)
    crm.stage("primitive", "p_vip", **VIP)
    crm.mark_failed("p_bad")
    ret = crm.commit()
    assert ret["result"] is False and "p_bad" in ret["comment"]


@pytest.mark.parametrize("path,ok", [("/cib/configuration/resources", True), ("/cib/status", False),
                                     ("/cib", True)])
def test_patch_scope(path, ok):
    patch = (f'<diff format="2"><change operation="modify" path="{path}"><change-list>'
             '<change-attr name="num_updates" operation="set" value="1"/></change-list></change></diff>')
    if ok:
        crm._check_patch_scope(patch)
    else:
        with pytest.raises(crm.CrmError):
            crm._check_patch_scope(patch)


def test_versions_and_cib_parsing():
    root = crm._parse_cib(EMPTY)
    assert crm._versions(root) == (0, 5, 2)
    with pytest.raises(crm.CrmError, match="not valid XML"):
        crm._parse_cib("<cib>")
    assert ET.fromstring(crm._to_xml(root)).get("epoch") == "5"
