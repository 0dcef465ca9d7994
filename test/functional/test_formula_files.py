"""glance_ha.config / glance_ha.nova and their clean mirrors through the real Salt loader: show_sls,
test=True diffs, a real apply (inside the sandbox), a second apply with zero changes, bad pillar refused,
secrets masked (in output, logs, what the execution module returns, and on disk at every moment)."""

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from test.conftest import deep_merge, wipe

CONF = "/etc/glance/glance-api.conf"
NOVA = "/etc/nova/nova.conf"
SECRETS = ("glance-db-secret", "rabbit-secret", "keystone-admin-secret", "glance-keystone-secret",
           "p@ss:w$rd/with%chars", "p%40ss%3Aw%24rd%2Fwith%25chars")
NOVA_TEXT = "[DEFAULT]\n# operator's comment\nmy_ip = 10.0.0.31\n\n[glance]\nnum_retries = 3\n"


def files_only(pillar):
    """The pillar with the cluster, Keystone and database parts switched off (they have their own tests)."""
    return deep_merge(pillar, {"glance_ha": {"cluster": {"manage": False}, "endpoints": {"manage": False},
                                             "database": {"sync": False}}})


def results(ret):
    assert not ret.failed, ret
    return {r.id if hasattr(r, "id") else r.name: r for r in ret}


def snapshot(*paths):
    return {p: (Path(p).read_bytes(), os.stat(p).st_mtime_ns) if os.path.exists(p) else None for p in paths}


@pytest.fixture(params=["example", "site"])
def pillar(request, example_pillar, site_pillar):
    return files_only(example_pillar if request.param == "example" else site_pillar)


@pytest.mark.parametrize("sls", ["glance_ha.config", "glance_ha.nova", "glance_ha.agent", "glance_ha",
                                 "glance_ha.package", "glance_ha.clean", "glance_ha.config.clean",
                                 "glance_ha.agent.clean", "glance_ha.service.clean", "glance_ha.nova.clean"])
def test_show_sls_renders(modules, pillar, sls):
    ret = modules.state.show_sls(sls, pillar=pillar)
    assert isinstance(ret, dict), ret
    assert ret, f"{sls} rendered no states"


def test_config_test_apply_rerun(modules, pillar):
    wipe(CONF, "/var/lib/glance/images/staging")
    before = snapshot(CONF)
    ret = modules.state.sls("glance_ha.config", pillar=pillar, test=True)
    by_id = {r.id: r for r in ret}
    conf = by_id["glance_ha-config-file"]
    assert conf.result is None
    diff = conf.changes["diff"]
    want = pillar["glance_ha"]
    assert "+worker_self_reference_url = http://" in diff
    assert "+password = ********\n" in diff
    assert snapshot(CONF) == before, "test=True wrote the file"
    assert not os.path.exists("/var/lib/glance/images/staging"), "test=True created a directory"

    ret = modules.state.sls("glance_ha.config", pillar=pillar)
    failed = [r for r in ret if r.result is False]
    assert not failed, failed
    applied = {r.id: r for r in ret}["glance_ha-config-file"]
    assert applied.changes["diff"] == diff, "test=True did not predict the exact change"
    st = os.stat(CONF)
    assert (st.st_mode & 0o777, st.st_uid) == (0o640, 0)
    text = Path(CONF).read_text()
    assert "[keystone_authtoken]" in text and f'password = "{want["keystone"]["service_user"]["password"]}"' in text
    assert os.path.isdir("/var/lib/glance/images/staging")

    again = modules.state.sls("glance_ha.config", pillar=pillar)
    changed = {r.id: r.changes for r in again if r.changes}
    assert changed == {}
    assert all(r.result is True for r in again)
    again_test = modules.state.sls("glance_ha.config", pillar=pillar, test=True)
    assert all(r.result is True and not r.changes for r in again_test)


def test_drift_is_reported_and_corrected(modules, pillar):
    modules.state.sls("glance_ha.config", pillar=pillar)
    with open(CONF, "a") as handle:
        handle.write("debug = true\n")
    os.chmod(CONF, 0o644)
    ret = {r.id: r for r in modules.state.sls("glance_ha.config", pillar=pillar)}
    conf = ret["glance_ha-config-file"]
    assert "-debug = true" in conf.changes["diff"]
    assert conf.changes["mode"] == {"old": "0644", "new": "0640"}
    assert os.stat(CONF).st_mode & 0o777 == 0o640
    assert "debug = true" not in Path(CONF).read_text()


