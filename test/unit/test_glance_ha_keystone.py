"""The Keystone catalog rules (_utils/glance_ha_keystone.py), loaded with no Salt dunders: auth URL and
endpoint URL rules, interfaces, the service diff, the endpoint plan (diff, duplicates, deletions) and
which failed requests certainly never reached Keystone."""

import pytest
import requests
import urllib3

from test.modload import load

kc = load("_utils/glance_ha_keystone.py")


# --------------------------------------------------------------------------- auth URL
@pytest.mark.parametrize("url,expected", [
    ("http://10.0.0.11:5000", "http://10.0.0.11:5000/v3"),
    ("http://10.0.0.11:5000/", "http://10.0.0.11:5000/v3"),
    ("http://10.0.0.11:5000/v3", "http://10.0.0.11:5000/v3"),
    ("http://10.0.0.11:5000/v3/", "http://10.0.0.11:5000/v3"),
    ("https://keystone.example.org/identity", "https://keystone.example.org/identity/v3"),
    ("https://keystone.example.org/identity/v3", "https://keystone.example.org/identity/v3"),
    (" http://[2001:db8::1]:5000 ", "http://[2001:db8::1]:5000/v3"),
    ("http://h:5000/V3", "http://h:5000/v3"),
])
def test_auth_url_v3_and_bare(url, expected):
    assert kc.normalize_auth_url(url) == expected
    assert kc.auth_url_problem(url.strip()) is None


@pytest.mark.parametrize("url,suggest", [
    ("http://10.0.0.11:5000/v2.0", "http://10.0.0.11:5000/v3"),
    ("http://10.0.0.11:35357/v2.0/", "http://10.0.0.11:35357/v3"),
    ("https://k.example.org/identity/v2", "https://k.example.org/identity/v3"),
    ("http://h/v1", "http://h/v3"),
])
def test_auth_url_other_versions_refused_pointing_to_v3(url, suggest):
    problem = kc.auth_url_problem(url)
    assert "not supported" in problem and f"use the v3 URL {suggest}" in problem
    with pytest.raises(ValueError) as info:
        kc.normalize_auth_url(url)
    assert str(info.value) == problem


@pytest.mark.parametrize("url", ["", None, "ftp://h/v3", "10.0.0.11:5000", "http://:5000/v3",
                                 "http://h:99999/v3", "http://h:5000/v3?x=1", "http://h x:5000/v3"])
def test_auth_url_malformed(url):
    assert kc.auth_url_problem(url)
    with pytest.raises(ValueError):
        kc.normalize_auth_url(url)


def test_auth_url_reasons_read_after_the_setting_name():
    assert kc.auth_url_problem("") == "is required (e.g. http://10.0.0.11:5000/v3)"
    assert kc.auth_url_problem("10.0.0.11:5000") == "'10.0.0.11:5000' is not an http:// or https:// URL"


# --------------------------------------------------------------------------- endpoint URL, interfaces
@pytest.mark.parametrize("url", ["http://10.0.0.11:9292", "https://img.example.org", "http://[2001:db8::5]:9292/",
                                 "http://h:8774/v2.1/$(project_id)s"])
def test_endpoint_url_ok(url):
    assert kc.endpoint_url_problem(url) is None


@pytest.mark.parametrize("url", ["", None, 9292, "10.0.0.11:9292", "ftp://h", "http://h :9292", " http://h",
                                 "http://h:0x1/", "http:///path", "http://h:0/"])
def test_endpoint_url_bad(url):
    assert kc.endpoint_url_problem(url)


def test_interfaces():
    assert kc.interfaces() == ("public", "internal", "admin")
    assert kc.interface_problem("internal") is None
    assert kc.interface_problem("private") == "interface 'private' is not one of public, internal, admin"
    assert kc.select_interfaces(None) == (["public", "internal", "admin"], [])
    assert kc.select_interfaces(["admin", "bogus"]) == (["admin", "bogus"], ["bogus"])


# --------------------------------------------------------------------------- services
def test_service_changes():
    svc = {"id": "s", "name": "glance", "type": "image", "enabled": True}
    assert kc.service_changes(svc, None, True) == {}
    assert kc.service_changes(svc, "", True) == {}                 # no description is ""
    assert kc.service_changes(svc, "Images", False) == {"description": "Images", "enabled": False}
    assert kc.service_changes(dict(svc, description="Images"), None, True) == {}


# --------------------------------------------------------------------------- failed requests
def test_never_sent_distinguishes_refused_from_read_timeout():
    refused = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, "/v3", urllib3.exceptions.NewConnectionError(None, "Connection refused")))
    wrapped = RuntimeError("ksa ConnectFailure")
    wrapped.__context__ = refused
    assert kc.never_sent(wrapped)
    assert kc.never_sent(requests.exceptions.ConnectTimeout("connect timed out"))
    read = RuntimeError("ksa ConnectTimeout")
    read.__context__ = requests.exceptions.ReadTimeout("read timed out")
    assert not kc.never_sent(read)
    assert not kc.never_sent(requests.exceptions.ConnectionError("Connection aborted"))


