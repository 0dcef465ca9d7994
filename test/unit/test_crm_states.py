"""Pure helpers of _states/crm.py: the change summary and how a state finds the run's commit."""

import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("crm_states_under_test", ROOT / "_states" / "crm.py")
states = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(states)


def test_summary_lists_every_changed_leaf():
    changes = {"params": {"ip": {"old": "1", "new": "2"}, "os_password": {"old": "******", "new": "******"}},
               "ops": {"monitor-10s": {"timeout": {"old": "20s", "new": "30s"}}}}
    assert states._summary(changes) == ["params.ip: '1' -> '2'", "params.os_password: '******' -> '******'",
                                        "ops.monitor-10s.timeout: '20s' -> '30s'"]
    created = states._summary({"old": None, "new": {"type": "primitive", "id": "p", "agent": "ocf:x:y"}})
    assert created == ['new: {"agent": "ocf:x:y"}']


def test_pending_commit_is_found_until_it_has_run():
    states.__lowstate__ = [{"state": "crm", "fun": "primitive_present", "__id__": "p"},
                           {"state": "crm", "fun": "commit", "__id__": "crm-commit", "name": "crm-commit"}]
    states.__running__ = {"crm_|-p_|-p_|-primitive_present": {"result": True}}
    assert states._pending_commit() == "crm-commit"
    states.__running__["crm_|-crm-commit_|-crm-commit_|-commit"] = {"result": True}
    assert states._pending_commit() is None
    states.__lowstate__ = [{"state": "crm", "fun": "primitive_present", "__id__": "p"}]
    states.__running__ = {}
    assert states._pending_commit() is None


def test_agent_installed_by_an_earlier_test_mode_state():
    states.__running__ = {
        "file_|-agent_|-/usr/lib/ocf/resource.d/openstack/glance-api_|-managed": {"result": None,
                                                                               "changes": {"newfile": "x"}}}
    assert states._agent_installed_by_run("ocf:openstack:glance-api")
    assert not states._agent_installed_by_run("ocf:heartbeat:IPaddr2")
    states.__running__ = {
        "file_|-agent_|-/usr/lib/ocf/resource.d/openstack/glance-api_|-managed": {"result": True, "changes": {}}}
    assert not states._agent_installed_by_run("ocf:openstack:glance-api")
