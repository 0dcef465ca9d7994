"""glance_ha.clean on the lab: after an apply on the three controllers, the clean removes what the
formula made (its Pacemaker objects, its image service and endpoints, the agent and the files it
wrote) and nothing else (a foreign primitive and a foreign Keystone service survive untouched); an
apply afterwards brings back the same objects and an image round-trips through the VIPs again."""

import os
import xml.etree.ElementTree as ET

import pytest

from test.ha.conftest import RESOURCE, restore, wait_for

FOREIGN_PRIMITIVE = "p_foreign_dummy"
FOREIGN_SERVICE = {"type": "foreign-test", "name": "foreign", "description": "not glance_ha's"}
FOREIGN_URL = "http://192.0.2.1:4242"
LAB_PROPERTIES = ("stonith-enabled", "dc-deadtime")  # the lab's, seeded before the formula runs
AGENT, CONFIG = "/usr/lib/ocf/resource.d/openstack/glance-api", "/etc/glance/glance-api.conf"
CREDENTIALS = "/etc/glance/ocf-credentials"  # written whenever the pillar has the credentials
FILES = (AGENT, CONFIG, CREDENTIALS)


def _canon(elem):
    return ET.canonicalize(ET.tostring(elem, encoding="unicode"), strip_text=True)


def cib(lab):
    """The CIB's configuration, as comparable data."""
    conf = ET.fromstring(lab.exec(lab.live_nodes()[0], ["cibadmin", "--query"]).stdout).find("configuration")
    return {
        "primitives": {p.get("id"): _canon(p) for p in conf.iterfind("./resources//primitive")},
        "resources": sorted(e.get("id") for e in conf.find("resources")),
        "constraints": {c.get("id"): _canon(c) for c in conf.find("constraints")},
        "rsc_defaults": {nv.get("name"): nv.get("value") for nv in conf.iterfind("./rsc_defaults//nvpair")},
        "properties": {nv.get("name"): nv.get("value") for nv in conf.iterfind("./crm_config//nvpair")},
    }


def catalog(lab, token):
    """{(type, name): {'id', 'endpoints': sorted (interface, url, region)}} of every Keystone service."""
    services = lab.client_call("request", url=f"{lab.auth_url}/services", token=token)["body"]["services"]
    endpoints = lab.client_call("request", url=f"{lab.auth_url}/endpoints", token=token)["body"]["endpoints"]
    return {(s["type"], s["name"]): {
        "id": s["id"],
        "endpoints": sorted((e["interface"], e["url"], e["region_id"]) for e in endpoints
                            if e["service_id"] == s["id"])} for s in services}


def files(lab):
    """{node: [paths of FILES that exist there]}."""
    return {lab.node_name(n): [f for f in FILES if lab.exec(n, ["test", "-e", f], check=False).returncode == 0]
            for n in lab.node_range}


def failed_states(data):
    """{minion: [what failed]} of a salt run's return ([] everywhere = every state succeeded)."""
    out = {}
    for minion, ret in data.items():
        if not isinstance(ret, dict):  # a render error comes back as a list of messages
            out[minion] = [str(ret)[:3000]]
            continue
        out[minion] = [f"{s.get('__id__')}: {s.get('comment')}" for s in ret.values()
                       if not isinstance(s, dict) or s.get("result") is not True]
    return out


def roundtrip(lab, token, name):
    img = lab.run_dir / f"{name}.raw"
    img.write_bytes(os.urandom(1 << 20))
    up = lab.client_call("upload", url=lab.image_url(public=True), token=token, file=str(img), name=name)
    img.unlink()
    assert up["status"] == "active", up
    for public in (True, False):
        down = lab.client_call("download", url=lab.image_url(public), token=token, id=up["id"])
        assert (down["status"], down["sha256"]) == (200, up["sha256"])