# --------------------------------------------------------------------------- the endpoint plan
SVC, OTHER = "svc-image", "svc-compute"
DESIRED = {"public": "http://203.0.113.11:9292", "internal": "http://10.0.0.11:9292",
           "admin": "http://10.0.0.11:9292"}


def ep(id_, iface, url, region="RegionOne", service=SVC, enabled=True):
    return {"id": id_, "interface": iface, "url": url, "region_id": region, "service_id": service,
            "enabled": enabled}


def test_plan_empty_catalog_creates_all():
    plan = kc.plan_endpoints([], DESIRED, SVC, "RegionOne")
    assert plan["create"] == {i: {"url": u, "enabled": True} for i, u in DESIRED.items()}
    assert not plan["update"] and not plan["duplicates"]
    assert kc.plan_changes(plan) == {i: {"old": None, "new": {"url": u, "enabled": True}}
                                     for i, u in DESIRED.items()}
    assert [(i, a) for i, a, _s in kc.plan_steps(plan)] == [("public", "create"), ("internal", "create"),
                                                             ("admin", "create")]
    assert kc.plan_summary(plan) == "public, internal, admin created"


def test_plan_noop():
    current = [ep("a", "public", DESIRED["public"]), ep("b", "internal", DESIRED["internal"]),
               ep("c", "admin", DESIRED["admin"])]
    plan = kc.plan_endpoints(current, DESIRED, SVC, "RegionOne")
    assert plan["unchanged"] == {"public": "a", "internal": "b", "admin": "c"}
    assert kc.plan_changes(plan) == {} and kc.plan_steps(plan) == []


def test_plan_updates_in_place_with_exact_diff():
    current = [ep("a", "public", "http://old:9292"), ep("b", "internal", DESIRED["internal"], enabled=False),
               ep("c", "admin", DESIRED["admin"])]
    plan = kc.plan_endpoints(current, DESIRED, SVC, "RegionOne")
    assert kc.plan_changes(plan) == {
        "public": {"old": {"url": "http://old:9292", "id": "a"}, "new": {"url": DESIRED["public"], "id": "a"}},
        "internal": {"old": {"enabled": False, "id": "b"}, "new": {"enabled": True, "id": "b"}},
    }
    assert not plan["create"]
    assert kc.plan_summary(plan) == "public, internal updated in place"
    # enabled=None leaves the flag alone
    assert "internal" not in kc.plan_endpoints(current, DESIRED, SVC, "RegionOne", enabled=None)["update"]
    # enabled=False disables all three, creating nothing
    off = kc.plan_endpoints(current, DESIRED, SVC, "RegionOne", enabled=False)
    assert set(off["update"]) == {"public", "admin"} and off["update"]["admin"]["new"] == {"enabled": False}


def test_plan_ignores_other_services_regions_and_unmanaged_interfaces():
    current = [ep("x1", "public", "http://x", region="RegionTwo"), ep("x2", "public", "http://x", service=OTHER),
               ep("x3", "internal", "http://x", region="RegionTwo"), ep("x4", "internal", "http://x", service=OTHER),
               ep("b", "internal", "http://keep-me:9292")]
    plan = kc.plan_endpoints(current, {"public": DESIRED["public"], "internal": None, "admin": None},
                             SVC, "RegionOne")
    assert plan["create"] == {"public": {"url": DESIRED["public"], "enabled": True}}
    assert not plan["update"] and not plan["duplicates"] and not plan["unchanged"]


def test_plan_duplicates_named_and_message():
    current = [ep("z2", "public", DESIRED["public"]), ep("z1", "public", "http://other"),
               ep("b", "internal", "http://old"), ep("c", "admin", DESIRED["admin"]),
               ep("c2", "admin", DESIRED["admin"])]
    plan = kc.plan_endpoints(current, DESIRED, SVC, "RegionOne")
    assert plan["duplicates"] == {"public": ["z1", "z2"], "admin": ["c", "c2"]}
    msg = kc.duplicates_message(plan["duplicates"], "glance", "RegionOne")
    for id_ in ("z1", "z2", "c", "c2"):
        assert id_ in msg
    assert "openstack endpoint delete z2 c2" in msg and "Nothing was changed" in msg


def test_plan_absent():
    current = [ep("a", "public", "u"), ep("a2", "public", "u"), ep("b", "internal", "u"),
               ep("x", "public", "u", region="RegionTwo"), ep("y", "admin", "u", service=OTHER)]
    assert kc.plan_absent(current, SVC, "RegionOne", ["public", "internal", "admin"]) == {
        "public": ["a", "a2"], "internal": ["b"]}
    assert kc.plan_absent(current, SVC, "RegionOne", ["admin"]) == {}