def test_nova_sets_only_api_servers(modules, pillar):
    os.makedirs("/etc/nova", exist_ok=True)
    with open(NOVA, "w") as handle:
        handle.write(NOVA_TEXT)
    internal = pillar["glance_ha"]["endpoints"]["internal"]
    ret = {r.id: r for r in modules.state.sls("glance_ha.nova", pillar=pillar, test=True)}
    assert ret["glance_ha-nova-api-servers"].result is None
    assert Path(NOVA).read_text() == NOVA_TEXT
    modules.state.sls("glance_ha.nova", pillar=pillar)
    assert Path(NOVA).read_text() == NOVA_TEXT + f"api_servers = {internal}\n"
    again = modules.state.sls("glance_ha.nova", pillar=pillar)
    assert [r.changes for r in again] == [{}]


def test_nova_without_nova_conf_fails_clearly(modules, example_pillar):
    pillar = deep_merge(example_pillar, {"glance_ha": {"nova": {"config": "/etc/nova-missing/nova.conf"}}})
    ret = list(modules.state.sls("glance_ha.nova", pillar=pillar))
    assert ret[0].result is False
    assert "/etc/nova-missing/nova.conf does not exist" in ret[0].comment
    assert not os.path.exists("/etc/nova-missing")


@pytest.mark.parametrize("override, key", [
    ({"vip": {"internal": "10.0.0.300"}}, "glance_ha:vip:internal"),
    ({"vipp": {}}, "glance_ha:vipp"),
    ({"database": {"password": ""}}, "glance_ha:database:password"),
    ({"keystone": {"auth_url": "http://10.0.0.11:5000/v2.0"}}, "glance_ha:keystone:auth_url"),
    ({"cluster": {"monitor": {"interval": "often"}}}, "glance_ha:cluster:monitor:interval"),
    ({"config": {"DEFAULT": {"debug\n": True}}}, "glance_ha:config:DEFAULT"),
    ({"lookup": {"agent_params": {"sever": "uwsgi"}}}, "glance_ha:lookup:agent_params:sever"),
    ({"api": {"port": 443}}, "glance_ha:api:port"),
    ({"endpoints": {"public": "https://images.example.org"}}, "glance_ha:endpoints:public"),
    ({"vip": {"public": "2001:db8::11"}}, "glance_ha:vip:cidr_netmask"),
    ({"store": {"backend": "rbd"}}, "glance_ha:store:rbd:user"),
])
def test_bad_pillar_changes_nothing(modules, example_pillar, override, key):
    good = files_only(example_pillar)
    modules.state.sls("glance_ha.config", pillar=good)
    watched = (CONF, "/var/lib/glance/images")
    before = snapshot(CONF)
    wipe("/var/lib/glance/images/tasks")
    ret = modules.state.sls("glance_ha", pillar=deep_merge(good, {"glance_ha": override}))
    assert ret.failed
    errors = "\n".join(ret.errors if hasattr(ret, "errors") else [str(ret)])
    assert key in errors
    for secret in SECRETS:
        assert secret not in errors
    assert snapshot(CONF) == before
    assert not os.path.exists("/var/lib/glance/images/tasks")
    assert os.path.isdir(watched[1])


def test_secrets_never_in_output_or_log(modules, site_pillar, minion_log):
    """The returns and the minion's DEBUG log of a test=True run, an apply and a drift repair hold no
    secret. Shown failing: a ``log.debug("writing %s: %s", path, text)`` added to _states/glance_ha.py's
    ``_write`` fails with ``assert 'glance-keystone-secret' not in '2026-... DEBUG ...'``."""
    pillar = files_only(site_pillar)
    wipe(CONF)
    outputs = [modules.state.sls("glance_ha.config", pillar=pillar, test=True),
               modules.state.sls("glance_ha.config", pillar=pillar)]
    with open(CONF, "a") as handle:
        handle.write("x = 1\n")
    outputs.append(modules.state.sls("glance_ha.config", pillar=pillar))
    dumped = json.dumps([[{"name": r.name, "comment": r.comment, "changes": r.changes} for r in out]
                         for out in outputs], default=str)
    assert "********" in dumped
    log = minion_log.text("salt://glance_ha/config/init.sls")   # DEBUG of the fileclient, this run
    for secret in SECRETS:
        assert secret not in dumped
        assert secret not in log


TRICKY = ' "q$w" #;%@:/\'é '