@pytest.fixture(scope="module")
def runs(lab, first_apply, token):
    """Applied -> foreign objects added -> glance_ha.clean -> glance_ha again, with a snapshot of
    the CIB, the catalog and the files after each step."""
    restore(lab)
    snap = {"applied": (cib(lab), catalog(lab, token), files(lab))}
    node = lab.live_nodes()[0]
    lab.exec(node, ["cibadmin", "--create", "-o", "resources", "--xml-text",
                    f'<primitive id="{FOREIGN_PRIMITIVE}" class="ocf" provider="heartbeat" type="Dummy"/>'])
    svc = lab.client_call("request", method="POST", url=f"{lab.auth_url}/services", token=token,
                          body={"service": FOREIGN_SERVICE})
    assert svc["status"] == 201, svc
    svc_id = svc["body"]["service"]["id"]
    ep = lab.client_call("request", method="POST", url=f"{lab.auth_url}/endpoints", token=token,
                         body={"endpoint": {"service_id": svc_id, "interface": "public", "url": FOREIGN_URL,
                                            "region_id": "RegionOne"}})
    assert ep["status"] == 201, ep
    lab.wait_settled(120)
    snap["foreign"] = (cib(lab), catalog(lab, token), files(lab))
    try:
        snap["clean_run"] = lab.salt("ctl*", "state.apply", "glance_ha.clean", timeout=900)
        lab.wait_settled(180)
        snap["cleaned"] = (cib(lab), catalog(lab, token), files(lab))
        snap["reapply_run"] = lab.salt("ctl*", "state.apply", "glance_ha", timeout=900)
        lab.wait_settled(180)
        snap["reapplied"] = (cib(lab), catalog(lab, token), files(lab))
        yield snap
    finally:
        lab.exec(node, ["crm_resource", "--resource", FOREIGN_PRIMITIVE, "--set-parameter", "target-role",
                        "--meta", "--parameter-value", "Stopped"], check=False)
        lab.wait_settled(120)
        lab.exec(node, ["cibadmin", "--delete", "--xml-text", f'<primitive id="{FOREIGN_PRIMITIVE}"/>'],
                 check=False)
        lab.client_call("request", method="DELETE", url=f"{lab.auth_url}/services/{svc_id}", token=token)
        restore(lab)


def test_clean_succeeds_on_every_controller(lab, runs):
    rc, data = runs["clean_run"]
    assert sorted(data) == [lab.node_name(n) for n in lab.node_range]
    assert failed_states(data) == {m: [] for m in data}
    assert rc == 0


def test_nothing_of_the_formula_left_in_the_cib(runs):
    applied, _, _ = runs["applied"]
    foreign, _, _ = runs["foreign"]
    cleaned, _, _ = runs["cleaned"]
    assert RESOURCE in applied["primitives"]
    assert list(cleaned["primitives"]) == [FOREIGN_PRIMITIVE]
    assert cleaned["resources"] == [FOREIGN_PRIMITIVE]
    assert cleaned["constraints"] == {}
    assert "resource-stickiness" in applied["rsc_defaults"]
    assert "resource-stickiness" not in cleaned["rsc_defaults"]
    # what it does not own: the foreign primitive as it was, the lab's own cluster properties
    assert cleaned["primitives"][FOREIGN_PRIMITIVE] == foreign["primitives"][FOREIGN_PRIMITIVE]
    assert {k: cleaned["properties"].get(k) for k in LAB_PROPERTIES} == \
        {k: applied["properties"][k] for k in LAB_PROPERTIES}


def test_nothing_of_the_formula_left_in_the_catalog(runs):
    _, applied, _ = runs["applied"]
    _, foreign, _ = runs["foreign"]
    _, cleaned, _ = runs["cleaned"]
    assert [key for key in applied if key[0] == "image"] == [("image", "glance")]
    assert [key for key in cleaned if key[0] == "image"] == []
    others = {key: value for key, value in foreign.items() if key[0] != "image"}
    assert ("identity", "keystone") in others and ("foreign-test", "foreign") in others
    assert cleaned == others


def test_nothing_of_the_formula_left_on_disk(lab, runs):
    _, _, applied = runs["applied"]
    _, _, cleaned = runs["cleaned"]
    assert sorted(applied) == [lab.node_name(n) for n in lab.node_range]
    assert all(AGENT in paths and CONFIG in paths for paths in applied.values()), applied
    assert cleaned == {lab.node_name(n): [] for n in lab.node_range}


def test_apply_after_clean_gives_the_same_result(lab, token, runs):
    rc, data = runs["reapply_run"]
    assert failed_states(data) == {m: [] for m in data} and rc == 0
    cib_applied, cat_applied, files_applied = runs["applied"]
    cib_again, cat_again, files_again = runs["reapplied"]
    ours = {k: v for k, v in cib_again["primitives"].items() if k != FOREIGN_PRIMITIVE}
    assert ours == cib_applied["primitives"]
    assert cib_again["constraints"] == cib_applied["constraints"]
    assert cib_again["rsc_defaults"] == cib_applied["rsc_defaults"]
    assert cat_again[("image", "glance")]["endpoints"] == cat_applied[("image", "glance")]["endpoints"]
    assert files_again == files_applied
    assert len(lab.locate(RESOURCE)) == 1
    wait_for("the image API through the VIP",
             lambda: lab.client_call("request", url=f"{lab.image_url(True)}/v2/images", token=token,
                                     request_timeout=5)["status"] == 200, 120, 0.5)
    roundtrip(lab, token, "after-clean")
