"""glance_ha.cluster rendered from pillar and applied through the Salt loader against a CIB file."""

import copy
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.usefixtures("glance_agent")

CLUSTER = "glance_ha-cluster"
OBJECTS = ("p_ip_glance-api", "p_ip_glance-api-public", "p_glance-api",
           "col_p_glance-api_with_p_ip_glance-api", "ord_p_ip_glance-api_before_p_glance-api",
           "ord_p_glance-api_stops_before_p_ip_glance-api",
           "col_p_ip_glance-api-public_with_p_ip_glance-api", "ord_p_ip_glance-api-public_before_p_glance-api",
           "ord_p_glance-api_stops_before_p_ip_glance-api-public")


@pytest.fixture
def pillar(example_pillar):
    data = copy.deepcopy(example_pillar)
    data["glance_ha"]["vip"].update({"internal": "198.51.100.10", "public": "198.51.100.11/25", "nic": "eth0"})
    # No package installs or service stops in these tests: they are about the Pacemaker objects.
    data["glance_ha"]["lookup"] = {"pkgs": [], "service": ""}
    return data


def apply(modules, pillar, test=False):
    ret = modules.state.sls("glance_ha.cluster", pillar=pillar, test=test)
    results = {r.id: r for r in ret}
    assert not [r for r in results.values() if r.result is False], {
        s: r.comment for s, r in results.items() if r.result is False}
    return results


def crm_changes(results):
    return {s: r.changes for s, r in results.items() if s.startswith("glance_ha-cluster") and r.changes}


def test_cluster_sls_alone_in_test_mode_shows_everything_and_writes_nothing(modules, cib, pillar):
    before = cib.xml()
    results = apply(modules, pillar, test=True)
    assert results[CLUSTER].result is None, results[CLUSTER].comment
    assert results[CLUSTER].changes["p_glance-api"]["new"]["params"] == {
        "config": "/etc/glance/glance-api.conf", "credentials_file": "/etc/glance/ocf-credentials",
        "monitor_level": "http", "bind_host": "0.0.0.0", "bind_port": "9292", "workers": "2",
        "store_mount": "/var/lib/glance/images", "store_check_timeout": "10"}
    assert "Would write 11 object(s)" in results[CLUSTER].comment  # 9 objects, stickiness, the owner tag
    assert cib.xml() == before


def test_cluster_sls_creates_a_valid_configuration_and_a_rerun_changes_nothing(modules, cib, pillar):
    epoch = cib.epoch
    results = apply(modules, pillar)
    assert list(results[CLUSTER].changes) == [*OBJECTS, "rsc_defaults:rsc-options", "glance_ha"]
    assert cib.epoch == epoch + 1
    assert cib.verify().returncode == 0, cib.verify().stderr
    for obj in OBJECTS:
        assert cib.find(obj) is not None, obj
    params = {p.get("name"): p.get("value") for p in cib.find("p_ip_glance-api-public").iter("nvpair")}
    assert params == {"ip": "198.51.100.11", "cidr_netmask": "25", "nic": "eth0"}
    api = cib.find("p_glance-api")
    assert (api.get("class"), api.get("provider"), api.get("type")) == ("ocf", "openstack", "glance-api")
    monitor = next(op for op in api.iter("op") if op.get("name") == "monitor")
    assert (monitor.get("interval"), monitor.get("timeout")) == ("30s", "30s")
    meta = {p.get("name"): p.get("value") for p in api.find("meta_attributes").iter("nvpair")}
    assert meta == {"migration-threshold": "3", "failure-timeout": "120s"}
    col = cib.find("col_p_glance-api_with_p_ip_glance-api")
    assert (col.get("rsc"), col.get("with-rsc"), col.get("score")) == ("p_glance-api", "p_ip_glance-api", "INFINITY")
    order = cib.find("ord_p_ip_glance-api_before_p_glance-api")
    assert (order.get("first"), order.get("then"), order.get("kind")) == ("p_ip_glance-api", "p_glance-api",
                                                                          "Mandatory")
    assert cib.find("rsc-options-resource-stickiness").get("value") == "100"

    written = cib.xml()
    again = apply(modules, pillar)
    assert crm_changes(again) == {}
    assert "Nothing to write" in again[CLUSTER].comment
    assert cib.xml() == written


