"""Pure functions of the keystone_catalog modules: auth URL rules, endpoint URL checks, auth merging and
hashing, the endpoint plan (diff, duplicates), the writer decision. No services, no Salt loader."""

import importlib.util
import sys

import pytest
import requests
import urllib3
from salt.exceptions import SaltInvocationError

from test.conftest import FORMULA_ROOT

SECRET = "s3cr3t-Pa55word"


def _load(kind, name="keystone_catalog", block_ksa=False, monkeypatch=None):
    if block_ksa:
        # keystoneauth1 is installed here; hiding it is the only way to see __virtual__ refuse.
        for mod in [m for m in sys.modules if m == "keystoneauth1" or m.startswith("keystoneauth1.")]:
            monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setitem(sys.modules, "keystoneauth1", None)
    spec = importlib.util.spec_from_file_location(f"kc_{kind}_{block_ksa}", FORMULA_ROOT / f"_{kind}" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mod():
    return _load("modules")


@pytest.fixture(scope="module")
def st():
    return _load("states")


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
def test_auth_url_v3_and_bare(mod, url, expected):
    assert mod.normalize_auth_url(url) == expected


@pytest.mark.parametrize("url,suggest", [
    ("http://10.0.0.11:5000/v2.0", "http://10.0.0.11:5000/v3"),
    ("http://10.0.0.11:35357/v2.0/", "http://10.0.0.11:35357/v3"),
    ("https://k.example.org/identity/v2", "https://k.example.org/identity/v3"),
    ("http://h/v1", "http://h/v3"),
])
def test_auth_url_other_versions_refused_pointing_to_v3(mod, url, suggest):
    with pytest.raises(SaltInvocationError) as info:
        mod.normalize_auth_url(url)
    assert "not supported" in str(info.value)
    assert f"use the v3 URL {suggest}" in str(info.value)


@pytest.mark.parametrize("url", ["", None, "ftp://h/v3", "10.0.0.11:5000", "http://:5000/v3",
                                 "http://h:99999/v3", "http://h:5000/v3?x=1"])
def test_auth_url_malformed(mod, url):
    with pytest.raises(SaltInvocationError):
        mod.normalize_auth_url(url)


# --------------------------------------------------------------------------- endpoint URL
@pytest.mark.parametrize("url", ["http://10.0.0.11:9292", "https://img.example.org", "http://[2001:db8::5]:9292/",
                                 "http://h:8774/v2.1/$(project_id)s"])
def test_endpoint_url_ok(mod, url):
    assert mod.validate_endpoint_url(url) is None


@pytest.mark.parametrize("url", ["", None, 9292, "10.0.0.11:9292", "ftp://h", "http://h :9292", " http://h",
                                 "http://h:0x1/", "http:///path", "http://h:0/"])
def test_endpoint_url_bad(mod, url):
    assert mod.validate_endpoint_url(url)


# --------------------------------------------------------------------------- auth merging, hashing
def test_virtual_refuses_without_keystoneauth(monkeypatch):
    module = _load("modules", block_ksa=True, monkeypatch=monkeypatch)
    result = module.__virtual__()
    assert result[0] is False and "keystoneauth1" in result[1]


def test_resolve_auth_profile_then_kwargs(mod, monkeypatch):
    profiles = {"ks": {"auth_url": "http://h:5000", "username": "admin", "password": SECRET,
                       "project_name": "admin", "region": "RegionTwo", "unrelated": 1}}
    monkeypatch.setattr(mod, "__salt__", {"config.get": lambda key: profiles.get(key)}, raising=False)
    auth = mod._resolve_auth("ks", {"username": "other", "__pub_jid": "x"})
    assert auth["auth_url"] == "http://h:5000/v3"
    assert auth["username"] == "other" and auth["password"] == SECRET
    assert auth["user_domain_name"] == auth["project_domain_name"] == "Default"
    assert auth["region"] == "RegionTwo"
    # a dict works as a profile too
    assert mod._resolve_auth(profiles["ks"], {})["username"] == "admin"


def test_resolve_auth_errors_name_keys_not_values(mod, monkeypatch):
    monkeypatch.setattr(mod, "__salt__", {"config.get": lambda key: None}, raising=False)
    with pytest.raises(SaltInvocationError) as info:
        mod._resolve_auth(None, {"auth_url": "http://h:5000/v3", "password": SECRET, "pasword": SECRET})
    assert "pasword" in str(info.value) and SECRET not in str(info.value)
    with pytest.raises(SaltInvocationError) as info:
        mod._resolve_auth(None, {"auth_url": "http://h:5000/v3", "password": SECRET})
    assert "username" in str(info.value) and "project_name" in str(info.value)
    assert SECRET not in str(info.value)
    with pytest.raises(SaltInvocationError) as info:
        mod._resolve_auth("nope", {})
    assert "profile 'nope' not found" in str(info.value)
    with pytest.raises(SaltInvocationError) as info:
        mod._resolve_auth(None, {"auth_url": "http://h:5000/v2.0", "username": "a", "password": SECRET,
                                 "project_name": "p"})
    assert "/v3" in str(info.value) and SECRET not in str(info.value)


def test_auth_key_hashes_the_password(mod):
    base = {"auth_url": "http://h:5000/v3", "username": "admin", "password": SECRET, "project_name": "admin",
            "user_domain_name": "Default", "project_domain_name": "Default", "verify": True}
    key = mod._auth_key(base)
    assert SECRET not in key and key.startswith(mod.CONTEXT_PREFIX)
    assert key == mod._auth_key(dict(base))
    assert key != mod._auth_key(dict(base, password=SECRET + "x"))
    assert key != mod._auth_key(dict(base, username="other"))
    assert key == mod._auth_key(dict(base, region="RegionTwo"))      # the region is not a credential


def test_never_sent_distinguishes_refused_from_read_timeout(mod):
    refused = requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(
        None, "/v3", urllib3.exceptions.NewConnectionError(None, "Connection refused")))
    wrapped = RuntimeError("ksa ConnectFailure")
    wrapped.__context__ = refused
    assert mod._never_sent(wrapped)
    assert mod._never_sent(requests.exceptions.ConnectTimeout("connect timed out"))
    read = RuntimeError("ksa ConnectTimeout")
    read.__context__ = requests.exceptions.ReadTimeout("read timed out")
    assert not mod._never_sent(read)
    assert not mod._never_sent(requests.exceptions.ConnectionError("Connection aborted"))


