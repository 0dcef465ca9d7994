"""crm.resource_status and its health classification on real Pacemaker tools: a CIB file whose
status section crm_simulate writes (nodes up, the scheduler's actions carried out, failures injected),
read back through crm_mon --output-as=xml and cibadmin --query."""

import pytest
from crm_helpers import apply_sls, run

from test.modload import load

RSC = "p_svc"
pcmk_status = load("_utils/pcmk_status.py")


def simulate(cib, *args):
    """crm_simulate on the CIB file, its result stored back (--in-place)."""
    run("crm_simulate", "--xml-file", str(cib.path), "--in-place", "--quiet", *args)


@pytest.fixture
def cluster(cib):
    """Two nodes up, RSC (ocf:heartbeat:Dummy) started on one of them."""
    cib.crm(f"primitive {RSC} ocf:heartbeat:Dummy op monitor interval=10s\n"
            "rsc_defaults resource-stickiness=100")
    simulate(cib, "--node-up", "n1", "--node-up", "n2")
    return cib


def health(modules):
    st = modules.crm.resource_status(RSC)
    return st, pcmk_status.health(st, RSC)


def test_started_on_one_node(modules, cluster):
    st, h = health(modules)
    assert st["exists"] and len(st["started_on"]) == 1 and st["managed"]
    assert st["target_role"] is None and not st["cluster_maintenance"]
    assert sorted(st["nodes"]) == ["n1", "n2"] and st["excluded"] == {}
    assert modules.crm.locate(RSC) == st["started_on"]
    assert h["state"] == "started" and h["ok"] and h["final"]
    assert sorted(st["known_on"]) == ["n1", "n2"]


def test_target_role_stopped_by_hand(modules, cluster):
    run("crm_resource", "--resource", RSC, "--meta", "--set-parameter", "target-role", "--parameter-value",
        "Stopped")
    simulate(cluster)
    st, h = health(modules)
    assert st["started_on"] == [] and st["target_role"] == "Stopped"
    assert h["state"] == "target-role-stopped" and not h["ok"] and h["final"]
    assert "target-role=Stopped" in h["comment"]
    assert h["fix"] == f"crm_resource --resource {RSC} --meta --delete-parameter target-role"
    run("sh", "-c", h["fix"])
    simulate(cluster)
    assert pcmk_status.health(modules.crm.resource_status(RSC), RSC)["state"] == "started"


@pytest.mark.parametrize("meta, state, fix", [
    ("is-managed=false", "unmanaged", f"crm_resource --resource {RSC} --meta --delete-parameter is-managed"),
    ("maintenance=true", "maintenance", f"crm_resource --resource {RSC} --meta --delete-parameter maintenance"),
])
def test_unmanaged_or_in_maintenance(modules, cluster, meta, state, fix):
    key, value = meta.split("=")
    run("crm_resource", "--resource", RSC, "--meta", "--set-parameter", key, "--parameter-value", value)
    st, h = health(modules)
    assert not st["managed"] and len(st["active_on"]) == 1
    assert h["state"] == state and not h["ok"] and h["final"] and h["fix"] == fix
    run("sh", "-c", fix)
    assert pcmk_status.health(modules.crm.resource_status(RSC), RSC)["state"] == "started"


def test_unmanaged_by_rsc_defaults(modules, cluster):
    cluster.crm("rsc_defaults is-managed=false")
    st, h = health(modules)
    assert st["meta_from"]["is-managed"] == "rsc_defaults"
    assert h["state"] == "unmanaged"
    run("sh", "-c", h["fix"])  # the command it names fixes it
    assert pcmk_status.health(modules.crm.resource_status(RSC), RSC)["state"] == "started"


def test_cluster_maintenance_mode_checks_nothing(modules, cluster):
    run("crm_attribute", "--type", "crm_config", "--name", "maintenance-mode", "--update", "true")
    run("crm_resource", "--resource", RSC, "--meta", "--set-parameter", "target-role", "--parameter-value",
        "Stopped")
    st, h = health(modules)
    assert st["cluster_maintenance"]
    assert h["state"] == "cluster-maintenance" and h["ok"] and "not checked" in h["comment"]


