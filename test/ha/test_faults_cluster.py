"""Cluster faults on the lab, in both cluster modes, each on a restored lab (the `baseline` fixture), each checking
recovery and that no image was lost (the session's ledger: every image whose upload returned success
downloads with the same sha256 after the fault).

  - glance-api SIGKILLed on the active controller: restarted in place by the monitor, fail count +1
  - the active controller crashes: both VIPs and glance-api move together; it returns, no fail-back
  - standby of the active controller; clean stop of Pacemaker on it (corosync keeps running)
  - every CPU busy on the active controller: nothing fails over, nobody is fenced
  - partition of the active controller: the minority loses quorum and stops glance-api and its VIPs;
    without fencing (the lab's default) no node the network can reach ever holds the VIP twice; with
    the lab's fence agent on, no node at all holds it twice at any poll (the majority fences first)

The lab runs without STONITH (doc/lab.md): a real site fences, which is what the last test shows.

Each test runs in both cluster modes (``cluster_mode``). In active-active glance-api runs on every
controller and the fault hits the node of the public VIP: its VIPs move to a node whose instance is
running, and the other instances are never touched (same PIDs); a node that comes back gets its
instance again, and the VIPs stay where they are (stickiness).
"""

import os
import time

from test.ha.conftest import (
    PIDFILE,
    RESOURCE,
    Poller,
    VipWatch,
    cib,
    glance_pid,
    holders,
    meta,
    start_pacemaker,
    tracked,
    wait_for,
)

API = "/v2/images"


def api_back(lab, token, timeout=120):
    r = lab.client_call("wait_http", url=lab.image_url(public=True) + API, token=token, timeout=timeout,
                        interval=0.2)
    assert r["status"] == 200, r
    return r


def assert_together_on(lab, node, instances=None, on=None):
    """Active-passive: glance-api (Pacemaker's view, asked on `on`, and the processes) and both VIPs on
    `node` only. Active-active: glance-api on exactly `instances` (default: every online controller),
    the public VIP on `node`, and each VIP on exactly one node that runs an instance."""
    status = lab.cluster_status(on)
    if lab.mode == "active-passive":
        assert status["resources"].get(RESOURCE) == [node]
        assert lab.glance_nodes() == [node]
        assert holders(lab) == {lab.vip_internal: [node], lab.vip_public: [node]}
        return
    want = sorted(instances if instances is not None else status["online"])
    assert sorted(status["resources"].get(RESOURCE, [])) == want
    assert sorted(lab.glance_nodes()) == want
    h = holders(lab)
    assert h[lab.vip_public] == [node], h
    assert len(h[lab.vip_internal]) == 1 and h[lab.vip_internal][0] in want, h


def moved_from(lab, node, on=None):
    """The controller the tracked resource (glance-api; the public VIP in active-active) runs on now,
    once it is not `node` any more (asked on `on`)."""
    rsc = tracked(lab.mode)
    where = wait_for(f"{rsc} off {node}", lambda: [
        x for x in lab.cluster_status(on)["resources"].get(rsc, []) if x != node], 120)
    return where[0]


def instance_pids(lab, baseline, exclude):
    """{node: glance-api's PID} of the instances other than `exclude`'s (active-active), to show that a
    fault on one node leaves the others alone; {} in active-passive."""
    if lab.mode == "active-passive":
        return {}
    pids = {x: glance_pid(lab, lab.node_number(x)) for x in baseline.instances if x != exclude}
    assert all(pids.values()), pids
    return pids


def untouched(lab, pids):
    assert {x: glance_pid(lab, lab.node_number(x)) for x in pids} == pids


def test_glance_sigkill_is_restarted_in_place(lab, baseline, ledger, token, cluster_mode):
    """Active-passive: restarted in place, the VIPs never move. Active-active (the instance under the
    public VIP): with migration-threshold 1 the VIPs move at once to a running instance and the killed
    one stays stopped until its failure is cleaned up (or failure-timeout); with a higher threshold it is
    restarted in place like in active-passive."""
    ledger.add("before-sigkill")
    node, n = baseline.active, baseline.n
    pid = glance_pid(lab, n)
    others = instance_pids(lab, baseline, node)
    fails = lab.failcount(RESOURCE, node)
    # SIGKILL the whole session the agent started (gunicorn master and workers)
    lab.exec(n, ["sh", "-c", f'pkill -KILL -s "$(cat {PIDFILE})"'])
    wait_for("glance-api gone", lambda: node not in lab.glance_nodes(), 30)
    api_back(lab, token)
    wait_for("the fail count to rise", lambda: lab.failcount(RESOURCE, node) > fails, 60)
    lab.wait_settled(120)
    assert lab.failcount(RESOURCE, node) == fails + 1
    untouched(lab, others)
    if cluster_mode == "active-active" and meta(cib(lab), RESOURCE, "migration-threshold") == "1":
        new = moved_from(lab, node)
        assert_together_on(lab, new, instances=sorted(others))  # the VIPs left; the failed one stays down
        lab.exec(n, ["crm_resource", "--cleanup", "-r", RESOURCE, "-N", node])
        lab.wait_settled(120)
        assert_together_on(lab, new)  # back on its node once cleaned up, the VIPs stay
    else:
        assert_together_on(lab, node)  # restarted in place, the VIPs never moved
    assert glance_pid(lab, n) not in (None, pid)
    assert ledger.verify() == []


