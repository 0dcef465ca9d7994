"""Day 2 on the lab, the cluster side: a renamed resource id, target-role=Stopped left by hand, a VIP
address change (measured), and a controller that joins after p_glance-api exists.

The first three run on the session's lab (a restored lab each: the `baseline` fixture). The last one
needs four controllers: its own lab (`lab4`), started only once the session's lab has stopped, and
run last in the session (test/ha/conftest.py)."""

import json
import secrets
import threading
import time

import pytest

from lab.lab import Lab
from test.ha.conftest import RESOURCE, glance_pid, new_lab, restore, stop_session_lab, wait_for
from test.modload import load

pcmk_status = load("_utils/pcmk_status.py")
INT, PUB = "p_ip_glance-api", "p_ip_glance-api-public"


def highstate(lab, override=None, target="ctl*", opts=()):
    """state.apply glance_ha (with pillar ``override`` merged in); (rc, {minion: {state id: ret}})."""
    args = ["glance_ha"] + ([f"pillar={json.dumps(override)}"] if override else [])
    rc, data = lab.salt(target, "state.apply", *args, timeout=900, opts=opts)
    return rc, {m: {r["__id__"]: r for r in rets.values()} if isinstance(rets, dict) else rets
                for m, rets in data.items()}


def owned_ids(rsc=RESOURCE):
    return [rsc, f"col_{rsc}_with_{INT}", f"ord_{INT}_before_{rsc}", f"ord_{rsc}_stops_before_{INT}",
            f"ord_{PUB}_before_{rsc}", f"ord_{rsc}_stops_before_{PUB}"]


def holders(lab, *addresses):
    m = lab.vip_map()
    return {a: sorted(n for n, addrs in m.items() if a in addrs) for a in addresses}


def status(lab, rsc=RESOURCE, n=None):
    """crm.resource_status as the formula computes it, from controller n's crm_mon and CIB."""
    n = n or lab.live_nodes()[0]
    mon = lab.exec(n, ["crm_mon", "--one-shot", "--inactive", "--output-as=xml"], timeout=30).stdout
    return pcmk_status.resource_status(mon, lab.exec(n, ["cibadmin", "--query"], timeout=30).stdout, rsc)


def bans(lab):
    cons = lab.exec(lab.live_nodes()[0], ["cibadmin", "--query", "--scope", "constraints"]).stdout
    return [line for line in cons.splitlines() if "cli-ban" in line or "cli-prefer" in line]


def api_ok(lab, token, url=None):
    url = url or lab.image_url(True)
    r = lab.client_call("wait_http", url=f"{url}/v2/images", token=token, timeout=120, interval=0.2)
    assert r["status"] == 200, r


def test_renamed_resource_id_replaces_the_old_objects_in_one_transaction(lab, baseline, token):
    new = "p_glance"
    rc, data = highstate(lab, {"glance_ha": {"cluster": {"resource": new}}})
    try:
        writes = {m: st["glance_ha-cluster"] for m, st in data.items() if st["glance_ha-cluster"]["changes"]}
        assert len(writes) == 1, {m: st["glance_ha-cluster"]["comment"] for m, st in data.items()}
        (writer, res), = writes.items()
        print(f"\nrename, the writer {writer}: {res['comment'][:400]}")
        assert "in one transaction" in res["comment"]
        for obj in owned_ids():
            assert res["changes"][obj]["new"] is None, obj       # removed ...
        for obj in owned_ids(new):
            assert res["changes"][obj]["old"] is None, obj       # ... and created in the same write
        assert rc == 0, {m: [s for s, r in st.items() if r["result"] is False] for m, st in data.items()}
        assert all(st["glance_ha-cluster-health"]["result"] is True for st in data.values())
        lab.wait_settled(180)
        where = lab.cluster_status()["resources"]
        assert RESOURCE not in where and len(where[new]) == 1, where
        wait_for("one glance-api", lambda: len(lab.glance_nodes()) == 1, 60)
        assert lab.glance_nodes() == where[new]
        assert holders(lab, lab.vip_internal, lab.vip_public) == {lab.vip_internal: where[new],
                                                                   lab.vip_public: where[new]}
        api_ok(lab, token)
        print(f"rename: {new} on {where[new]}, fail counts {status(lab, new)['fail_counts']}")
    finally:
        rc, data = highstate(lab)
        assert rc == 0, data
        restore(lab)
    assert new not in lab.cluster_status()["resources"]


