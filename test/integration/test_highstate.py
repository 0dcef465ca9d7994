"""Highstate through a real master and minion: for pillar.example and for a per-site override, show_sls,
test=True (exact diffs, nothing written), a real apply, then a second apply with zero changes."""

import difflib
import json
import os
import subprocess
from pathlib import Path

import pytest

from test.conftest import deep_merge, wipe
from test.modload import load
from test.sweep import ProcSampler, readable_by_others

CONF = "/etc/glance/glance-api.conf"
AGENT = "/usr/lib/ocf/resource.d/openstack/glance-api"
TOP = "base:\n  '*':\n    - glance_ha\n"


def files_only(pillar):
    """Cluster, Keystone and database parts off: they have their own tests."""
    return deep_merge(pillar, {"glance_ha": {"cluster": {"manage": False}, "endpoints": {"manage": False},
                                             "database": {"sync": False}}})


def state_results(ret):
    data = ret.data
    assert isinstance(data, dict), f"render errors: {data}"
    return {v["__id__"]: v for v in data.values()}


@pytest.fixture(scope="module")
def highstate_top(salt_master):
    with salt_master.state_tree.base.temp_file("top.sls", TOP):
        yield


def on_this_host(pillar, keystone, cib_file):
    """The pillar with its cluster on (the minion's CIB file: it is the writer) and its Keystone the
    session's real one on loopback (admin, region and auth URL), so the highstate runs the crm and
    Keystone states for real. The database schema stays off (glance_ha.db has its own tests), and
    IPaddr2 finds the VIP's interface by route (vip:nic empty)."""
    return deep_merge(pillar, {"glance_ha": {
        # vip:nic names an interface of the site's controllers, which this minion need not have
        "vip": {"nic": ""},
        "cluster": {"manage": True, "writer": ""}, "endpoints": {"manage": True},
        "database": {"sync": False},
        "keystone": {"auth_url": keystone.auth_url, "region": keystone.region,
                     "admin": {"username": keystone.admin_user, "password": keystone.admin_password,
                               "project_name": keystone.admin_project,
                               "user_domain_name": keystone.domain, "project_domain_name": keystone.domain}}}})


def expected_diff(text, secrets):
    """The unified diff (one line of context) of creating ``text``, each line masked by THE secrets
    rule: what test=True must show for glance-api.conf, byte for byte."""
    mask = load("_utils/glance_ha_secrets.py").mask
    lines = difflib.unified_diff([], text.splitlines(True), fromfile=CONF, tofile=CONF, n=1)
    return "".join(mask(line if line.endswith("\n") else line + "\n", secrets) for line in lines)


