"""_utils/pcmk_values.py: Pacemaker's value semantics (pure; no Salt dunders set)."""

import pytest

from test.modload import load

values = load("_utils/pcmk_values.py")


@pytest.mark.parametrize("text,millis", [
    ("30", 30000), ("30s", 30000), ("30sec", 30000), ("500ms", 500), ("1min", 60000), ("1m", 60000),
    ("2h", 7200000), ("PT5M", 300000), ("P1DT1S", 86401000), (45, 45000), ("0", 0), ("10us", 0),
    ("10", 10000), ("P1D", 86400000), ("30S", 30000)])
def test_durations(text, millis):
    assert values.parse_duration_ms(text) == millis


@pytest.mark.parametrize("text", ["30x", "-5s", "-1s", "", "s", "1.5s", "P", "PT", None, True, "ten"])
def test_bad_durations(text):
    assert values.parse_duration_ms(text) is None


@pytest.mark.parametrize("value,canon", [("inf", "INFINITY"), ("+INFINITY", "INFINITY"), ("-inf", "-INFINITY"),
                                         (100, "100"), ("+7", "7"), ("red", None), ({"a": 1}, None)])
def test_scores(value, canon):
    assert values.canon_score(value) == canon


@pytest.mark.parametrize("key,cur,want,same", [
    ("timeout", "30", "30s", True), ("interval", "1min", "60s", True), ("interval", "1min", "30s", False),
    ("score", "inf", "INFINITY", True), ("role", "Master", "Promoted", True), ("role", "Slave", "Promoted", False),
    ("is-managed", "yes", "true", True), ("symmetrical", "0", "false", True),
    ("ip", "198.51.100.1", "198.51.100.01", False), ("config", "true", "yes", False),
    ("failure-timeout", "2min", "120s", True), ("dc-deadtime", "2s", "2000ms", True), ("x", None, None, True),
    ("x", None, "a", False)])
def test_same_value(key, cur, want, same):
    assert values.same_value(key, cur, want) is same


@pytest.mark.parametrize("value,ok", [("p_glance-api", True), ("_x.y-1", True), ("1vip", False), ("a b", False),
                                      ("", False), (None, False), (7, False)])
def test_ids(value, ok):
    assert values.is_id(value) is ok


@pytest.mark.parametrize("agent,parts", [("ocf:heartbeat:IPaddr2", ("ocf", "heartbeat", "IPaddr2")),
                                         ("stonith:fence_xvm", ("stonith", None, "fence_xvm")),
                                         ("systemd:nginx", ("systemd", None, "nginx"))])
def test_split_agent(agent, parts):
    assert values.split_agent(agent) == parts


@pytest.mark.parametrize("agent", ["ocf:heartbeat", "IPaddr2", "ocf::IPaddr2", ":x"])
def test_split_agent_refuses(agent):
    with pytest.raises(ValueError):
        values.split_agent(agent)


def test_errors_are_value_errors():
    # Another copy of the module (Salt's loader vs a sibling import) still catches them as ValueError.
    assert issubclass(values.AgentNotFoundError, ValueError)
    assert issubclass(values.ConcurrentChangeError, values.PcmkError)
