"""Salt runs racing with faults: a highstate while the active controller crashes, and two
highstates at once (`concurrent=True`, so the two runs really overlap on every minion, the writer
included). Before each, the configuration drifts: p_glance-api's migration-threshold changed, the
public VIP's colocation deleted, the internal image endpoint deleted from Keystone. Afterwards the CIB
holds exactly one set of the formula's objects, no duplicate id or constraint, `crm_verify -L` is
clean, the catalog holds one image service with exactly three endpoints, the drift is corrected,
a further apply changes nothing, and no image was lost.
"""

import datetime
import threading
import time

from test.ha.conftest import (
    PUB_COLOCATION,
    RESOURCE,
    assert_consistent,
    catalog,
    cib,
    meta,
    tracked,
    wait_for,
)

CLUSTER, ENDPOINTS, SERVICE = "glance_ha-cluster", "glance_ha-keystone-endpoints", "glance_ha-keystone-service"


def drift(lab, token):
    n = lab.live_nodes()[0]
    lab.exec(n, ["crm_resource", "-r", RESOURCE, "--meta", "-p", "migration-threshold", "-v", "7"])
    colocation = PUB_COLOCATION[lab.mode]
    lab.exec(n, ["cibadmin", "--delete", "--xml-text", f'<rsc_colocation id="{colocation}"/>'])
    r = lab.client_call("request", url=f"{lab.auth_url}/services?type=image", token=token)
    sid = r["body"]["services"][0]["id"]
    url = f"{lab.auth_url}/endpoints"
    r = lab.client_call("request", url=f"{url}?service_id={sid}&interface=internal", token=token)
    for ep in r["body"]["endpoints"]:
        d = lab.client_call("request", method="DELETE", url=f"{url}/{ep['id']}", token=token)
        assert d["status"] == 204, d
    root = cib(lab)
    assert meta(root, RESOURCE, "migration-threshold") == "7"
    assert root.find(f".//rsc_colocation[@id='{colocation}']") is None
    assert len(catalog(lab, token)[1]) == 2


def by_id(ret):
    """{state id: state return} of one minion's state.apply return."""
    return {s.get("__id__"): s for s in ret.values()} if isinstance(ret, dict) else {}


def span(ret):
    """(first state's start, last state's end) of one minion's run, as datetimes (same clock for the
    runs of one minion: its own)."""
    times = []
    for s in ret.values():
        if "start_time" not in s:      # a state skipped for a failed requisite never started
            continue
        start = datetime.datetime.strptime(s["start_time"], "%H:%M:%S.%f")
        times.append((start, start + datetime.timedelta(milliseconds=float(s["duration"]))))
    return min(t[0] for t in times), max(t[1] for t in times)


def make_active_the_dc(lab, baseline):
    """Put glance-api (active-passive) or the public VIP (active-active) on the DC (the writer) if it
    runs elsewhere: a move, then the move's constraint cleared (stickiness keeps it there). Returns
    the DC's number."""
    dc, rsc = baseline.dc, tracked(lab.mode)
    if baseline.active != dc:
        first = lab.live_nodes()[0]
        lab.exec(first, ["crm_resource", "--move", "-r", rsc, "--node", dc])
        wait_for(f"{rsc} on the DC {dc}", lambda: lab.locate(rsc) == [dc], 120)
        lab.exec(first, ["crm_resource", "--clear", "-r", rsc])
        lab.wait_settled(180)
    assert lab.locate(rsc) == [dc] and lab.cluster_status()["dc"] == dc
    return lab.node_number(dc)


def summary(data):
    """{minion: [failed state ids + comments]} of a salt state.apply return."""
    out = {}
    for minion, ret in data.items():
        if isinstance(ret, dict):
            out[minion] = [f"{s.get('__id__')}: {str(s.get('comment'))[:300]}" for s in ret.values()
                           if s.get("result") is False]
        else:
            out[minion] = [str(ret)[:300]]
    return out


def changed(data):
    return {m: sorted(s.get("__id__") for s in r.values() if s.get("changes"))
            if isinstance(r, dict) else [str(r)] for m, r in data.items()}


def apply_all(lab, timeout=300):
    """state.apply glance_ha on every controller. `timeout` is salt's -t: after it the CLI asks the
    minions whether they still run the job and keeps waiting for those that do, so a short one only
    stops it waiting for a minion that died (a crashed controller)."""
    return lab.salt("ctl*", "state.apply", "glance_ha", timeout=timeout)


def started_runs(lab, n):
    """How many state.apply jobs the minion of controller n has started (its log, read from the host)."""
    log = lab.node_dir(n) / "log/salt/minion"
    return log.read_text(errors="replace").count("Executing command state.apply ") if log.exists() else 0


def api_answers(lab, token, public):
    return wait_for(f"the image API through the {'public' if public else 'internal'} VIP",
                    lambda: lab.client_call("request", url=f"{lab.image_url(public)}/v2/images", token=token,
                                            request_timeout=5)["status"] == 200, 120, 0.5)