def test_cluster_sls_follows_pillar_changes_in_one_write(modules, cib, pillar):
    apply(modules, pillar)
    op_ids = [op.get("id") for op in cib.find("p_glance-api").iter("op")]
    epoch = cib.epoch
    changed = copy.deepcopy(pillar)
    cl = changed["glance_ha"]["cluster"]
    cl["monitor"] = {"interval": "20s", "timeout": "40s"}
    cl["meta"] = {"migration-threshold": 5, "failure-timeout": "120s"}
    cl["monitor_level"] = "process"
    changed["glance_ha"]["vip"]["public"] = ""
    results = apply(modules, changed)
    assert results[CLUSTER].changes["p_glance-api"] == {
        "meta": {"migration-threshold": {"old": "3", "new": "5"}},
        # without a public VIP glance listens on the internal one only
        "params": {"monitor_level": {"old": "http", "new": "process"},
                   "bind_host": {"old": "0.0.0.0", "new": "198.51.100.10"}},
        "ops": {"monitor-20s": {"interval": {"old": "30s", "new": "20s"}, "timeout": {"old": "30s", "new": "40s"},
                                "op": {"old": "monitor-30s", "new": "monitor-20s"}}}}
    for obj in ("p_ip_glance-api-public", "col_p_ip_glance-api-public_with_p_ip_glance-api",
                "ord_p_ip_glance-api-public_before_p_glance-api", "ord_p_glance-api_stops_before_p_ip_glance-api-public"):
        assert cib.find(obj) is None, obj
    assert cib.epoch == epoch + 1
    assert [op.get("id") for op in cib.find("p_glance-api").iter("op")] == op_ids
    assert cib.verify().returncode == 0
    assert crm_changes(apply(modules, changed)) == {}


def test_config_change_reaches_the_running_config_state(modules, cib, pillar):
    apply(modules, pillar)
    changed = copy.deepcopy(pillar)
    changed["glance_ha"]["messaging"]["retry"] = 7
    results = apply(modules, changed)
    assert results["glance_ha-config-file"].changes
    running = results["glance_ha-cluster-running-config"]
    # It runs on every run; with CIB_file there is no cluster, so nothing runs anywhere.
    assert running.result is True and "No cluster" in running.comment
    assert "No cluster" in apply(modules, changed)["glance_ha-cluster-running-config"].comment


def test_agent_secrets_are_masked(modules, cib, pillar):
    data = copy.deepcopy(pillar)
    data["glance_ha"]["lookup"]["agent_params"] = {"os_username": "svc-name-77"}
    data["glance_ha"]["cluster"]["secret_params"] = ["os_username"]
    for test in (True, False):
        results = apply(modules, data, test=test)
        text = repr({s: (r.changes, r.comment) for s, r in results.items() if s.startswith("glance_ha-cluster")})
        assert "svc-name-77" not in text
        assert "********" in text
    assert cib.find("p_glance-api-instance_attributes-os_username").get("value") == "svc-name-77"


def test_agent_password_param_is_refused(modules, cib, pillar):
    """Credentials never go into the CIB: the api monitor reads them from the root-only file."""
    data = copy.deepcopy(pillar)
    data["glance_ha"]["lookup"]["agent_params"] = {"os_password": "agent-pw-4242"}
    epoch = cib.epoch
    ret = modules.state.sls("glance_ha.cluster", pillar=data)
    assert ret.failed
    errors = "\n".join(ret.errors if hasattr(ret, "errors") else [str(ret)])
    assert "glance_ha:lookup:agent_params:os_password" in errors and "agent-pw-4242" not in errors
    assert cib.epoch == epoch


def test_cluster_manage_false_renders_no_pacemaker_state(modules, pillar):
    data = copy.deepcopy(pillar)
    data["glance_ha"]["cluster"]["manage"] = False
    def crm_states(pillar_data):
        shown = modules.state.show_sls("glance_ha.cluster", pillar=pillar_data)
        assert isinstance(shown, dict), shown
        return [k for k, v in shown.items() if isinstance(v, dict) and "crm" in v]

    assert CLUSTER in crm_states(pillar)
    assert crm_states(data) == []