def test_stated_bound_fits_20_seconds(mod):
    worst_connect = mod.ATTEMPTS * mod.CONNECT_TIMEOUT + sum(mod.PAUSES[: mod.ATTEMPTS - 1])
    assert worst_connect <= mod.DEADLINE <= 20
    for fun in ("token_check", "service_list", "service_get", "service_create", "service_update",
                "endpoint_list", "endpoint_create", "endpoint_update", "endpoint_delete"):
        doc = getattr(mod, fun).__doc__
        assert "CLI Example:" in doc and "3 attempts" in doc and "20 s" in doc, fun


# --------------------------------------------------------------------------- the endpoint plan
SVC, OTHER = "svc-image", "svc-compute"
DESIRED = {"public": "http://203.0.113.11:9292", "internal": "http://10.0.0.11:9292",
           "admin": "http://10.0.0.11:9292"}


def ep(id_, iface, url, region="RegionOne", service=SVC, enabled=True):
    return {"id": id_, "interface": iface, "url": url, "region_id": region, "service_id": service,
            "enabled": enabled}


def test_plan_empty_catalog_creates_all(st):
    plan = st.plan_endpoints([], DESIRED, SVC, "RegionOne")
    assert plan["create"] == {i: {"url": u, "enabled": True} for i, u in DESIRED.items()}
    assert not plan["update"] and not plan["duplicates"]
    assert st.plan_changes(plan) == {i: {"old": None, "new": {"url": u, "enabled": True}}
                                     for i, u in DESIRED.items()}


def test_plan_noop(st):
    current = [ep("a", "public", DESIRED["public"]), ep("b", "internal", DESIRED["internal"]),
               ep("c", "admin", DESIRED["admin"])]
    plan = st.plan_endpoints(current, DESIRED, SVC, "RegionOne")
    assert plan["unchanged"] == {"public": "a", "internal": "b", "admin": "c"}
    assert st.plan_changes(plan) == {}


def test_plan_updates_in_place_with_exact_diff(st):
    current = [ep("a", "public", "http://old:9292"), ep("b", "internal", DESIRED["internal"], enabled=False),
               ep("c", "admin", DESIRED["admin"])]
    plan = st.plan_endpoints(current, DESIRED, SVC, "RegionOne")
    assert st.plan_changes(plan) == {
        "public": {"old": {"url": "http://old:9292", "id": "a"}, "new": {"url": DESIRED["public"], "id": "a"}},
        "internal": {"old": {"enabled": False, "id": "b"}, "new": {"enabled": True, "id": "b"}},
    }
    assert not plan["create"]
    # enabled=None leaves the flag alone
    assert "internal" not in st.plan_endpoints(current, DESIRED, SVC, "RegionOne", enabled=None)["update"]
    # enabled=False disables all three, creating nothing
    off = st.plan_endpoints(current, DESIRED, SVC, "RegionOne", enabled=False)
    assert set(off["update"]) == {"public", "admin"} and off["update"]["admin"]["new"] == {"enabled": False}