def test_crash_moves_vips_and_glance_together_without_failback(lab, baseline, ledger, token, cluster_mode):
    ledger.add("before-crash")
    node, n = baseline.active, baseline.n
    others = instance_pids(lab, baseline, node)
    lab.crash(n)
    api_back(lab, token)
    survivor = baseline.others()[0]
    new = moved_from(lab, node, survivor)
    lab.wait_settled(120)
    assert new != node
    assert_together_on(lab, new, instances=sorted(others))
    untouched(lab, others)
    assert ledger.verify() == []
    ledger.add("after-crash")  # the new node writes to the same (shared) store

    lab.start(n, wait=False)
    lab.wait_cluster(120)
    lab.wait_settled(120)
    assert lab.cluster_status()["online"].count(node) == 1
    assert_together_on(lab, new)  # stickiness: the returning node does not take it back
    untouched(lab, others)
    assert ledger.verify() == []


def test_standby_of_the_active_node(lab, baseline, ledger, token, cluster_mode):
    ledger.add("before-standby")
    node, n = baseline.active, baseline.n
    others = instance_pids(lab, baseline, node)
    lab.exec(n, ["crm_standby", "-N", node, "-v", "on"])
    new = moved_from(lab, node)
    lab.wait_settled(120)
    api_back(lab, token)
    assert_together_on(lab, new, instances=sorted(others))
    untouched(lab, others)
    assert lab.exec(n, ["crm_standby", "-N", node, "-G", "-q"]).stdout.strip() == "on"
    assert ledger.verify() == []

    lab.exec(n, ["crm_standby", "-N", node, "-v", "off"])
    lab.wait_settled(120)
    assert_together_on(lab, new)
    untouched(lab, others)
    assert ledger.verify() == []


def test_clean_stop_of_pacemaker_on_the_active_node(lab, baseline, ledger, token, cluster_mode):
    ledger.add("before-pacemaker-stop")
    node, n = baseline.active, baseline.n
    other = baseline.others()[0]
    others = instance_pids(lab, baseline, node)
    lab.exec(n, ["pacemakerd", "--shutdown"], timeout=120)
    wait_for("pacemakerd gone",
             lambda: lab.exec(n, ["pgrep", "-x", "pacemakerd"], check=False).returncode != 0, 90)
    new = moved_from(lab, node, other)
    wait_for(f"{node} out of the cluster", lambda: node not in lab.cluster_status(other)["online"], 60)
    lab.exec(other, ["crm_resource", "--wait", "--timeout=120s"], timeout=150)
    api_back(lab, token)
    # the node itself is still up: corosync runs, only Pacemaker (and what it ran) stopped
    assert lab.exec(n, ["corosync-cfgtool", "-s"], check=False).returncode == 0
    assert node not in lab.glance_nodes()
    assert_together_on(lab, new, instances=sorted(others), on=other)
    untouched(lab, others)
    assert ledger.verify() == []

    start_pacemaker(lab, n)
    lab.wait_cluster(120)
    lab.wait_settled(120)
    assert_together_on(lab, new)
    untouched(lab, others)
    assert ledger.verify() == []


def partition(lab, baseline, token, fencing):
    node, n = baseline.active, baseline.n
    other = baseline.others()[0]
    with VipWatch(lab) as watch:
        time.sleep(0.5)  # a few samples of the normal state first
        t0 = time.monotonic()
        lab.isolate(n)
        t_cut = time.monotonic()
        new = moved_from(lab, node, other)
        api_back(lab, token)
        if fencing:
            wait_for(f"{node} fenced", lambda: any(f == node for f, _ in lab.fenced), 60)
        else:
            # the minority: no quorum, stops glance-api and then both VIPs
            wait_for(f"{node} without quorum", lambda: "partition WITHOUT quorum" in lab.exec(
                n, ["crm_mon", "-1"], check=False).stdout, 60)
            wait_for(f"{node} stopped glance-api and its VIPs", lambda: node not in lab.glance_nodes()
                     and not any(node in h for h in holders(lab).values()), 90)
        lab.exec(other, ["crm_resource", "--wait", "--timeout=120s"], timeout=150)
        time.sleep(0.5)
    print(f"partition of {node} (fencing {'on' if fencing else 'off'}), VIP holders over time:",
          watch.changes(t0))
    assert watch.samples and watch.samples[-1][0] > t_cut
    return node, n, new, watch, t_cut