@pytest.mark.parametrize("which", ["example", "site"])
def test_highstate_cycle(salt_cli, salt_minion, set_pillar, highstate_top, example_pillar, site_pillar,
                         which, keystone, cib_file):
    """show_sls, test=True (the exact diff of glance-api.conf, nothing written), a real highstate
    (rc 0, every state True, the cluster objects in the CIB, the image service and its three
    endpoints in Keystone), a second highstate with zero changes; no pillar secret in the returns,
    the minion's DEBUG log, a command line sampled during the runs (shown in step: the run's
    crm_verify was among them), or any file under /etc, /var or the OCF dir that others may read.
    Shown failing: a ``log.debug("writing %s: %s", path, text)`` in _states/glance_ha.py's ``_write``
    fails with ``assert 'glance-db-secret' not in '[2026-11-30 ... DEBUG ...'`` (the minion log);
    /etc/glance at 0755 with the credentials file at 0644 fails with ``assert
    ['/etc/glance/ocf-credentials'] == []`` (the sweep)."""
    pillar = on_this_host(example_pillar if which == "example" else site_pillar, keystone, cib_file)
    set_pillar(pillar)
    wipe(CONF, AGENT)
    secrets = secrets_of(pillar)

    shown = salt_cli.run("state.show_sls", "glance_ha", minion_tgt=salt_minion.id)
    assert shown.returncode == 0, shown
    ids = set(shown.data)
    assert {"glance_ha-agent", "glance_ha-config-file"} <= ids

    with ProcSampler() as sampler:
        dry_ret = salt_cli.run("state.highstate", "test=True", minion_tgt=salt_minion.id)
        assert dry_ret.returncode == 0, dry_ret
        dry = state_results(dry_ret)
        assert not os.path.exists(CONF) and not os.path.exists(AGENT), "test=True wrote files"
        first = salt_cli.run("state.highstate", minion_tgt=salt_minion.id)
    assert first.returncode == 0, first
    assert any(c.startswith("/usr/sbin/crm_verify ") or " crm_verify " in f" {c}" for c in sampler.seen), \
        "the sampler never saw the run's crm_verify"
    results = state_results(first)
    assert all(r["result"] is True for r in results.values()), [r for r in results.values() if not r["result"]]
    assert dry["glance_ha-config-file"]["result"] is None
    assert dry["glance_ha-config-file"]["changes"]["diff"] == expected_diff(Path(CONF).read_text(), secrets)
    assert dry["glance_ha-agent"]["result"] is None
    assert results["glance_ha-config-file"]["changes"]
    assert os.stat(AGENT).st_mode & 0o7777 == 0o755
    assert os.stat(CONF).st_mode & 0o7777 == 0o640
    bind = Path(CONF).read_text()
    vip = pillar["glance_ha"]["vip"]["internal"].split("/")[0]
    port = pillar["glance_ha"].get("api", {}).get("port", 9292)
    internal = pillar["glance_ha"].get("endpoints", {}).get("internal") or f"http://{vip}:{port}"
    assert f"worker_self_reference_url = {internal}\n" in bind   # the internal endpoint, as pillared
    assert "bind_host" not in bind      # the agent gives it to the WSGI server
    cib = subprocess.run(["cibadmin", "--query"], env=dict(os.environ, CIB_file=str(cib_file)),
                         capture_output=True, text=True, check=True).stdout
    assert 'id="p_glance-api"' in cib and 'type="IPaddr2"' in cib
    token = keystone.token(keystone.admin_user, keystone.admin_password, keystone.admin_project)
    image = [e for e in keystone.catalog(token) if e.get("type") == "image"]
    assert len(image) == 1 and sorted(e["interface"] for e in image[0]["endpoints"]) == ["admin", "internal", "public"]

    second_ret = salt_cli.run("state.highstate", minion_tgt=salt_minion.id)
    assert second_ret.returncode == 0, second_ret
    second = state_results(second_ret)
    assert {k: v["changes"] for k, v in second.items() if v["changes"]} == {}
    assert all(r["result"] is True for r in second.values())

    out = json.dumps([dry, results, second])
    log = Path(salt_minion.config["log_file"]).read_text()
    assert "[DEBUG   ]" in log and "crm: running cibadmin --query" in log, "the minion log holds no DEBUG of the run"
    readable = readable_by_others("/etc", "/var", "/usr/lib/ocf")
    for secret in secrets:
        assert secret not in out
        assert secret not in log
        assert not any(secret in c for c in sampler.seen), "a secret on a command line"
        assert [p for p, data in readable.items() if secret.encode() in data] == []
    assert os.stat(CONF).st_mode & 0o007 == 0


def secrets_of(pillar):
    found = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if "password" in key and isinstance(value, str) and value:
                    found.append(value)
                else:
                    walk(value)
    walk(pillar)
    assert found
    return found


def test_bad_pillar_stops_highstate(salt_cli, salt_minion, set_pillar, highstate_top, example_pillar):
    set_pillar(files_only(example_pillar))
    salt_cli.run("state.highstate", minion_tgt=salt_minion.id)
    before = Path(CONF).read_bytes(), os.stat(CONF).st_mtime_ns
    set_pillar(deep_merge(files_only(example_pillar), {"glance_ha": {"api": {"prot": 9292}}}))
    ret = salt_cli.run("state.highstate", minion_tgt=salt_minion.id)
    assert ret.returncode != 0
    assert "glance_ha:api:prot: unknown key" in json.dumps(ret.data)
    assert (Path(CONF).read_bytes(), os.stat(CONF).st_mtime_ns) == before


def test_clean_then_apply_again(salt_cli, salt_minion, set_pillar, highstate_top, example_pillar):
    """glance_ha.clean through the master removes the agent, glance-api.conf and the credentials file (the
    image store stays); a highstate afterwards makes the same files again."""
    pillar = deep_merge(files_only(example_pillar), {"glance_ha": {"cluster": {"monitor_level": "api"}}})
    creds = "/etc/glance/ocf-credentials"
    set_pillar(pillar)
    state_results(salt_cli.run("state.highstate", minion_tgt=salt_minion.id))
    first = {p: Path(p).read_bytes() for p in (CONF, AGENT, creds)}
    store = pillar["glance_ha"]["store"]["path"]

    cleaned = state_results(salt_cli.run("state.apply", "glance_ha.clean", minion_tgt=salt_minion.id))
    assert all(r["result"] is True for r in cleaned.values()), cleaned
    assert not any(os.path.exists(p) for p in first)
    assert os.path.isdir(store)

    again = state_results(salt_cli.run("state.highstate", minion_tgt=salt_minion.id))
    assert all(r["result"] is True for r in again.values())
    assert {p: Path(p).read_bytes() for p in first} == first