def test_failed_and_banned_everywhere(modules, cluster):
    active = modules.crm.locate(RSC)[0]
    other = "n2" if active == "n1" else "n1"
    run("crm_resource", "--ban", "--resource", RSC, "--node", other)
    # the monitor finds it failed and its start fails with "not installed" (a hard error on that node)
    simulate(cluster, "--op-inject", f"{RSC}_monitor_10000@{active}=7", "--op-fail", f"{RSC}_start_0@{active}=5")
    simulate(cluster)
    st, h = health(modules)
    assert st["started_on"] == []
    assert st["banned_on"] == {other: f"cli-ban-{RSC}-on-{other}"}
    assert set(st["excluded"]) == {"n1", "n2"} and st["fail_counts"][active] >= 1
    assert h["state"] == "failed-everywhere" and not h["ok"]
    assert f"crm_resource --clear --resource {RSC}" in h["fix"]
    assert f"crm_resource --cleanup --resource {RSC}" in h["fix"]


def test_probe_history_of_a_new_node(modules, cluster):
    """A node that joins later: no history (never probed) until its probe runs; a probe that finds the
    agent missing (rc 5) keeps the resource off that node."""
    st = modules.crm.resource_status(RSC)
    assert pcmk_status.needs_probe(st, "n3") and not pcmk_status.needs_probe(st, "n1")
    simulate(cluster, "--node-up", "n3", "--op-fail", f"{RSC}_monitor_0@n3=5")
    st = modules.crm.resource_status(RSC)
    assert st["probes"]["n3"] == 5 and "n3" in st["excluded"]
    assert pcmk_status.needs_probe(st, "n3")
    # (crm_resource --refresh does nothing on a CIB file: the lab's 4th controller proves crm.refresh)


def test_absent_resource(modules, cib):
    st = modules.crm.resource_status("p_none")
    assert not st["exists"] and st["active_on"] == [] and modules.crm.locate("p_none") == []
    assert pcmk_status.health(st, "p_none")["state"] == "absent"


RUNNING = f"""
health:
  crm.resource_running:
    - name: {RSC}
    - timeout: 5
"""


def test_the_running_state_passes_fails_naming_the_fix_or_checks_nothing(modules, cluster):
    ok = apply_sls(modules, RUNNING)["health"]
    assert ok.result is True and ok.changes == {} and "is started on n" in ok.comment
    run("crm_resource", "--resource", RSC, "--meta", "--set-parameter", "target-role", "--parameter-value",
        "Stopped")
    simulate(cluster)
    bad = apply_sls(modules, RUNNING)["health"]
    assert bad.result is False and bad.changes == {}
    assert "target-role=Stopped" in bad.comment
    assert bad.comment.endswith(f"Fix: crm_resource --resource {RSC} --meta --delete-parameter target-role")
    assert apply_sls(modules, RUNNING, test=True)["health"].result is None
    run("crm_attribute", "--type", "crm_config", "--name", "maintenance-mode", "--update", "true")
    window = apply_sls(modules, RUNNING)["health"]
    assert window.result is True and "maintenance-mode" in window.comment and "not checked" in window.comment


def test_a_clone_is_healthy_when_started_wherever_it_can_run(modules, cib):
    """Inside a clone (cluster:mode active-active) the resource runs on every node: started on all
    nodes where it can run is healthy, a node where it could run but has not started yet is not (the
    cluster may still start it), and a node it is banned from (ban on the clone) is only named."""
    cib.crm(f"primitive {RSC} ocf:heartbeat:Dummy op monitor interval=10s\nclone cl_svc {RSC}")
    simulate(cib, "--node-up", "n1", "--node-up", "n2", "--simulate")
    st, h = health(modules)
    assert st["clone"] == "cl_svc" and st["started_on"] == ["n1", "n2"]
    assert h["state"] == "started" and h["ok"] and h["final"]
    assert h["comment"] == f"{RSC} (clone cl_svc) is started on n1, n2"
    assert apply_sls(modules, RUNNING)["health"].result is True

    # n3 comes up; the transition that would start an instance there is not carried out
    run("crm_simulate", "--xml-file", str(cib.path), "--node-up", "n3", "--save-output", str(cib.path))
    st, h = health(modules)
    assert h["state"] == "partial" and not h["ok"] and not h["final"]
    assert h["comment"] == f"{RSC} (clone cl_svc) is started on n1, n2 but not on n3"

    run("crm_resource", "--ban", "--resource", "cl_svc", "--node", "n3", "--force")
    st, h = health(modules)
    assert st["banned_on"] == {"n3": "cli-ban-cl_svc-on-n3"}
    assert h["state"] == "started" and h["ok"]
    assert h["comment"] == f"{RSC} (clone cl_svc) is started on n1, n2 (cannot run on n3: banned (location" \
                           " constraint cli-ban-cl_svc-on-n3))"