def test_partition_minority_stops_glance_and_its_vips(lab, baseline, ledger, token, cluster_mode):
    ledger.add("before-partition")
    others = instance_pids(lab, baseline, baseline.active)
    node, n, new, watch, t_cut = partition(lab, baseline, token, fencing=False)
    assert new != node
    for t, h in watch.samples:
        for vip, nodes in h.items():
            # a node cut off the network (its bridge port down from t_cut on) cannot answer for the VIP
            reachable = [x for x in nodes if not (x == node and t > t_cut)]
            assert len(reachable) <= 1, (round(t - t_cut, 2), vip, nodes)
    # in the end: the minority holds nothing; the majority exactly one copy with both VIPs
    # (active-passive) or its instances untouched and each VIP once (active-active)
    assert_together_on(lab, new, instances=sorted(others), on=lab.node_number(new))
    untouched(lab, others)
    assert ledger.verify() == []

    lab.heal(n)
    lab.wait_cluster(120)
    lab.wait_settled(120)
    assert_together_on(lab, new)
    untouched(lab, others)
    assert ledger.verify() == []


def test_partition_with_fencing_never_two_vip_holders(lab, baseline, ledger, token, cluster_mode):
    """With STONITH on (the lab's fence agent), the majority powers the isolated node off before it
    takes the VIPs over: at every poll, counting the cut-off node too, at most one node holds a VIP."""
    ledger.add("before-partition-fenced")
    lab.enable_fencing()
    lab.wait_settled(120)
    node, n, new, watch, _ = partition(lab, baseline, token, fencing=True)
    assert new != node
    for t, h in watch.samples:
        for vip, nodes in h.items():
            assert len(nodes) <= 1, (round(t - watch.samples[0][0], 2), vip, nodes)
    assert not lab.is_running(n)  # powered off by the fence agent
    assert_together_on(lab, new, instances=sorted(x for x in baseline.instances if x != node))
    assert ledger.verify() == []

    lab.disable_fencing()
    lab.start(n, wait=False)
    lab.wait_cluster(120)
    lab.wait_settled(120)
    assert_together_on(lab, new)
    assert ledger.verify() == []


def test_busy_active_node_is_not_failed_over(lab, baseline, ledger, token, cluster_mode):
    """A busy node must not be fenced or failed over for being slow. Every CPU of the machine kept
    busy (two busy loops per CPU inside the active controller; the host's CPUs are what all the lab's
    controllers share) for three monitor intervals plus the token, with the lab's detection settings
    (corosync token 1000 ms, monitor 10 s) and fencing ON: no membership change (corosync's ring id
    unchanged on every node), nobody fenced, glance-api's fail count, placement and PID unchanged,
    the VIPs where they were. Corosync runs with a real-time scheduling policy (checked), which is what
    keeps its token moving on a busy node (doc/detection.md)."""
    node, n = baseline.active, baseline.n
    policy = lab.exec(n, ["sh", "-c", "chrt -p $(pidof corosync)"]).stdout
    assert "SCHED_RR" in policy, policy
    lab.enable_fencing()
    lab.wait_settled(120)
    rings = {x: lab.ring_id(x) for x in lab.node_range}
    warned = sum(lab.token_warnings(x) for x in lab.node_range)
    fenced, fails, pid, before = len(lab.fenced), lab.failcount(RESOURCE, node), glance_pid(lab, n), holders(lab)
    root = cib(lab)
    interval = int(root.find(f".//primitive[@id='{RESOURCE}']/operations/op[@name='monitor']").get("interval")
                   .rstrip("s"))
    seconds = 3 * interval + lab.token // 1000 + 2
    hogs = 2 * (os.cpu_count() or 1)
    # each loop ends by itself (timeout), inside the controller's pid namespace
    loop = "while :; do :; done"
    lab.exec(n, ["sh", "-c", (f"for i in $(seq {hogs}); do setsid -f timeout {seconds} sh -c '{loop}' "
                              "</dev/null >/dev/null 2>&1; done")])
    # setsid -f returns before its child has exec'd: wait until every loop runs
    wait_for(f"{hogs} busy loops", lambda: lab.exec(n, ["pgrep", "-c", "-f", f"^sh -c {loop}$"],
                                                   check=False).stdout.strip() == str(hogs), 10, 0.1)
    with Poller(lab, token) as poll:
        wait_for("the busy loops to end", lambda: lab.exec(
            n, ["pgrep", "-f", f"^sh -c {loop}$"], check=False).returncode != 0, seconds + 30, 1)
    warned = sum(lab.token_warnings(x) for x in lab.node_range) - warned
    print(f"{hogs} busy loops for {seconds} s on {node}: {poll.summary()}, {warned} late-token warning(s)")
    lab.wait_settled(120)
    assert {x: lab.ring_id(x) for x in lab.node_range} == rings
    assert len(lab.fenced) == fenced
    assert lab.failcount(RESOURCE, node) == fails and glance_pid(lab, n) == pid
    assert sorted(lab.locate(RESOURCE)) == baseline.instances and holders(lab) == before
    lab.disable_fencing()
    assert ledger.verify() == []