def test_target_role_stopped_by_hand_fails_the_highstate_naming_it(lab, baseline):
    n = baseline.n
    lab.exec(n, ["crm_resource", "--resource", RESOURCE, "--meta", "--set-parameter", "target-role",
                 "--parameter-value", "Stopped"])
    fix = f"crm_resource --resource {RESOURCE} --meta --delete-parameter target-role"
    try:
        wait_for("glance-api stopped", lambda: lab.locate(RESOURCE) == [], 60)
        _rc, data = highstate(lab)  # the salt CLI's exit code does not reflect failed states
        for minion, states in data.items():
            health = states["glance_ha-cluster-health"]
            assert health["result"] is False, (minion, health)
            assert "target-role=Stopped" in health["comment"] and health["comment"].endswith(f"Fix: {fix}")
            others = [s for s, r in states.items() if r["result"] is False and s != "glance_ha-cluster-health"]
            assert others == [], (minion, others)
        print(f"\ntarget-role=Stopped: {health['comment']}")
        # nothing fixed it silently
        assert status(lab)["target_role"] == "Stopped" and lab.locate(RESOURCE) == []
    finally:
        lab.exec(n, fix.split())
        restore(lab)


def transitions(rows, t0):
    """'t+s: value' at each change of value in [(time, value), ...] (times relative to t0)."""
    out, last = [], object()
    for t, value in rows:
        if value != last:
            out.append(f"{t - t0:+.2f}s {value}")
            last = value
    return out


def test_vip_change_moves_the_address_with_the_least_downtime(lab, baseline, token):
    """A new public VIP by highstate: pollers every 100 ms on the old and the new address, and where
    each address is (every 100 ms, `ip -n`): the downtime between the old address's last answer and
    the new one's first; no ban; one holder; glance-api not restarted (same PID)."""
    old, new = lab.vip_public, lab.addr(102)
    pid = glance_pid(lab, baseline.n)
    stop = lab.run_dir / f"stop-{secrets.token_hex(3)}"
    jobs = {addr: lab.client_start("poll", url=f"http://{addr}:9292/v2/images", token=token, interval=0.1,
                                   timeout=2, stop=str(stop), duration=600) for addr in (old, new)}
    where, done = [], threading.Event()

    def sample():
        while not done.is_set():
            where.append((time.monotonic(), holders(lab, old, new)))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        time.sleep(2)
        sampler.start()
        t0 = time.monotonic()
        _rc, data = highstate(lab, {"glance_ha": {"vip": {"public": new}}})
        api_ok(lab, token, f"http://{new}:9292")
        time.sleep(3)
        stop.touch()
        done.set()
        polls = {addr: Lab.client_finish(job, timeout=60)["polls"] for addr, job in jobs.items()}
        failed = {m: [s for s, r in st.items() if r["result"] is False] for m, st in data.items()}
        assert not any(failed.values()), failed
        # A request's answer counts when it arrives (its end): one sent to the new address before it
        # exists waits in ARP resolution and is answered once the address comes up.
        last_old = max(p[1] for p in polls[old] if p[2] == 200)
        first_new = min(p[1] for p in polls[new] if p[2] == 200)
        up_new = min(t for t, h in where if h[new])
        gone_old = min(t for t, h in where if not h[old])
        failed_new = [p for p in polls[new] if p[2] != 200 and p[1] > first_new]
        print(f"\nVIP change {old} -> {new} (t=0: the highstate starts): old address removed at"
              f" {gone_old - t0:+.2f}s, new address up at {up_new - t0:+.2f}s; last answer on the old"
              f" {last_old - t0:+.2f}s, first on the new {first_new - t0:+.2f}s: downtime"
              f" {first_new - last_old:.2f} s; requests to the new address failing after its first answer:"
              f" {len(failed_new)}\n  old polls: {transitions([(p[0], p[2]) for p in polls[old]], t0)}"
              f"\n  new polls: {transitions([(p[0], p[2]) for p in polls[new]], t0)}"
              f"\n  holders: {transitions(where, t0)}")
        assert bans(lab) == []
        assert all(len(h[old]) + len(h[new]) <= 1 for _t, h in where)  # never two holders
        assert holders(lab, old, new) == {old: [], new: [baseline.active]}
        assert glance_pid(lab, baseline.n) == pid  # glance-api was not restarted
        assert status(lab)["fail_counts"] == {}
    finally:
        done.set()
        stop.touch()
        _rc, data = highstate(lab)
        assert not any(r["result"] is False for st in data.values() for r in st.values()), data
        restore(lab)
    assert holders(lab, old, new)[new] == []