def test_tricky_passwords_survive_oslo_config(modules, example_pillar, formula_root):
    """oslo.config strips whitespace and a pair of quotes and expands $name: what glance reads back
    from the rendered file must be the pillar's password, byte for byte."""
    pillar = deep_merge(files_only(example_pillar), {"glance_ha": {
        "database": {"password": TRICKY}, "messaging": {"password": TRICKY},
        "keystone": {"service_user": {"password": TRICKY}}, "cluster": {"monitor_level": "api"}}})
    ret = modules.state.sls("glance_ha.config", pillar=pillar)
    assert not [r for r in ret if r.result is False]
    dumped = json.dumps([{"comment": r.comment, "changes": r.changes} for r in ret], default=str)
    assert "q$w" not in dumped and "%22q%24w" not in dumped
    probe = (
        "import sys, urllib.parse\n"
        "from oslo_config import cfg\n"
        "conf = cfg.ConfigOpts()\n"
        "conf.register_opt(cfg.StrOpt('connection'), group='database')\n"
        "conf.register_opt(cfg.StrOpt('password'), group='keystone_authtoken')\n"
        "conf.register_opt(cfg.StrOpt('transport_url'))\n"
        "conf(['--config-file', sys.argv[1]], project='probe')\n"
        "print(urllib.parse.unquote(urllib.parse.urlsplit(conf.database.connection).password))\n"
        "print(conf.keystone_authtoken.password)\n"
        "print(urllib.parse.unquote(urllib.parse.urlsplit(conf.transport_url).password))\n")
    out = subprocess.run([str(formula_root / ".venv-os/bin/python"), "-c", probe, CONF],
                         capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:3] == [TRICKY] * 3
    creds = Path("/etc/glance/ocf-credentials")
    assert os.stat(creds).st_mode & 0o777 == 0o600
    assert f'OS_PASSWORD="{TRICKY}"\n' in creds.read_text()


CREDS = "/etc/glance/ocf-credentials"
AGENT = "/usr/lib/ocf/resource.d/openstack/glance-api"


def test_clean_removes_what_the_formula_wrote(modules, pillar):
    """glance_ha.clean (cluster and Keystone off here: their clean SLS have their own tests) removes the
    agent, glance-api.conf and the credentials file, and keeps the image store."""
    pillar = deep_merge(pillar, {"glance_ha": {"cluster": {"monitor_level": "api"}, "lookup": {"pkgs": []}}})
    for sls in ("glance_ha.agent", "glance_ha.config"):
        assert not [r for r in modules.state.sls(sls, pillar=pillar) if r.result is False]
    store = pillar["glance_ha"]["store"]["path"]
    Path(store, "image-data").write_text("kept")
    made = (CONF, CREDS, AGENT)
    before = snapshot(*made)
    assert all(before.values())

    dry = {r.id: r for r in modules.state.sls("glance_ha.clean", pillar=pillar, test=True)}
    assert {k for k, r in dry.items() if r.result is None} == {
        "glance_ha-agent-clean", "glance_ha-config-file-clean", "glance_ha-ocf-credentials-clean"}
    assert snapshot(*made) == before, "test=True removed files"

    ret = {r.id: r for r in modules.state.sls("glance_ha.clean", pillar=pillar)}
    assert all(r.result is True for r in ret.values()), ret
    assert not any(os.path.exists(p) for p in made)
    assert Path(store, "image-data").read_text() == "kept"
    again = modules.state.sls("glance_ha.clean", pillar=pillar)
    assert [r.changes for r in again if r.changes] == []


def test_nova_clean_removes_only_api_servers(modules, pillar):
    os.makedirs("/etc/nova", exist_ok=True)
    Path(NOVA).write_text(NOVA_TEXT)
    modules.state.sls("glance_ha.nova", pillar=pillar)
    applied = Path(NOVA).read_text()
    assert applied != NOVA_TEXT
    dry = list(modules.state.sls("glance_ha.nova.clean", pillar=pillar, test=True))
    assert dry[0].result is None and "-api_servers = " in dry[0].changes["diff"]
    assert Path(NOVA).read_text() == applied
    modules.state.sls("glance_ha.nova.clean", pillar=pillar)
    assert Path(NOVA).read_text() == NOVA_TEXT
    assert [r.changes for r in modules.state.sls("glance_ha.nova.clean", pillar=pillar)] == [{}]


def test_symlinked_config_keeps_its_link(modules, example_pillar):
    pillar = files_only(example_pillar)
    target = "/etc/glance/site/glance-api.conf"
    wipe(CONF, "/etc/glance/site")
    os.makedirs("/etc/glance/site")
    Path(target).write_text("[DEFAULT]\n")
    os.symlink(target, CONF)
    try:
        ret = {r.id: r for r in modules.state.sls("glance_ha.config", pillar=pillar)}
        assert ret["glance_ha-config-file"].result is True
        assert os.path.islink(CONF) and os.readlink(CONF) == target
        assert "[keystone_authtoken]" in Path(target).read_text()
        assert os.stat(target).st_mode & 0o777 == 0o640
    finally:
        wipe(CONF, "/etc/glance/site")


