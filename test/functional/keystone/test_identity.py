"""glance_ha.identity (keystone_catalog.user_present over the keystone_identity module) and which image
service is the formula's (glance_ha:endpoints:service_name), against the session's real Keystone behind
the counting proxy (lab/httpcount.py): the write counts are what Keystone received."""

import json
import os
import subprocess
import uuid

import pytest
import yaml

from test.conftest import deep_merge
from test.functional.keystone.conftest import ADMIN, INTERNAL, PUBLIC

IDENTITY = "glance_ha.identity"
USER_ID = "glance_ha-keystone-service-user"
SERVICE_ID = "glance_ha-keystone-service"
ENDPOINTS_ID = "glance_ha-keystone-endpoints"
KEY = "glance_ha:endpoints:service_name"


def run(kc_modules, sls, pillar=None, test=False):
    return {r.id: r for r in kc_modules.state.sls(sls, pillar=pillar or {}, test=test)}


def service_user(username, password, project="service", roles=None):
    user = {"username": username, "password": password, "project_name": project}
    if roles is not None:
        user["roles"] = roles
    return {"glance_ha": {"keystone": {"service_user": user}}}


class Identity:
    """Reads of Keystone's identity objects through lab.services' own client (not the module under test)."""

    def __init__(self, keystone):
        self.ks = keystone

    def get(self, path):
        status, _headers, payload = self.ks.request("GET", path)
        assert status == 200, f"keystone: GET {path}: HTTP {status}"
        return payload

    def user(self, name):
        return self.get(f"/v3/users?name={name}&domain_id=default")["users"]

    def project(self, name):
        return self.get(f"/v3/projects?name={name}&domain_id=default")["projects"]

    def roles_of(self, user_id, project_id):
        found = self.get(f"/v3/role_assignments?user.id={user_id}&scope.project.id={project_id}&include_names")
        return sorted(a["role"]["name"] for a in found["role_assignments"])

    def delete_user(self, name):
        for user in self.user(name):
            self.ks.request("DELETE", f"/v3/users/{user['id']}")


@pytest.fixture
def identity(keystone, kc_proxy):
    ident = Identity(keystone)
    made = []
    kc_proxy.reset()
    yield ident, made
    for name in made:
        ident.delete_user(name)


def test_service_user_created_with_roles_then_noop_no_writes(kc_modules, identity, keystone, kc_proxy):
    ident, made = identity
    name, project, password = f"glance-{uuid.uuid4().hex[:8]}", f"service-{uuid.uuid4().hex[:6]}", "S3rv1ce-pw-1"
    made.append(name)
    pillar = service_user(name, password, project=project)
    assert ident.project(project) == []

    ret = run(kc_modules, IDENTITY, pillar)[USER_ID]
    assert ret.result is True, ret.comment
    assert set(ret.changes) >= {"project", "user", "roles"}
    assert ret.changes["roles"]["new"] == {"project": project, "granted": ["admin", "service"]}
    [user] = ident.user(name)
    [proj] = ident.project(project)
    assert user["enabled"] and user["default_project_id"] == proj["id"]
    assert ident.roles_of(user["id"], proj["id"]) == ["admin", "service"]
    assert keystone.token(name, password, project)                    # [keystone_authtoken] can log in
    writes = [(m, p.split("?")[0]) for m, p, _s in kc_proxy.requests if m not in ("GET", "HEAD")
              and not p.startswith("/v3/auth/tokens")]
    created_roles = [("POST", "/v3/roles")] * len(ret.changes.get("roles_created", []))
    granted = [a["role"]["id"] for a in ident.get(f"/v3/role_assignments?user.id={user['id']}")["role_assignments"]]
    assert sorted(writes) == sorted([("POST", "/v3/projects"), ("POST", "/v3/users")] + created_roles + [
        ("PUT", f"/v3/projects/{proj['id']}/users/{user['id']}/roles/{rid}") for rid in granted])

    kc_proxy.reset()
    ret = run(kc_modules, IDENTITY, pillar)[USER_ID]
    assert ret.result is True and ret.changes == {} and "desired state" in ret.comment, ret.comment
    counts = kc_proxy.counts()
    assert counts["write"] == 0, kc_proxy.requests
    # the admin's token and the one password check (an unscoped token of the user)
    assert counts["token"] == 2
    assert [u["id"] for u in ident.user(name)] == [user["id"]]

    kc_proxy.reset()
    ret = run(kc_modules, IDENTITY, pillar, test=True)[USER_ID]
    assert ret.result is True and ret.changes == {} and kc_proxy.counts()["write"] == 0