# ---- a controller added later ------------------------------------------------------------------------
JOINER = 3


@pytest.fixture(scope="module")
def lab4():
    """Four controllers, ctl3 not booted: it joins later (names sort Pacemaker's ties: ctl3 is the one
    glance-api reaches after the crashes of ctl1 and ctl2). Started once the session's lab has stopped."""
    with new_lab("q", nodes=4) as the_lab:
        stop_session_lab()
        the_lab.up(boot=[n for n in the_lab.node_range if n != JOINER])
        yield the_lab


def test_a_controller_that_joins_later_becomes_a_failover_target(lab4):
    lab = lab4
    first = ",".join(lab.node_name(n) for n in lab.live_nodes())
    rc, data = lab.salt(first, "saltutil.sync_all", timeout=300, opts=("-L",))
    assert rc == 0, data
    rc, data = highstate(lab, target=first, opts=("-L",))
    assert rc == 0, {m: [s for s, r in st.items() if r["result"] is False] for m, st in data.items()}
    lab.wait_settled(180)
    token = lab.admin_token()
    api_ok(lab, token)

    joiner = lab.node_name(JOINER)
    lab.start(JOINER)  # boots; Pacemaker probes p_glance-api there before the formula ever ran on it
    probe = wait_for("the probe on the joiner", lambda: status(lab)["probes"].get(joiner), 60)
    print(f"\n{joiner} joined: probe of {RESOURCE} rc {probe}; excluded: {status(lab)['excluded']}")
    assert probe == 5 and joiner in status(lab)["excluded"]  # rc 5: the agent is not installed yet

    rc, data = lab.salt(joiner, "saltutil.sync_all", timeout=300)
    assert rc == 0, data
    rc, data = highstate(lab, target=joiner)
    assert rc == 0, {m: [s for s, r in st.items() if r["result"] is False] for m, st in data.items()}
    probed = data[joiner]["glance_ha-agent-probed"]
    print(f"{joiner}'s first highstate: {probed['comment']}")
    assert probed["changes"] == {"refreshed": {"old": "probe failed (rc 5)", "new": joiner}}
    st = status(lab)
    assert st["probes"][joiner] == 7 and joiner not in st["excluded"]

    where = lab.locate(RESOURCE)
    assert len(where) == 1 and where[0] != joiner
    for crash in (1, 2):
        active = lab.locate(RESOURCE)[0]
        lab.crash(lab.node_number(active))
        now = wait_for(f"{RESOURCE} off {active}", lambda a=active: [x for x in lab.locate(RESOURCE) if x != a],
                       120)
        print(f"crash {crash} of the active node {active}: {RESOURCE} now on {now}")
    assert now == [joiner]
    api_ok(lab, token)
    assert lab.glance_nodes() == [joiner]
    assert holders(lab, lab.vip_internal, lab.vip_public) == {lab.vip_internal: [joiner], lab.vip_public: [joiner]}
