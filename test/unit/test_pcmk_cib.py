"""_utils/pcmk_cib.py: CIB XML parsing, normal forms, diffs, patches (pure; no Salt dunders set)."""

import xml.etree.ElementTree as ET

import pytest

from test.modload import load

cib = load("_utils/pcmk_cib.py")

EMPTY = """<cib admin_epoch="0" epoch="5" num_updates="2"><configuration><crm_config>
<cluster_property_set id="cib-bootstrap-options">
<nvpair id="cib-bootstrap-options-stonith-enabled" name="stonith-enabled" value="false"/>
</cluster_property_set></crm_config><nodes/><resources/><constraints/></configuration><status/></cib>"""

SECRETS = """<cib admin_epoch="0" epoch="1" num_updates="0"><configuration><crm_config/><nodes/><resources>
<primitive id="p" class="ocf" provider="heartbeat" type="Dummy"><instance_attributes id="p-ia">
<nvpair id="p-1" name="api_token" value="tok-1"/><nvpair id="p-2" name="secret_key" value="key-2"/>
<nvpair id="p-3" name="db_password" value="pw-3"/><nvpair id="p-4" name="user" value="u-4"/>
<nvpair id="p-5" name="state" value="s-5"/></instance_attributes></primitive>
</resources><constraints/></configuration><status/></cib>"""


def test_versions_and_cib_parsing():
    root = cib.parse(EMPTY)
    assert cib.versions(root) == (0, 5, 2)
    with pytest.raises(ValueError, match="not valid XML"):
        cib.parse("<cib>")
    assert ET.fromstring(cib.to_xml(root)).get("epoch") == "5"


def test_the_one_secrets_rule_masks_parameters():
    root = cib.parse(SECRETS)
    shown = cib.normalise(cib.find_by_id(root, "p"), ["state"])
    assert shown["params"] == {"api_token": "********", "secret_key": "********", "db_password": "********",
                               "user": "u-4", "state": "********"}
    assert cib.secret_values(root, ["state"]) == {"tok-1", "key-2", "pw-3", "s-5"}
    assert cib.objects(root, "primitive")["p"] == shown | {"params": dict(shown["params"], state="s-5")}


def test_diff_masks_changed_secrets():
    before = cib.internal(cib.find_by_id(cib.parse(SECRETS), "p"))
    after = dict(before, params=dict(before["params"], api_token="tok-9", user="u-9"))
    assert cib.diff(before, after) == {"params": {"api_token": {"old": "********", "new": "********"},
                                                  "user": {"old": "u-4", "new": "u-9"}}}


def test_summary_lists_every_changed_leaf():
    changes = {"params": {"ip": {"old": "1", "new": "2"}, "os_password": {"old": "********", "new": "********"}},
               "ops": {"monitor-10s": {"timeout": {"old": "20s", "new": "30s"}}}}
    assert cib.summary(changes) == ["params.ip: '1' -> '2'", "params.os_password: '********' -> '********'",
                                    "ops.monitor-10s.timeout: '20s' -> '30s'"]
    created = cib.summary({"old": None, "new": {"type": "primitive", "id": "p", "agent": "ocf:x:y"}})
    assert created == ['new: {"agent": "ocf:x:y"}']


@pytest.mark.parametrize("path,ok", [("/cib/configuration/resources", True), ("/cib/status", False),
                                     ("/cib", True)])
def test_patch_scope(path, ok):
    patch = (f'<diff format="2"><change operation="modify" path="{path}"><change-list>'
             '<change-attr name="num_updates" operation="set" value="1"/></change-list></change></diff>')
    if ok:
        cib.check_patch_scope(patch)
    else:
        with pytest.raises(ValueError):
            cib.check_patch_scope(patch)


def test_rebase_keeps_the_fresh_status_and_the_staged_configuration():
    read = cib.parse(EMPTY)
    fresh = cib.parse(EMPTY.replace('num_updates="2"', 'num_updates="7"').replace(
        "<status/>", '<status><node_state id="1"/></status>'))
    staged = EMPTY.replace("<resources/>", '<resources><primitive id="x" class="ocf" provider="h" type="D"/>'
                                           "</resources>")
    assert cib.same_configuration(read, fresh)
    assert not cib.same_configuration(read, cib.parse(staged))
    out = cib.parse(cib.rebase(fresh, staged))
    assert cib.versions(out) == (0, 5, 8)
    assert out.find("status/node_state") is not None and cib.find_by_id(out, "x") is not None


def test_agent_metadata_is_parsed_from_text():
    text = ('<?xml version="1.0"?><!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd"><resource-agent name="D">'
            '<parameters><parameter name="ip" required="1" unique="1"/><parameter name="nic"/></parameters>'
            '<actions><action name="start"/><action name="monitor"/></actions></resource-agent>')
    assert cib.agent_metadata("ocf:h:D", text) == {
        "params": {"ip": {"required": True, "unique": True}, "nic": {"required": False, "unique": False}},
        "actions": ["monitor", "start"]}
    with pytest.raises(ValueError, match="not valid XML"):
        cib.agent_metadata("ocf:h:D", "<resource-agent")


def test_configuration_only_empties_status_and_keeps_configuration():
    text = ('<cib epoch="3"><configuration><resources><primitive id="p" class="ocf" provider="heartbeat" '
            'type="Dummy"/></resources></configuration><status><node_state id="1" uname="n1"/></status></cib>')
    out = cib.parse(cib.configuration_only(text))
    assert list(out.find("status")) == []
    assert out.find("configuration/resources/primitive").get("id") == "p" and out.get("epoch") == "3"


def test_agent_users_finds_primitives_anywhere():
    root = cib.parse('<cib><configuration><resources>'
                     '<primitive id="a" class="ocf" provider="openstack" type="glance-api"/>'
                     '<clone id="c"><primitive id="b" class="ocf" provider="openstack" type="glance-api"/></clone>'
                     '<primitive id="v" class="ocf" provider="heartbeat" type="IPaddr2"/>'
                     '</resources></configuration></cib>')
    assert cib.agent_users(root, "ocf:openstack:glance-api") == ["a", "b"]
    assert cib.agent_users(root, "ocf:openstack:nothing") == []