def test_cluster_clean_removes_exactly_the_formula_objects_in_one_write(modules, cib, pillar):
    apply(modules, pillar)
    cib.crm("primitive p_site ocf:heartbeat:Dummy op monitor interval=17s\n"
            "location loc_site p_site 50: node9\n"
            "rsc_defaults migration-threshold=4")
    foreign = {i: ET.canonicalize(ET.tostring(cib.find(i), encoding="unicode"), strip_text=True)
               for i in ("p_site", "loc_site")}
    epoch = cib.epoch
    dry = modules.state.sls("glance_ha.cluster.clean", pillar=pillar, test=True)
    # ... and every node would then wait for p_glance-api to be gone before the agent is removed.
    assert {r.id: r.result for r in dry} == {"glance_ha-cluster-clean": None, "glance_ha-cluster-clean-settled": None}
    assert cib.epoch == epoch
    ret = {r.id: r for r in modules.state.sls("glance_ha.cluster.clean", pillar=pillar)}
    clean = ret["glance_ha-cluster-clean"]
    assert clean.result is True, clean.comment
    assert ret["glance_ha-cluster-clean-settled"].result is True
    assert sorted(clean.changes) == sorted([*OBJECTS, "rsc_defaults:resource-stickiness", "glance_ha"])
    assert cib.epoch == epoch + 1  # one write
    for obj in OBJECTS:
        assert cib.find(obj) is None, obj
    assert cib.root().find(".//rsc_defaults//nvpair[@name='resource-stickiness']") is None
    # Not the formula's: untouched.
    assert {i: ET.canonicalize(ET.tostring(cib.find(i), encoding="unicode"), strip_text=True)
            for i in foreign} == foreign
    assert cib.root().find(".//rsc_defaults//nvpair[@name='migration-threshold']").get("value") == "4"
    assert cib.verify().returncode == 0
    again = {r.id: r for r in modules.state.sls("glance_ha.cluster.clean", pillar=pillar)}
    assert again["glance_ha-cluster-clean"].changes == {} and cib.epoch == epoch + 1
    # Applying the formula again gives what the first apply gave.
    apply(modules, pillar)
    for obj in OBJECTS:
        assert cib.find(obj) is not None, obj


def test_cluster_clean_refuses_when_a_foreign_constraint_names_a_formula_resource(modules, cib, pillar):
    apply(modules, pillar)
    cib.crm("location loc_api p_glance-api 50: node9")
    before = cib.xml()
    ret = {r.id: r for r in modules.state.sls("glance_ha.cluster.clean", pillar=pillar)}
    clean = ret["glance_ha-cluster-clean"]
    assert clean.result is False and "loc_api" in clean.comment and "p_glance-api" in clean.comment
    assert cib.xml() == before


def test_a_vip_change_restarts_only_that_vip(modules, cib, pillar):
    """The scheduler's plan (crm_simulate) for a new public VIP address: that VIP restarts, glance-api
    does not; a move stops glance-api before its VIPs."""
    from crm_helpers import run

    apply(modules, pillar)
    run("crm_simulate", "--xml-file", str(cib.path), "--in-place", "--quiet", "--node-up", "n1", "--node-up", "n2")
    changed = copy.deepcopy(pillar)
    changed["glance_ha"]["vip"]["public"] = "198.51.100.12/25"
    assert apply(modules, changed)[CLUSTER].changes["p_ip_glance-api-public"]["params"]["ip"]["new"] == "198.51.100.12"
    plan = run("crm_simulate", "--xml-file", str(cib.path), "--run").stdout
    summary = plan.split("Transition Summary:")[1]
    assert "Restart    p_ip_glance-api-public" in summary and "p_glance-api " not in summary, summary
    graph = cib.path.parent / "graph.xml"
    node = modules.crm.locate("p_glance-api")[0]
    run("crm_standby", "--node", node, "--update", "on")
    run("crm_simulate", "--xml-file", str(cib.path), "--run", "--save-graph", str(graph))
    inputs = {syn.find("action_set")[0].get("operation_key"): [t[0].get("operation_key") for t in syn.iter("trigger")]
              for syn in ET.parse(graph).getroot().findall("synapse")}
    assert "p_glance-api_stop_0" in inputs["p_ip_glance-api_stop_0"]
    assert "p_glance-api_stop_0" in inputs["p_ip_glance-api-public_stop_0"]
