"""The OCF agent's drain (parameters drain_file and drain_delay) with real glance 33 under gunicorn.

glance's own glance-api-paste.ini maps GET /healthcheck, outside authentication, to oslo.middleware's
healthcheck with the disable_by_file backend: while the file named by disable_by_file_path exists it
answers 503 DISABLED BY FILE. Each instance's copy of the paste file names a file in the instance's own
directory instead of /etc/glance/healthcheck_disable. glance, MariaDB and Keystone are test_agent.py's
(its fixtures, imported here); every instance is started and stopped by the agent itself.
"""
# ruff: noqa: F811 - test_agent.py's fixtures, imported below, are the tests' arguments here

import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from test.functional.test_agent import (  # noqa: F401 - fixtures: pytest finds them by name here
    AGENT,
    OCF_ERR_CONFIGURED,
    OCF_ERR_GENERIC,
    OCF_ROOT,
    OCF_SUCCESS,
    SYS_PATH,
    agent_env,
    creds_file,
    databases,
    describe,
    glance_gid,
    gunicorn_runner,
    instances,
    keystone_users,
    read_pid,
    run_agent,
    secrets_for_glance,
    session_members,
    wait_gone,
    workdir,
)

pytestmark = pytest.mark.slow
PASTE_DEFAULT = "disable_by_file_path = /etc/glance/healthcheck_disable"


@pytest.fixture(autouse=True)
def reset_loaders_state():
    """This module uses no Salt loader: override test/functional/conftest.py's autouse fixture."""
    yield


def drained_instance(instances, name, **extra):
    """OCF parameters of a new glance 33 instance at monitor_level healthcheck whose paste file and
    drain_file name <instance dir>/drain/healthcheck_disable; returns (params, that path)."""
    params = instances.new(name, monitor_level="healthcheck", **extra)
    paste = Path(params["config"]).with_name("glance-api-paste.ini")
    drain = Path(params["config"]).parent.parent / "drain" / "healthcheck_disable"
    drain.parent.mkdir()
    os.chmod(drain.parent, 0o755)
    text = paste.read_text()
    assert PASTE_DEFAULT in text                               # glance 33's own paste file
    paste.write_text(text.replace("/etc/glance/healthcheck_disable", str(drain)))
    params["drain_file"] = str(drain)
    return params, drain


