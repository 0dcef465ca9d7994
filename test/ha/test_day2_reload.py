"""Day 2 on the lab: a running site changed without losing a request.

A client polls `GET /v2/images` through the public VIP every 100 ms (2 s timeout, as
bench/bench_failover.py) while:

- a config change (workers, a debug flag, a timeout) is applied by a highstate: reloaded, not
  restarted (workers through Pacemaker's reload-agent, glance-api.conf through
  glance_ha.running_config); 0 failed requests; the running digest equals the file's;
- maintenance-mode is on and the config changes: the file is written, the reload deferred with a
  comment, the highstate green; maintenance off, the next highstate reloads; 0 failed requests;
- monitor_level goes http -> api -> http one controller at a time (`salt -b 1`), in both node
  orders (the node running glance first, the DC first): glance never stopped, fail count 0;
- the service user's password is rotated from the pillar: the failed requests are counted and
  reported (and the password rotated back the same way).
"""

import json
import secrets
import time

import pytest

from test.ha.conftest import RESOURCE, Poller, glance_pid, restore

STATE = "glance_ha_|-glance_ha-cluster-running-config_|-p_glance-api_|-running_config"
CONF = "/etc/glance/glance-api.conf"
CREDENTIALS = "/etc/glance/ocf-credentials"


def apply(lab, target="ctl*", pillar=None, opts=()):
    """state.apply glance_ha; {minion: {state id: result}} (asserts every minion answered with states)."""
    args = ["glance_ha"] + ([f"pillar={json.dumps(pillar)}"] if pillar else [])
    _rc, data = lab.salt(target, "state.apply", *args, timeout=900, opts=opts)
    assert data and all(isinstance(v, dict) for v in data.values()), data
    return data


def failed_states(data):
    return {m: {k: v.get("comment") for k, v in states.items() if v.get("result") is not True}
            for m, states in data.items() if any(v.get("result") is not True for v in states.values())}


def running_config(lab, minion):
    _rc, data = lab.salt(minion, "glance_ha.running_config", RESOURCE, timeout=120)
    return data[minion]


def file_sha(lab, n, path=CONF):
    return lab.exec(n, ["sha256sum", path]).stdout.split()[0]


def fail_counts(lab):
    return {lab.node_name(n): lab.failcount(RESOURCE, lab.node_name(n)) for n in lab.node_range}


def site_pillar(workers=1, debug=False, timeout=None, level="http", password=None):
    conf = {"DEFAULT": {"debug": debug}}
    if timeout:
        conf["keystone_authtoken"] = {"http_connect_timeout": timeout}
    pillar = {"glance_ha": {"api": {"workers": workers}, "config": conf, "cluster": {"monitor_level": level}}}
    if password:
        pillar["glance_ha"]["keystone"] = {"service_user": {"password": password}}
    return pillar


@pytest.fixture(scope="module")
def day2(lab, first_apply, token):
    restore(lab)
    yield token
    restore(lab)


def _active(lab):
    where = lab.locate(RESOURCE)
    assert len(where) == 1, where
    return where[0], lab.node_number(where[0])


def test_config_change_is_reloaded_without_a_failed_request(lab, day2):
    name, n = _active(lab)
    pid = glance_pid(lab, n)
    with Poller(lab, day2) as poll:
        data = apply(lab, pillar=site_pillar(workers=2, debug=True, timeout=7))
        lab.wait_settled(180)
    assert failed_states(data) == {}, failed_states(data)
    # reloaded by this state, or already by Pacemaker's reload-agent for workers (which reloads all)
    state = data[name][STATE]
    assert state["changes"].get("reloaded", {}).get("node", name) == name, state
    assert poll.failed == [], poll.summary()
    assert _active(lab)[0] == name and glance_pid(lab, n) == pid   # reloaded in place, never restarted
    found = running_config(lab, name)
    assert found["stale"] == [] and found["loaded"][CONF] == file_sha(lab, n), found
    assert "debug = true" in lab.exec(n, ["cat", CONF]).stdout.lower()
    workers = lab.exec(n, ["ps", "-o", "pid=", "--ppid", str(pid)]).stdout.split()
    assert len(workers) == 2, workers                              # workers: reload-agent, no restart
    assert set(fail_counts(lab).values()) == {0}
    # every other minion: nothing to do there
    for other, states in data.items():
        if other != name:
            assert "not active on this node" in states[STATE]["comment"]
    print(f"config change (workers 1->2, debug, a timeout): {poll.summary()}")


