"""Ownership on real Pacemaker tools (CIB_file): the formula's objects are the members of the CIB tag
``glance_ha``; crm.configured removes the members it no longer declares in the same transaction
and never touches anything outside the tag."""

import copy

import pytest
from crm_helpers import apply_sls, run

pytestmark = pytest.mark.usefixtures("glance_agent")

TAG = "glance_ha"
CLUSTER = "glance_ha-cluster"


def apply(modules, pillar, test=False):
    return {r.id: r for r in modules.state.sls("glance_ha.cluster", pillar=pillar, test=test)}


def ids(rsc="p_glance-api", vip="p_ip_glance-api", pub="p_ip_glance-api-public"):
    """The ids of glance_ha/cluster/objects.jinja for these resource ids."""
    return [rsc, vip, pub, f"col_{rsc}_with_{vip}", f"ord_{vip}_before_{rsc}", f"ord_{rsc}_stops_before_{vip}",
            f"col_{pub}_with_{vip}", f"ord_{pub}_before_{rsc}", f"ord_{rsc}_stops_before_{pub}"]


def members(cib):
    tag = cib.find(TAG)
    return None if tag is None else sorted(ref.get("id") for ref in tag.findall("obj_ref"))


def renamed(pillar, **cluster):
    data = copy.deepcopy(pillar)
    data["glance_ha"]["cluster"].update(cluster)
    return data


def test_the_tag_holds_exactly_the_declared_resources_and_constraints(modules, cib, pillar):
    res = apply(modules, pillar)[CLUSTER]
    assert res.result is True, res.comment
    assert members(cib) == sorted(ids())
    declared = ["p_ip_glance-api", "p_ip_glance-api-public", "p_glance-api"] + ids()[3:]
    assert res.changes[TAG] == {"old": None, "new": {"type": "tag", "id": TAG, "members": declared}}
    assert cib.verify().returncode == 0
    assert TAG not in apply(modules, pillar)[CLUSTER].changes


@pytest.mark.parametrize("rename, old, new", [
    ({"resource": "p_glance"}, {"rsc": "p_glance-api"}, {"rsc": "p_glance"}),
    ({"vip_resources": {"internal": "p_vip_int", "public": "p_vip_pub"}},
     {"vip": "p_ip_glance-api", "pub": "p_ip_glance-api-public"}, {"vip": "p_vip_int", "pub": "p_vip_pub"}),
])
def test_a_renamed_id_replaces_the_old_objects_in_one_transaction(modules, cib, pillar, rename, old, new):
    apply(modules, pillar)
    # the site's own objects, outside the tag: a resource and a constraint between its own resources
    cib.crm("primitive p_site ocf:heartbeat:Dummy\nprimitive p_site2 ocf:heartbeat:Dummy\n"
            "colocation col_site inf: p_site2 p_site")
    site = {i: cib.ids(i) for i in ("p_site", "p_site2", "col_site")}
    gone = sorted(set(ids(**old)) - set(ids(**new)))
    born = sorted(set(ids(**new)) - set(ids(**old)))
    changed = renamed(pillar, **rename)

    preview = apply(modules, changed, test=True)[CLUSTER]
    assert preview.result is None, preview.comment
    for obj in gone:
        assert preview.changes[obj]["new"] is None and preview.changes[obj]["old"]["id"] == obj, obj
        assert f"{obj} removed:" in preview.comment
    for obj in born:
        assert preview.changes[obj]["old"] is None, obj
    assert cib.find(gone[0]) is not None  # test=True wrote nothing

    epoch = cib.epoch
    res = apply(modules, changed)[CLUSTER]
    assert res.result is True, res.comment
    assert cib.epoch == epoch + 1  # one write
    assert [obj for obj in gone if cib.find(obj) is not None] == []
    assert [obj for obj in born if cib.find(obj) is None] == []
    assert members(cib) == sorted(ids(**new))
    assert {i: cib.ids(i) for i in site} == site  # never touched
    assert cib.verify().returncode == 0
    assert apply(modules, changed)[CLUSTER].changes == {}


def test_a_foreign_constraint_on_an_owned_resource_stops_the_rename(modules, cib, pillar):
    """A constraint of the site's own naming the old resource is not the formula's to remove: the rename
    fails naming it, and nothing is written."""
    apply(modules, pillar)
    cib.crm("primitive p_site ocf:heartbeat:Dummy\ncolocation col_site inf: p_site p_glance-api")
    before = cib.xml()
    res = apply(modules, renamed(pillar, resource="p_glance"))[CLUSTER]
    assert res.result is False
    assert "col_site" in res.comment and "p_glance-api" in res.comment and "Nothing written" in res.comment
    assert cib.xml() == before


def test_objects_outside_the_tag_are_never_removed(modules, cib):
    """An object with an id the formula used to own, but not in the tag (made by hand), stays."""
    sls = """
own:
  crm.configured:
    - owner: site_tag
    - objects:
      - primitive: p_a
        agent: ocf:heartbeat:Dummy
"""
    assert apply_sls(modules, sls)["own"].result is True
    cib.crm("primitive p_b ocf:heartbeat:Dummy")
    res = apply_sls(modules, sls.replace("p_a", "p_c"))["own"]
    assert res.result is True, res.comment
    assert res.changes["p_a"]["new"] is None and "p_b" not in res.changes
    assert cib.find("p_a") is None and cib.find("p_b") is not None and cib.find("p_c") is not None
    # nothing declared: the owned objects and the tag go
    empty = apply_sls(modules, "own:\n  crm.configured:\n    - owner: site_tag\n    - objects: []\n")["own"]
    assert empty.result is True, empty.comment
    assert cib.find("p_c") is None and cib.find("site_tag") is None and cib.find("p_b") is not None
    assert run("crm_verify", "--xml-file", str(cib.path), check=False).returncode == 0


def test_clean_removes_every_owned_object_and_the_tag(modules, cib, pillar):
    apply(modules, pillar)
    ret = {r.id: r for r in modules.state.sls("glance_ha.cluster.clean", pillar=pillar)}
    assert ret["glance_ha-cluster-clean"].result is True, ret["glance_ha-cluster-clean"].comment
    assert cib.find(TAG) is None and cib.find("p_glance-api") is None