def get(url, token=None, timeout=5):
    """(status, body) of a GET; (the error, '') when nothing answered."""
    headers = {"Accept": "text/plain", **({"X-Auth-Token": token} if token else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return repr(exc), ""


def state_file(params):
    return Path(params["pid"].removesuffix(".pid") + ".drain")


def start(params):
    result = run_agent("start", params, timeout=90)
    assert result.returncode == OCF_SUCCESS, describe(result)
    return result


def crash_mid_stop(params, drain):
    """A node that dies while its stop waits drain_delay: the agent and all of glance killed at once."""
    pid = read_pid(params)
    agent = subprocess.Popen([str(AGENT), "stop"], env=agent_env(params, timeout=120),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not drain.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    agent.kill()
    agent.wait()
    for member in session_members(pid):
        os.kill(member, signal.SIGKILL)
    assert wait_gone(pid, 10) == []
    assert drain.exists() and session_members(pid) == []


def test_meta_data_declares_the_drain_reloadable():
    out = subprocess.run([str(AGENT), "meta-data"], env={"PATH": SYS_PATH, "OCF_ROOT": OCF_ROOT},
                         capture_output=True, text=True, check=True).stdout
    params = {p.get("name"): p for p in ET.fromstring(out).iter("parameter")}
    assert params["drain_file"].find("content").get("default") == ""
    assert params["drain_delay"].find("content").get("default") == "0"
    assert params["drain_delay"].find("content").get("type") == "integer"
    assert params["drain_file"].get("reloadable") == params["drain_delay"].get("reloadable") == "1"


def test_stop_drains_for_drain_delay_while_glance_serves(instances, keystone_users):
    """During the stop's drain_delay (2 s) GET /healthcheck answers 503 DISABLED BY FILE while the image
    API still answers an authenticated image list; then glance stops within the op timeout and the
    agent's file and its record are gone."""
    params, drain = drained_instance(instances, "drain", drain_delay=2)
    start(params)
    base = f"http://127.0.0.1:{params['_port']}"
    token = keystone_users.token()
    assert get(f"{base}/healthcheck")[0] == 200
    assert get(f"{base}/v2/images", token)[0] == 200             # the token is cached by glance now
    pid = read_pid(params)
    samples, results = [], []
    stop = threading.Thread(target=lambda: results.append(run_agent("stop", params, timeout=30)))
    began = time.monotonic()
    stop.start()
    while stop.is_alive():
        health = get(f"{base}/healthcheck", timeout=2)
        images = get(f"{base}/v2/images", token, timeout=2)[0]
        samples.append((time.monotonic() - began, health, images))
        time.sleep(0.05)
    stop.join()
    took = time.monotonic() - began
    result = results[0]
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert 2 <= took < 30, took
    drained = [s for s in samples if s[1][0] == 503]
    assert drained, samples
    assert all("DISABLED BY FILE" in body for _t, (_code, body), _img in drained), drained
    # glance kept serving through the drain (the last sample may have met the TERM)
    assert all(img == 200 for _t, _h, img in drained[:-1]) and len(drained) >= 3, drained
    assert drained[-1][0] - drained[0][0] >= 1.5, drained
    # nothing answered 200 on /healthcheck once the drain began
    first = drained[0][0]
    assert not [s for s in samples if s[0] > first and s[1][0] == 200], samples
    assert "draining glance-api: created" in result.stderr, describe(result)
    assert not drain.exists() and not state_file(params).exists()
    assert session_members(pid) == []


def test_an_administrators_file_survives_start_and_stop(instances):
    """A drain file the agent did not create is never removed: glance starts drained (the healthcheck
    monitor counts that as healthy), and the stop leaves it."""
    params, drain = drained_instance(instances, "drain-admin", drain_delay=1)
    drain.write_text("maintenance of this node\n")
    result = start(params)
    assert "glance-api starts drained" in result.stderr, describe(result)
    assert drain.read_text() == "maintenance of this node\n"
    health = get(f"http://127.0.0.1:{params['_port']}/healthcheck")
    assert health[0] == 503 and "DISABLED BY FILE" in health[1]
    assert run_agent("monitor", params, interval=30).returncode == OCF_SUCCESS
    result = run_agent("stop", params)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert "the file stays after the stop" in result.stderr, describe(result)
    assert drain.read_text() == "maintenance of this node\n"
    assert not state_file(params).exists()


def test_a_drain_delay_beyond_the_stop_timeout_is_cut_to_what_is_left(instances):
    """drain_delay 600 with a 20 s stop timeout: the wait leaves 2 x 4 s (a fifth of the timeout each)
    for glance's graceful stop and the KILL, and the stop still succeeds in time."""
    params, drain = drained_instance(instances, "drain-cut", drain_delay=600)
    start(params)
    pid = read_pid(params)
    began = time.monotonic()
    result = run_agent("stop", params, timeout=20)
    took = time.monotonic() - began
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert "drain_delay 600s does not fit the stop timeout (20s" in result.stderr, describe(result)
    assert 10 <= took < 20, took
    assert not drain.exists() and session_members(pid) == []


def test_a_drain_left_by_a_crash_mid_stop_goes_at_the_next_start(instances):
    """The agent's file outlives a node that dies mid-stop. The next start removes it: found through
    the agent's record when drain_file has changed since (here: turned off), and by its own first line
    after a reboot, which empties $HA_RSCTMP (the record gone). Changing the drain's parameters on a
    running instance (reload-agent) restarts nothing."""
    params, drain = drained_instance(instances, "drain-crash", drain_delay=60)
    start(params)
    pid = read_pid(params)
    result = run_agent("reload-agent", dict(params, drain_delay=5, drain_file=str(drain) + ".new"))
    assert result.returncode == OCF_SUCCESS and read_pid(params) == pid, describe(result)
    crash_mid_stop(params, drain)
    assert state_file(params).read_text().strip() == str(drain)
    result = start(dict(params, drain_file=""))
    assert not drain.exists(), describe(result)
    assert get(f"http://127.0.0.1:{params['_port']}/healthcheck")[0] == 200
    crash_mid_stop(params, drain)
    state_file(params).unlink()                                    # the reboot
    result = start(params)
    assert f"removed drain file {drain}" in result.stderr and not drain.exists(), describe(result)
    assert get(f"http://127.0.0.1:{params['_port']}/healthcheck")[0] == 200
    assert run_agent("stop", dict(params, drain_delay=0)).returncode == OCF_SUCCESS


def test_exit_codes_of_the_drain_parameters_by_scope(instances, workdir):
    """A bad drain_delay or a relative drain_file is a bad parameter (OCF_ERR_CONFIGURED; from the
    monitor of a running instance OCF_ERR_GENERIC). A drain_file whose directory is missing on this node
    is this node's problem, and the drain only a courtesy to a balancer: glance starts and stops, with
    warnings, never OCF_ERR_CONFIGURED."""
    params, _drain = drained_instance(instances, "drain-codes")
    for bad in ({"drain_delay": "-1"}, {"drain_delay": "2s"}, {"drain_delay": "x"}, {"drain_file": "drain"},
                {"drain_file": "/etc/glance/"}):
        for action in ("validate-all", "start"):
            result = run_agent(action, dict(params, **bad))
            assert result.returncode == OCF_ERR_CONFIGURED, (bad, describe(result))
    assert not Path(params["pid"]).exists()
    missing = dict(params, drain_file=str(workdir / "no-such-dir" / "healthcheck_disable"))
    result = run_agent("validate-all", missing)
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert "is missing or not writable" in result.stderr, describe(result)
    start(missing)
    result = run_agent("monitor", dict(missing, drain_delay="soon"), interval=30)
    assert result.returncode == OCF_ERR_GENERIC, describe(result)
    result = run_agent("stop", dict(missing, drain_delay=2))
    assert result.returncode == OCF_SUCCESS, describe(result)
    assert "stopping glance-api without a drain" in result.stderr, describe(result)
    assert not (workdir / "no-such-dir").exists()