def test_password_rotation_updates_the_user_in_place(kc_modules, identity, keystone, kc_proxy):
    ident, made = identity
    name = f"glance-{uuid.uuid4().hex[:8]}"
    made.append(name)
    old, new = "Old-pw-" + uuid.uuid4().hex[:8], "New-pw-" + uuid.uuid4().hex[:8]
    assert run(kc_modules, IDENTITY, service_user(name, old))[USER_ID].result is True
    [before] = ident.user(name)

    kc_proxy.reset()
    ret = run(kc_modules, IDENTITY, service_user(name, new), test=True)[USER_ID]
    assert ret.result is None and ret.changes == {"password": {"old": "********", "new": "********"}}
    assert kc_proxy.counts()["write"] == 0

    kc_proxy.reset()
    ret = run(kc_modules, IDENTITY, service_user(name, new))[USER_ID]
    assert ret.result is True and "password updated" in ret.comment, ret.comment
    # the admin's token, one refused check of the user's password, one write (PATCH the user)
    assert kc_proxy.counts()["token"] == 2
    assert [(m, p) for m, p, _s in kc_proxy.requests if m not in ("GET", "POST")] == [
        ("PATCH", f"/v3/users/{before['id']}")]
    assert ret.changes == {"password": {"old": "********", "new": "********"}}
    text = json.dumps(ret.raw, default=str)
    assert old not in text and new not in text
    assert [u["id"] for u in ident.user(name)] == [before["id"]]
    assert keystone.token(name, new, "service")

    kc_proxy.reset()
    ret = run(kc_modules, IDENTITY, service_user(name, new))[USER_ID]
    assert ret.changes == {} and kc_proxy.counts()["write"] == 0


def test_sls_renders_no_password_and_follows_the_switches(kc_modules, kc_pillar):
    shown = kc_modules.state.show_sls(IDENTITY)
    args = {k: v for d in shown[USER_ID]["keystone_catalog"] if isinstance(d, dict) for k, v in d.items()}
    assert args["password_key"] == "glance_ha:keystone:service_user:password" and "password" not in args
    assert args["roles"] == ["admin", "service"] and args["project"] == "service"
    assert kc_pillar["glance_ha"]["keystone"]["service_user"]["password"] not in json.dumps(shown)
    for off in ({"endpoints": {"manage": False}}, {"keystone": {"service_user": {"manage": False}}}):
        assert kc_modules.state.show_sls(IDENTITY, pillar={"glance_ha": off}) == {}
    low = kc_modules.state.show_low_sls("glance_ha")           # in execution order
    assert [c["__sls__"] for c in low if c["__id__"] in (USER_ID, SERVICE_ID)] == [IDENTITY, "glance_ha.endpoints"]


def test_other_image_service_refused_then_adopted_in_place(kc_modules, clean_image, catalog, kc_proxy):
    other = catalog.create_service("Image Service", "image")
    old = {i: catalog.create_endpoint(other["id"], i, f"http://old-{i}:9292") for i in ("public", "internal", "admin")}
    before = catalog.snapshot()
    kc_proxy.reset()

    ret = run(kc_modules, "glance_ha.endpoints")
    for state_id in (SERVICE_ID, ENDPOINTS_ID):
        assert ret[state_id].result is False and ret[state_id].changes == {}
    comment = ret[SERVICE_ID].comment
    assert other["id"] in comment and "'Image Service'" in comment and f"{KEY}: 'Image Service'" in comment
    assert "Nothing was changed" in comment
    assert kc_proxy.counts()["write"] == 0, kc_proxy.requests
    assert catalog.snapshot() == before

    kc_proxy.reset()
    adopt = {"glance_ha": {"endpoints": {"service_name": "Image Service"}}}
    ret = run(kc_modules, "glance_ha.endpoints", adopt)
    assert ret[SERVICE_ID].result is True and ret[ENDPOINTS_ID].result is True, ret
    assert ret[SERVICE_ID].changes == {"description": {"old": None, "new": "OpenStack Image"}}
    [svc] = catalog.services("image")
    assert svc["id"] == other["id"] and svc["name"] == "Image Service"
    now = {e["interface"]: e for e in catalog.endpoints(svc["id"])}
    assert {i: e["id"] for i, e in now.items()} == {i: e["id"] for i, e in old.items()}
    assert {i: e["url"] for i, e in now.items()} == {"public": PUBLIC, "internal": INTERNAL, "admin": ADMIN}
    assert [m for m, _p, _s in kc_proxy.requests if m not in ("GET", "POST")] == ["PATCH"] * 4

    kc_proxy.reset()
    ret = run(kc_modules, "glance_ha.endpoints", adopt)
    assert all(r.result is True and r.changes == {} for r in ret.values())
    assert kc_proxy.counts() == {"token": 1, "read": 2, "write": 0}


