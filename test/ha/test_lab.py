"""End to end on the lab: the formula applied to three controllers at once from one master."""

import collections
import xml.etree.ElementTree as ET

from test.ha.conftest import object_ids

RESOURCE = "p_glance-api"


def states_of(ret):
    assert isinstance(ret, dict), f"not a state return (render error?): {str(ret)[:3000]}"
    return ret.values()


def test_concurrent_apply_succeeds_on_every_controller(lab, first_apply):
    rc, data = first_apply
    assert sorted(data) == [lab.node_name(n) for n in lab.node_range]
    failed = {m: [f"{s['__id__']}: {s['comment']}" for s in states_of(r) if s["result"] is not True]
              for m, r in data.items()}
    assert failed == {m: [] for m in data}
    assert rc == 0


def test_one_set_of_pacemaker_objects(lab, first_apply):
    cib = ET.fromstring(lab.exec(1, ["cibadmin", "--query"]).stdout)
    prims = cib.findall(".//resources//primitive")
    by_type = collections.Counter(p.get("type") for p in prims)
    assert by_type["glance-api"] == 1, [p.get("id") for p in prims]
    vips = collections.Counter(
        nv.get("value") for p in prims if p.get("type") == "IPaddr2"
        for nv in p.findall("./instance_attributes/nvpair") if nv.get("name") == "ip")
    assert vips == {lab.vip_internal: 1, lab.vip_public: 1}
    assert len(prims) == 3, [p.get("id") for p in prims]
    # No constraint twice (same kind, same resources): concurrent writers would have duplicated them.
    cons = collections.Counter(
        (c.tag, tuple(sorted((k, v) for k, v in c.attrib.items() if k not in ("id", "score"))))
        for c in cib.find(".//constraints"))
    assert cons and max(cons.values()) == 1, cons
    ids = object_ids(cib)
    assert len(ids) == len(set(ids)), [i for i, c in collections.Counter(ids).items() if c > 1]


def test_one_set_of_endpoints(lab, token, first_apply):
    r = lab.client_call("request", url=f"{lab.auth_url}/services?type=image", token=token)
    services = r["body"]["services"]
    assert [s["name"] for s in services] == ["glance"]
    r = lab.client_call("request", url=f"{lab.auth_url}/endpoints?service_id={services[0]['id']}", token=token)
    got = sorted((e["interface"], e["url"], e["region_id"]) for e in r["body"]["endpoints"])
    assert got == [("admin", f"http://{lab.vip_internal}:9292", "RegionOne"),
                   ("internal", f"http://{lab.vip_internal}:9292", "RegionOne"),
                   ("public", f"http://{lab.vip_public}:9292", "RegionOne")]


def test_second_apply_changes_nothing(lab, second_apply):
    rc, data = second_apply
    assert sorted(data) == [lab.node_name(n) for n in lab.node_range]
    changed = {m: [f"{s['__id__']}: {s['changes']}" for s in states_of(r) if s["changes"] or not s["result"]]
               for m, r in data.items()}
    assert changed == {m: [] for m in data}
    assert rc == 0


def test_image_api_needs_a_token(lab, first_apply):
    r = lab.client_call("request", url=f"{lab.image_url(public=True)}/v2/images")
    assert r["status"] == 401


def test_image_roundtrip_through_the_vips(lab, token, uploaded_image):
    assert uploaded_image["status"] == "active"
    for public in (True, False):
        r = lab.client_call("download", url=lab.image_url(public), token=token, id=uploaded_image["id"])
        assert r["status"] == 200
        assert r["sha256"] == uploaded_image["sha256"]
    listed = lab.client_call("request", url=f"{lab.image_url(True)}/v2/images", token=token)["body"]["images"]
    assert uploaded_image["id"] in [i["id"] for i in listed]


def test_upload_sent_notifications(lab, uploaded_image):
    r = lab.client_call("notifications", amqp_url=lab.secret["rabbit_amqp_url"], wait=20,
                        until="image.activate")
    assert "image.create" in r["events"], r
    assert "image.upload" in r["events"] or "image.activate" in r["events"], r


def test_glance_runs_on_exactly_one_controller(lab, first_apply):
    where = lab.locate(RESOURCE)
    assert len(where) == 1
    assert lab.glance_nodes() == where
    assert lab.vip_holders(lab.vip_internal) == where
    assert lab.vip_holders(lab.vip_public) == where


def test_crm_shell_works_inside_a_controller(lab, first_apply):
    """An operator's first commands in a kept lab: crmsh's status and configuration views."""
    names = [lab.node_name(n) for n in lab.node_range]
    status = lab.exec(2, ["crm", "status"], check=False, timeout=60)
    assert status.returncode == 0, status.stdout + status.stderr
    assert all(name in status.stdout for name in names), status.stdout
    assert RESOURCE in status.stdout
    shown = lab.exec(2, ["crm", "configure", "show"], check=False, timeout=60)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert all(f"node {n}: {name}" in shown.stdout for n, name in zip(lab.node_range, names)), shown.stdout
    assert f"primitive {RESOURCE} ocf:openstack:glance-api" in shown.stdout
