"""_modules/keystone_catalog.py without Salt's loader and without Keystone: the CLI forms of the URL
rules, auth merging and the context key, masking of errors, the stated bound and __virtual__."""

import sys

import pytest
from salt.exceptions import SaltInvocationError

from test.modload import load

SECRET = "s3cr3t-Pa55word"


def _load(monkeypatch=None, block_ksa=False):
    if block_ksa:
        # keystoneauth1 is installed here; hiding it is the only way to see __virtual__ refuse.
        for mod in [m for m in sys.modules if m == "keystoneauth1" or m.startswith("keystoneauth1.")]:
            monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setitem(sys.modules, "keystoneauth1", None)
    return load("_modules/keystone_catalog.py", name=f"kc_module_{block_ksa}", __context__={})


@pytest.fixture(scope="module")
def mod():
    return _load()


# --------------------------------------------------------------------------- URL rules as CLI functions
def test_normalize_auth_url(mod):
    assert mod.normalize_auth_url("http://10.0.0.11:5000/") == "http://10.0.0.11:5000/v3"
    with pytest.raises(SaltInvocationError) as info:
        mod.normalize_auth_url("http://10.0.0.11:5000/v2.0")
    assert "not supported" in str(info.value) and "use the v3 URL http://10.0.0.11:5000/v3" in str(info.value)
    assert str(info.value).startswith("keystone_catalog: auth_url: ")
    for url in ("", None, "ftp://h/v3", "http://h:5000/v3?x=1"):
        with pytest.raises(SaltInvocationError):
            mod.normalize_auth_url(url)


def test_url_errors_never_show_a_password(mod):
    with pytest.raises(SaltInvocationError) as info:
        mod.normalize_auth_url(f"http://admin:{SECRET}@h:5000/v2.0")
    assert SECRET not in str(info.value) and "v2.0" in str(info.value) and "********" in str(info.value)
    assert SECRET not in mod.validate_endpoint_url(f"ftp://glance:{SECRET}@h:9292")


def test_validate_endpoint_url(mod):
    assert mod.validate_endpoint_url("http://10.0.0.11:9292") is None
    assert mod.validate_endpoint_url("http://h:0/").startswith("endpoint URL 'http://h:0/'")


# --------------------------------------------------------------------------- auth merging, the context key
def test_virtual_refuses_without_keystoneauth(monkeypatch):
    module = _load(monkeypatch, block_ksa=True)
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
    with pytest.raises(SaltInvocationError) as info:
        mod._resolve_auth(None, {"auth_url": f"http://h:5000/{SECRET}/v2.0", "username": "a",
                                 "password": SECRET, "project_name": "p"})
    assert SECRET not in str(info.value)


def test_auth_key_hashes_the_password(mod):
    base = {"auth_url": "http://h:5000/v3", "username": "admin", "password": SECRET, "project_name": "admin",
            "user_domain_name": "Default", "project_domain_name": "Default", "verify": True}
    key = mod._auth_key(base)
    assert SECRET not in key and key.startswith(mod.CONTEXT_PREFIX)
    assert key == mod._auth_key(dict(base))
    assert key != mod._auth_key(dict(base, password=SECRET + "x"))
    assert key != mod._auth_key(dict(base, username="other"))
    assert key == mod._auth_key(dict(base, region="RegionTwo"))      # the region is not a credential
    # keyed by a random secret of the run: the same credentials give another id in another run
    assert key != _load()._auth_key(dict(base))


def test_stated_bound_fits_20_seconds(mod):
    session = load("_utils/keystone_session.py")
    worst_connect = session.ATTEMPTS * session.CONNECT_TIMEOUT + sum(session.PAUSES[: session.ATTEMPTS - 1])
    assert worst_connect <= session.DEADLINE <= 20
    assert (session.ATTEMPTS, session.DEADLINE) == (3, 20.0)     # the figures the docstrings state
    for fun in ("token_check", "service_list", "service_get", "service_create", "service_update",
                "service_delete", "endpoint_list", "endpoint_create", "endpoint_update", "endpoint_delete"):
        doc = getattr(mod, fun).__doc__
        assert "CLI Example:" in doc and "3 attempts" in doc and "20 s" in doc, fun