def test_plan_ignores_other_services_regions_and_unmanaged_interfaces(st):
    current = [ep("x1", "public", "http://x", region="RegionTwo"), ep("x2", "public", "http://x", service=OTHER),
               ep("x3", "internal", "http://x", region="RegionTwo"), ep("x4", "internal", "http://x", service=OTHER),
               ep("b", "internal", "http://keep-me:9292")]
    plan = st.plan_endpoints(current, {"public": DESIRED["public"], "internal": None, "admin": None},
                             SVC, "RegionOne")
    assert plan["create"] == {"public": {"url": DESIRED["public"], "enabled": True}}
    assert not plan["update"] and not plan["duplicates"] and not plan["unchanged"]


def test_plan_duplicates_named_and_message(st):
    current = [ep("z2", "public", DESIRED["public"]), ep("z1", "public", "http://other"),
               ep("b", "internal", "http://old"), ep("c", "admin", DESIRED["admin"]),
               ep("c2", "admin", DESIRED["admin"])]
    plan = st.plan_endpoints(current, DESIRED, SVC, "RegionOne")
    assert plan["duplicates"] == {"public": ["z1", "z2"], "admin": ["c", "c2"]}
    msg = st.duplicates_message(plan["duplicates"], "glance", "RegionOne")
    for id_ in ("z1", "z2", "c", "c2"):
        assert id_ in msg
    assert "openstack endpoint delete z2 c2" in msg and "Nothing was changed" in msg


def test_plan_absent(st):
    current = [ep("a", "public", "u"), ep("a2", "public", "u"), ep("b", "internal", "u"),
               ep("x", "public", "u", region="RegionTwo"), ep("y", "admin", "u", service=OTHER)]
    assert st.plan_absent(current, SVC, "RegionOne", ["public", "internal", "admin"]) == {
        "public": ["a", "a2"], "internal": ["b"]}
    assert st.plan_absent(current, SVC, "RegionOne", ["admin"]) == {}


# --------------------------------------------------------------------------- the writer rule
def _writer_env(st, monkeypatch, is_writer=None, binaries=(), minion="ctl1"):
    # The crm module and Pacemaker binaries are facts of the host; stubbing __salt__ is the only way to
    # exercise every branch of the decision on one machine.
    salt = {"cmd.has_exec": lambda b: b in binaries}
    if is_writer is not None:
        salt["crm.is_writer"] = is_writer
    monkeypatch.setattr(st, "__salt__", salt, raising=False)
    monkeypatch.setattr(st, "__opts__", {"id": minion, "test": False}, raising=False)


def test_writer_none_always_writes(st, monkeypatch):
    _writer_env(st, monkeypatch, is_writer=lambda w: False)
    assert st._writer(None) == (True, "")


def test_writer_asks_crm(st, monkeypatch):
    asked = []
    _writer_env(st, monkeypatch, is_writer=lambda w: asked.append(w) or w == "ctl2")
    assert st._writer("ctl2")[0] is True
    write, why = st._writer("")
    assert write is False and "Pacemaker DC" in why
    assert asked == ["ctl2", ""]
    ret = {"name": "glance", "result": None, "changes": {}, "comment": ""}
    assert st._not_writer(ret, "ctl3") and ret["result"] is True and "Not the writer" in ret["comment"]


def test_writer_without_crm(st, monkeypatch):
    _writer_env(st, monkeypatch, minion="ctl1")
    assert st._writer("ctl1")[0] is True
    assert st._writer("ctl2")[0] is False
    write, why = st._writer("")
    assert write is True and "No Pacemaker" in why
    _writer_env(st, monkeypatch, binaries=("crmadmin",))
    write, why = st._writer("")
    assert write is None and "crmadmin" in why
    ret = {"name": "glance", "result": None, "changes": {}, "comment": ""}
    assert st._not_writer(ret, "") and ret["result"] is False


def test_writer_uses_crm_writer_status_reason(st, monkeypatch):
    _writer_env(st, monkeypatch, is_writer=lambda w: False)
    st.__salt__["crm.writer_status"] = lambda w: {"writer": False, "reason": "the cluster has no DC now"}
    write, why = st._writer("")
    assert write is False and "no DC" in why
    st.__salt__["crm.writer_status"] = lambda w: {"writer": True, "reason": "ctl1 is the DC"}
    assert st._writer("")[0] is True