def test_new_secrets_never_readable_by_others(modules, example_pillar, monkeypatch):
    """A config whose mode was widened by hand (0644) gets a rotated password: at no moment of the
    write does a file under /etc/glance holding the new password allow others to read it."""
    pillar = files_only(example_pillar)
    modules.state.sls("glance_ha.config", pillar=pillar)
    os.chmod(CONF, 0o644)
    rotated = deep_merge(pillar, {"glance_ha": {"database": {"password": "rotated-db-secret"}}})
    exposed = []

    def check(*_args):
        for entry in os.scandir("/etc/glance"):
            if (entry.is_file(follow_symlinks=False) and os.stat(entry.path).st_mode & 0o004
                    and "rotated-db-secret" in Path(entry.path).read_text()):
                exposed.append(entry.path)

    for name in ("rename", "replace", "chmod", "fchmod", "chown", "fchown"):
        real = getattr(os, name)

        def spy(*args, _real=real, **kwargs):
            check()
            out = _real(*args, **kwargs)
            check()
            return out
        monkeypatch.setattr(os, name, spy)
    monkeypatch.setattr(shutil, "move", lambda *a, _real=shutil.move, **k: (check(), _real(*a, **k), check())[1])
    ret = {r.id: r for r in modules.state.sls("glance_ha.config", pillar=rotated)}
    monkeypatch.undo()
    assert ret["glance_ha-config-file"].result is True
    assert "rotated-db-secret" in Path(CONF).read_text()
    assert os.stat(CONF).st_mode & 0o777 == 0o640
    assert exposed == []


def test_execution_module_returns_no_secret(modules, defaults, osfamilymap, site_pillar):
    """The operator-callable functions of the glance_ha execution module: settings returns a masked view,
    writer a decision, share_status a mount's state (no pillar data at all); running_config paths and
    sha256 digests, reload True (neither reads the pillar)."""
    public = sorted(name for name in modules if name.startswith("glance_ha."))
    assert public == ["glance_ha.reload", "glance_ha.running_config", "glance_ha.settings", "glance_ha.share_status",
                      "glance_ha.writer"]
    assert set(modules.glance_ha.writer("ctl9")) == {"write", "comment"}
    assert set(modules.glance_ha.share_status("/var/lib/glance/images")) == {
        "path", "mounted", "answered", "uid", "gid", "error"}
    # the site's vip:nic (ens3) is an interface of the site's controllers, not of this test minion
    site = dict(site_pillar["glance_ha"], vip=dict(site_pillar["glance_ha"]["vip"], nic=""))
    view = json.dumps(modules.glance_ha.settings(defaults, osfamilymap, pillar=site))
    assert "********" in view
    for secret in SECRETS:
        assert secret not in view


def test_share_not_mounted_or_foreign_is_refused_and_never_created_or_chowned(modules, example_pillar):
    """glance_ha.config on a node whose share is not mounted creates nothing on local disk; on a share that
    belongs to other ids it fails naming both and chowns nothing; on the glance-owned share (the sandbox's
    tmpfs) it creates staging and tasks."""
    glance = pwd.getpwnam("glance")
    base = tempfile.mkdtemp(prefix="share-", dir="/var/tmp")
    share = f"{base}/images"
    os.mkdir(share)
    pillar = deep_merge(files_only(example_pillar), {"glance_ha": {"store": {"path": share}}})
    try:
        ret = modules.state.sls("glance_ha.config", pillar=pillar)
        failed = {r.id: r.comment for r in ret if r.result is False}
        assert list(failed) == ["glance_ha-share"], failed
        assert f"{share} is not mounted" in failed["glance_ha-share"]
        assert os.listdir(share) == []
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=1m,uid={glance.pw_uid + 7},gid={glance.pw_gid + 7}",
                        "foreign", share], check=True)
        ret = modules.state.sls("glance_ha.config", pillar=pillar)
        comment = next(r.comment for r in ret if r.id == "glance_ha-share")
        assert f"uid:gid {glance.pw_uid + 7}:{glance.pw_gid + 7}" in comment
        assert f"glance:glance is {glance.pw_uid}:{glance.pw_gid}" in comment
        st = os.stat(share)
        assert (st.st_uid, st.st_gid) == (glance.pw_uid + 7, glance.pw_gid + 7)
        assert os.listdir(share) == []
        os.chown(share, glance.pw_uid, glance.pw_gid)   # the site fixes the ids once
        ret = modules.state.sls("glance_ha.config", pillar=pillar)
        assert not [r for r in ret if r.result is False]
        assert sorted(os.listdir(share)) == ["staging", "tasks"]
        assert os.stat(f"{share}/staging").st_uid == glance.pw_uid
    finally:
        subprocess.run(["umount", "-l", share], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
