"""Highstate through a real master and minion: for pillar.example and for a per-site override, show_sls,
test=True (exact diffs, nothing written), a real apply, then a second apply with zero changes."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from test.conftest import deep_merge, wipe

CONF = "/etc/glance/glance-api.conf"
AGENT = "/usr/lib/ocf/resource.d/openstack/glance-api"
TOP = "base:\n  '*':\n    - glance_ha\n"


def files_only(pillar):
    """Cluster, Keystone and database parts off: they have their own tests."""
    return deep_merge(pillar, {"glance_ha": {"cluster": {"manage": False}, "endpoints": {"manage": False},
                                             "database": {"sync": False}}})


def state_results(ret):
    assert ret.returncode in (0, 2), ret
    data = ret.data
    assert isinstance(data, dict), f"render errors: {data}"
    return {v["__id__"]: v for v in data.values()}


@pytest.fixture(scope="module")
def highstate_top(salt_master):
    with salt_master.state_tree.base.temp_file("top.sls", TOP):
        yield


@pytest.mark.parametrize("which", ["example", "site"])
def test_highstate_cycle(salt_cli, salt_minion, set_pillar, highstate_top, example_pillar, site_pillar,
                         which, salt_call_cli):
    pillar = files_only(example_pillar if which == "example" else site_pillar)
    set_pillar(pillar)
    wipe(CONF, AGENT)

    shown = salt_cli.run("state.show_sls", "glance_ha", minion_tgt=salt_minion.id)
    assert shown.returncode == 0, shown
    ids = set(shown.data)
    assert {"glance_ha-agent", "glance_ha-config-file"} <= ids

    dry = state_results(salt_cli.run("state.highstate", "test=True", minion_tgt=salt_minion.id))
    assert dry["glance_ha-config-file"]["result"] is None
    assert "+worker_self_reference_url = " in dry["glance_ha-config-file"]["changes"]["diff"]
    assert dry["glance_ha-agent"]["result"] is None
    assert not os.path.exists(CONF) and not os.path.exists(AGENT), "test=True wrote files"

    first = salt_cli.run("state.highstate", minion_tgt=salt_minion.id)
    results = state_results(first)
    assert all(r["result"] is True for r in results.values()), [r for r in results.values() if not r["result"]]
    assert results["glance_ha-config-file"]["changes"]
    assert os.stat(AGENT).st_mode & 0o7777 == 0o755
    assert os.stat(CONF).st_mode & 0o7777 == 0o640
    bind = Path(CONF).read_text()
    vip = pillar["glance_ha"]["vip"]["internal"].split("/")[0]
    assert f"worker_self_reference_url = http://{vip}:" in bind
    assert "bind_host" not in bind      # the agent gives it to the WSGI server

    second = state_results(salt_cli.run("state.highstate", minion_tgt=salt_minion.id))
    assert {k: v["changes"] for k, v in second.items() if v["changes"]} == {}
    assert all(r["result"] is True for r in second.values())

    # Nothing secret in what the user sees (--out=json), in the minion log, or in the file modes.
    out = json.dumps([dry, results, second])
    log = Path(salt_minion.config["log_file"]).read_text()
    for secret in secrets_of(pillar):
        assert secret not in out
        assert secret not in log
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


def test_no_password_in_process_list(salt_cli, salt_minion, set_pillar, highstate_top, example_pillar):
    """Sample `ps` while a highstate runs: no secret may show up on any command line."""
    set_pillar(files_only(example_pillar))
    wipe(CONF)
    proc = subprocess.Popen(["ps", "-eo", "args"], stdout=subprocess.PIPE, text=True)
    sampler = subprocess.Popen(
        ["bash", "-c", "for i in $(seq 60); do ps -eo args; sleep 0.1; done"], stdout=subprocess.PIPE, text=True)
    salt_cli.run("state.highstate", minion_tgt=salt_minion.id)
    seen = sampler.communicate()[0] + proc.communicate()[0]
    for secret in secrets_of(example_pillar):
        assert secret not in seen


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