def test_maintenance_defers_the_reload_then_the_next_run_does_it(lab, day2):
    name, n = _active(lab)
    pid = glance_pid(lab, n)
    first = lab.live_nodes()[0]
    before = file_sha(lab, n)
    changed = site_pillar(workers=2, debug=False, timeout=9)
    with Poller(lab, day2) as poll:
        lab.exec(first, ["crm_attribute", "--type", "crm_config", "--name", "maintenance-mode", "--update", "true"])
        try:
            data = apply(lab, pillar=changed)
            assert failed_states(data) == {}, failed_states(data)
            comment = data[name][STATE]["comment"]
            assert "deferred" in comment and "maintenance-mode" in comment, comment
            assert data[name][STATE]["changes"] == {}
            assert file_sha(lab, n) != before                       # the file is written
            assert running_config(lab, name)["stale"] == [CONF]
        finally:
            lab.exec(first, ["crm_attribute", "--type", "crm_config", "--name", "maintenance-mode", "--delete"])
        lab.wait_settled(180)
        data = apply(lab, pillar=changed)
        lab.wait_settled(180)
    assert failed_states(data) == {}, failed_states(data)
    assert data[name][STATE]["changes"]["reloaded"]["files"] == [CONF]
    assert running_config(lab, name)["stale"] == []
    assert glance_pid(lab, n) == pid and poll.failed == [], poll.summary()
    assert set(fail_counts(lab).values()) == {0}
    print(f"maintenance-mode on, change, off, apply: {poll.summary()}")


@pytest.mark.parametrize("first", ["active", "dc"])
def test_monitor_level_switch_one_node_at_a_time(lab, day2, first):
    """http -> api -> http, one controller after the other (salt -b 1), the node running glance
    first or the DC first: every node has the credentials file all along, the monitor_level change
    is a reload-agent (a reloadable parameter), glance is never stopped."""
    name, n = _active(lab)
    dc = lab.cluster_status()["dc"]
    lead = name if first == "active" else dc
    order = [lead] + [lab.node_name(i) for i in lab.node_range if lab.node_name(i) != lead]
    pid = glance_pid(lab, n)
    for i in lab.node_range:
        assert lab.exec(i, ["test", "-f", CREDENTIALS], check=False).returncode == 0
    with Poller(lab, day2) as poll:
        for level in ("api", "http"):
            for minion in order:                                    # what `salt -b 1` does
                data = apply(lab, target=minion, pillar=site_pillar(workers=2, timeout=9, level=level))
                assert failed_states(data) == {}, (level, minion, failed_states(data))
            lab.wait_settled(180)
            params = lab.exec(n, ["crm_resource", "-r", RESOURCE, "-g", "monitor_level"]).stdout.strip()
            assert params.endswith(level), params
            time.sleep(12)                                          # at least one monitor at that level
    assert _active(lab)[0] == name and glance_pid(lab, n) == pid, "glance was stopped"
    assert fail_counts(lab) == {lab.node_name(i): 0 for i in lab.node_range}
    assert poll.failed == [], poll.summary()
    print(f"monitor_level http->api->http, {first} first ({' '.join(order)}): {poll.summary()}")


def test_password_rotation_counts_failed_requests(lab, day2):
    """The service user's password changed in the pillar, applied to every controller at once: Keystone
    first (the writer's identity state), then each node's glance-api.conf, then the running glance
    reloaded once Keystone accepts the new password. Rotated back the same way."""
    name, n = _active(lab)
    pid = glance_pid(lab, n)
    new = "rot-" + secrets.token_hex(10)
    report = []
    for password in (new, None):   # None: back to the lab's own password
        with Poller(lab, day2) as poll:
            data = apply(lab, pillar=site_pillar(workers=2, timeout=9, password=password))
            lab.wait_settled(180)
        assert failed_states(data) == {}, failed_states(data)
        assert running_config(lab, name)["stale"] == []
        report.append(f"{'rotate' if password else 'rotate back'}: {poll.summary()}")
        # the image API works with a fresh token after the rotation (new workers, new password)
        fresh = lab.admin_token()
        r = lab.client_call("request", url=lab.image_url(True) + "/v2/images", token=fresh)
        assert r["status"] == 200, r
    assert glance_pid(lab, n) == pid
    print("password rotation: " + "; ".join(report))