def settle_everything(lab, token):
    lab.wait_cluster(120)
    lab.wait_minions()
    lab.wait_settled(180)
    # The internal VIP only: while the drift lasts (no colocation of the public VIP) a failover may
    # have put the public VIP on another controller than glance-api.
    api_answers(lab, token, public=False)


def test_highstate_during_failover(lab, baseline, ledger, token, cluster_mode):
    """The writer crashes mid-run: glance-api (active-active: the public VIP) is first put on the DC
    (the writer), so the node that dies is both the active controller and the writer, by construction."""
    n = make_active_the_dc(lab, baseline)
    node = lab.node_name(n)
    drift(lab, token)
    runs = started_runs(lab, n)
    out = {}
    job = threading.Thread(target=lambda: out.update(ret=apply_all(lab, timeout=20)), daemon=True)
    job.start()
    wait_for("state.apply to start on the active controller", lambda: started_runs(lab, n) > runs, 60, 0.05)
    lab.crash(n)  # the active controller, which is the DC and so the writer, dies mid-run
    job.join(400)
    assert not job.is_alive()
    rc, data = out["ret"]
    print(f"crashed {node} (the DC) during the run; failures: {summary(data)}")
    rsc = tracked(lab.mode)
    wait_for(f"{rsc} elsewhere", lambda: [x for x in lab.cluster_status()["resources"].get(rsc, []) if x != node], 120)
    lab.wait_settled(180)
    assert_consistent(lab, token, corrected=False)  # whatever the run managed: never half-written

    lab.start(n, wait=False)
    settle_everything(lab, token)
    rc, data = apply_all(lab)
    assert summary(data) == {lab.node_name(i): [] for i in lab.node_range}
    assert rc == 0
    lab.wait_settled(180)
    assert_consistent(lab, token)
    rc, data = apply_all(lab)
    assert changed(data) == {lab.node_name(i): [] for i in lab.node_range}
    where = lab.locate(rsc)
    assert len(where) == 1 and where[0] != node  # moved, and not taken back
    if lab.mode == "active-passive":
        assert sorted(lab.vip_holders(lab.vip_internal) + lab.vip_holders(lab.vip_public)) == where * 2
    api_answers(lab, token, public=True)
    assert ledger.verify() == []


def test_two_highstates_at_once(lab, baseline, ledger, token, cluster_mode):
    """Two state.apply runs at once on every controller (concurrent=True). Proven: on the writer (the DC)
    the two runs' state timestamps overlap; only the DC's crm and Keystone states act (the others say
    "not the writer" and change nothing) and the CIB's update-origin is the DC; exactly one of the two
    runs corrects the CIB drift and one the catalog drift (the other fails on the CIB's version, or
    finds nothing left to do); afterwards one set of objects, and a further apply changes nothing."""
    drift(lab, token)
    dc = baseline.dc
    out = {}

    def run(key):
        out[key] = lab.salt("ctl*", "state.apply", "glance_ha", "concurrent=True", timeout=300)

    jobs = [threading.Thread(target=run, args=(k,), daemon=True) for k in ("a", "b")]
    t0 = time.monotonic()
    for j in jobs:
        j.start()
    for j in jobs:
        j.join(400)
    assert not any(j.is_alive() for j in jobs)
    fails = {k: summary(v[1]) for k, v in out.items()}
    print(f"two concurrent applies in {time.monotonic() - t0:.1f} s; failures: {fails}")
    runs = {k: {m: by_id(r) for m, r in v[1].items()} for k, v in out.items()}
    # the overlap, from both runs' own timestamps on the writer
    (a0, a1), (b0, b1) = span(out["a"][1][dc]), span(out["b"][1][dc])
    assert a0 < b1 and b0 < a1, f"the runs did not overlap on {dc}: a {a0}-{a1}, b {b0}-{b1}"
    # only the DC writes
    for k, minions in runs.items():
        for minion, states in minions.items():
            for sid in (CLUSTER, ENDPOINTS, SERVICE):
                if minion != dc:
                    assert states[sid]["result"] is True and not states[sid]["changes"], (k, minion, sid)
                    assert "not the writer" in states[sid]["comment"].lower(), (k, minion, states[sid]["comment"])
    assert cib(lab).get("update-origin") == dc
    # one winner per drift; a loser failed cleanly: its commit said so, and only what requires it failed
    for sid in (CLUSTER, ENDPOINTS):
        fixed = [k for k in runs if runs[k][dc][sid]["changes"]]
        assert len(fixed) == 1, (sid, {k: runs[k][dc][sid]["comment"] for k in runs})
    for k, minions in fails.items():
        errs = minions[dc]
        assert all("changed since this run read it" in e or "requisite failed" in e for e in errs), (k, errs)
        assert all(v == [] for m, v in minions.items() if m != dc), (k, minions)
    lab.wait_settled(180)
    assert_consistent(lab, token)
    rc, data = apply_all(lab)
    assert changed(data) == {lab.node_name(i): [] for i in lab.node_range}
    assert rc == 0
