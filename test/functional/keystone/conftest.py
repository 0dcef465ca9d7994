"""Fixtures of the keystone_catalog functional tests: the session's real Keystone (test.plugins.services)
behind a counting proxy, and a Salt loader whose pillar points glance_ha at that Keystone."""

import copy
import os

import pytest
import yaml
from saltfactories.utils.functional import Loaders

from lab.httpcount import CountingProxy
from test.conftest import deep_merge
from test.functional.conftest import debug_log, minion_config

PUBLIC = "http://203.0.113.11:9292"
INTERNAL = "http://10.0.0.11:9292"
ADMIN = "http://10.0.0.11:9292"


@pytest.fixture(scope="session")
def kc_proxy(keystone):
    with CountingProxy(keystone.url) as proxy:
        yield proxy


@pytest.fixture(scope="session")
def kc_auth(keystone, kc_proxy):
    """Explicit auth arguments of the states/functions: Keystone through the counting proxy."""
    return {"auth_url": kc_proxy.url + "/v3", "username": keystone.admin_user,
            "password": keystone.admin_password, "project_name": keystone.admin_project,
            "user_domain_name": keystone.domain, "project_domain_name": keystone.domain}


@pytest.fixture(scope="session")
def kc_pillar(example_pillar, keystone, kc_proxy):
    """pillar.example with Keystone, region and endpoint URLs of this session; no managed cluster, so the
    writer is named: this minion (Pacemaker may be installed on this host, not running)."""
    return deep_merge(copy.deepcopy(example_pillar), {"glance_ha": {
        "keystone": {"auth_url": kc_proxy.url + "/v3", "region": keystone.region,
                     "admin": {"username": keystone.admin_user, "password": keystone.admin_password,
                               "project_name": keystone.admin_project}},
        "cluster": {"manage": False, "writer": "kc-minion"},
        "endpoints": {"manage": True, "public": PUBLIC, "internal": INTERNAL, "admin": ADMIN},
    }})


@pytest.fixture(scope="session")
def kc_minion_root(tmp_path_factory, kc_pillar):
    root = tmp_path_factory.mktemp("kc-minion")
    os.chmod(root, 0o700)                    # the pillar holds the Keystone admin password
    (root / "pillar").mkdir()
    (root / "pillar/top.sls").write_text("base:\n  '*':\n    - glance_ha\n")
    (root / "pillar/glance_ha.sls").write_text(yaml.safe_dump(kc_pillar))
    return root


@pytest.fixture(scope="session")
def kc_loaders(kc_minion_root, formula_root, state_tree):
    return Loaders(minion_config(kc_minion_root, "kc-minion", state_tree, formula_root))


@pytest.fixture(autouse=True)
def reset_loaders_state(kc_loaders):
    """Replaces test/functional/conftest.py's fixture of the same name for this directory."""
    try:
        yield
    finally:
        kc_loaders.reset_state()


@pytest.fixture
def kc_modules(kc_loaders):
    return kc_loaders.modules


@pytest.fixture
def kc_states(kc_loaders):
    return kc_loaders.states


class Catalog:
    """Direct access to the Keystone catalog (lab.services' own HTTP client, not the module under test)."""

    def __init__(self, keystone):
        self.ks = keystone

    def _ok(self, result, ok=(200, 201, 204)):
        status, _headers, payload = result
        assert status in ok, f"keystone: HTTP {status}: {(payload or {}).get('error', {}).get('message')}"
        return payload

    def services(self, service_type=None):
        path = "/v3/services" + (f"?type={service_type}" if service_type else "")
        return self._ok(self.ks.request("GET", path))["services"]

    def endpoints(self, service_id=None):
        path = "/v3/endpoints" + (f"?service_id={service_id}" if service_id else "")
        return sorted(self._ok(self.ks.request("GET", path))["endpoints"], key=lambda e: e["id"])

    def snapshot(self):
        def strip(ref):
            return {k: v for k, v in ref.items() if k != "links"}
        return ([strip(s) for s in sorted(self.services(), key=lambda s: s["id"])],
                [strip(e) for e in self.endpoints()])

    def ensure_region(self, region):
        status, _headers, _payload = self.ks.request("GET", f"/v3/regions/{region}")
        if status == 404:
            self._ok(self.ks.request("POST", "/v3/regions", {"region": {"id": region}}))

    def create_service(self, name, service_type):
        body = {"service": {"name": name, "type": service_type, "enabled": True}}
        return self._ok(self.ks.request("POST", "/v3/services", body))["service"]

    def create_endpoint(self, service_id, interface, url, region="RegionOne"):
        self.ensure_region(region)
        body = {"endpoint": {"service_id": service_id, "interface": interface, "url": url,
                             "region_id": region, "enabled": True}}
        return self._ok(self.ks.request("POST", "/v3/endpoints", body))["endpoint"]

    def delete_service_type(self, service_type):
        """Remove every service of this type and its endpoints (a clean slate for a test)."""
        for svc in self.services(service_type):
            for ep in self.endpoints(svc["id"]):
                self._ok(self.ks.request("DELETE", f"/v3/endpoints/{ep['id']}"))
            self._ok(self.ks.request("DELETE", f"/v3/services/{svc['id']}"))


@pytest.fixture(scope="session")
def catalog(keystone):
    return Catalog(keystone)


@pytest.fixture
def clean_image(catalog, kc_proxy):
    """No `image` service (nor its endpoints) before the test; the proxy's counters at zero."""
    catalog.delete_service_type("image")
    kc_proxy.reset()
    yield catalog
    catalog.delete_service_type("image")


@pytest.fixture
def kc_minion_log(kc_minion_root):
    """kc-minion's log file (root/minion.log) at DEBUG for this test: a DebugLog."""
    with debug_log(kc_minion_root / "minion.log") as log:
        yield log