@pytest.fixture
def bad_admin_root(tmp_path, kc_pillar, formula_root, state_tree):
    """A masterless minion whose pillar has a wrong Keystone admin password (and its own debug log)."""
    from test.functional.conftest import minion_config

    os.chmod(tmp_path, 0o700)
    wrong = "Wr0ng-admin-" + uuid.uuid4().hex[:10]
    user = f"glance-{uuid.uuid4().hex[:8]}"
    pillar = deep_merge(kc_pillar, {"glance_ha": {"keystone": {
        "admin": {"password": wrong}, "service_user": {"username": user}}}})
    (tmp_path / "pillar").mkdir()
    (tmp_path / "pillar/top.sls").write_text("base:\n  '*':\n    - glance_ha\n")
    (tmp_path / "pillar/glance_ha.sls").write_text(yaml.safe_dump(pillar))
    minion_config(tmp_path, "kc-bad-admin", state_tree, formula_root)
    return tmp_path, wrong, user, pillar["glance_ha"]["keystone"]["service_user"]["password"]


def test_keystone_refusing_the_admin_clear_error_nothing_written_no_secret(
        bad_admin_root, clean_image, catalog, keystone, kc_proxy, formula_root):
    root, wrong, user, service_password = bad_admin_root
    ident = Identity(keystone)
    log_file = root / "salt-call-debug.log"
    cmd = [str(formula_root / ".venv/bin/salt-call"), "--config-dir", str(root), "--local",
           "--log-file", str(log_file), "--log-file-level", "debug", "-l", "debug", "--out=json",
           "--retcode-passthrough", "state.sls", "glance_ha.identity,glance_ha.endpoints"]
    before = catalog.snapshot()
    kc_proxy.reset()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=300,
                         env=dict(os.environ, PYTHONWARNINGS="ignore::DeprecationWarning"))
    assert out.returncode != 0
    ret = json.loads(out.stdout)["local"]
    states = {v["__id__"]: v for v in ret.values()}
    assert states[USER_ID]["result"] is False and states[USER_ID]["changes"] == {}
    comment = states[USER_ID]["comment"]
    assert "rejected the credentials of user 'admin'" in comment and "HTTP 401" in comment, comment
    assert "Nothing was changed" in comment
    assert states[SERVICE_ID]["result"] is False and "rejected the credentials" in states[SERVICE_ID]["comment"]
    assert kc_proxy.counts()["write"] == 0, kc_proxy.requests
    assert catalog.snapshot() == before and ident.user(user) == []

    debug_log = log_file.read_text()
    # the log holds this run's debug output (the states ran and logged), before looking for secrets in it
    assert "[DEBUG   ]" in debug_log and "keystone_catalog.user_present" in debug_log
    assert "rejected the credentials" in debug_log
    for text in (out.stdout, out.stderr, debug_log):
        for secret in (wrong, keystone.admin_password, service_password):
            assert secret not in text


def test_missing_domain_refused_nothing_written(kc_modules, identity, kc_proxy):
    ident, _made = identity
    name = f"glance-{uuid.uuid4().hex[:8]}"
    pillar = deep_merge(service_user(name, "pw-" + uuid.uuid4().hex[:8]),
                        {"glance_ha": {"keystone": {"service_user": {"user_domain_name": "NoSuchDomain"}}}})
    ret = run(kc_modules, IDENTITY, pillar)[USER_ID]
    assert ret.result is False and ret.changes == {}
    assert "no domain 'NoSuchDomain'" in ret.comment and "Nothing was changed" in ret.comment
    assert kc_proxy.counts()["write"] == 0 and ident.user(name) == []


def test_clean_keeps_the_user_and_says_so(kc_modules, identity, kc_proxy):
    ident, made = identity
    name = f"glance-{uuid.uuid4().hex[:8]}"
    made.append(name)
    pillar = service_user(name, "pw-" + uuid.uuid4().hex[:8])
    assert run(kc_modules, IDENTITY, pillar)[USER_ID].result is True
    kc_proxy.reset()
    [ret] = run(kc_modules, "glance_ha.identity.clean", pillar).values()
    assert ret.result is True and ret.changes == {}
    assert f"openstack user delete --domain Default {name}" in ret.comment and "kept" in ret.comment
    assert kc_proxy.requests == [] and len(ident.user(name)) == 1
