"""The OCF agent's store guard (glance_ha/files/glance-api, parameter store_mount) against real mounts.

Each test mounts its shared store for real in the sandbox's private mount namespace: a tmpfs owned by the
glance user stands in for the NFS share, a plain directory for a node where the share is not mounted, a
bindfs (FUSE) mount whose daemon is SIGSTOPped for a share that hangs. The server is a stand-in named
gunicorn (a Python that sleeps): the guard runs before glance would be started, and the process-level
monitor needs only a live process of that name, so no database or Keystone is needed here (glance itself
on a guarded share is test/ha/test_store.py's).
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from test.functional.test_agent import (
    OCF_ERR_GENERIC,
    OCF_ERR_INSTALLED,
    OCF_ERR_PERM,
    OCF_NOT_RUNNING,
    OCF_SUCCESS,
    describe,
    run_agent,
)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounts need root")


@pytest.fixture(autouse=True)
def reset_loaders_state():
    """No Salt loader here: override test/functional/conftest.py's autouse fixture."""
    yield


@pytest.fixture
def glance_ids():
    try:
        pw = pwd.getpwnam("glance")
    except KeyError:
        pytest.skip("no glance user (Debian glance-common)")
    return pw.pw_uid, pw.pw_gid


@pytest.fixture
def work():
    path = Path(tempfile.mkdtemp(prefix="gstore-", dir="/tmp"))
    os.chmod(path, 0o711)
    yield path
    subprocess.run(["umount", "-l", str(path / "share")], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def params(work):
    conf = work / "etc" / "glance-api.conf"
    conf.parent.mkdir()
    conf.write_text("[DEFAULT]\n")
    os.chmod(conf.parent, 0o755)
    os.chmod(conf, 0o644)
    server = work / "bin" / "gunicorn"
    server.parent.mkdir()
    server.write_text("#!/usr/bin/python3\nimport time\ntime.sleep(100000)\n")
    os.chmod(server.parent, 0o755)
    server.chmod(0o755)
    (work / "share").mkdir()
    p = {"config": str(conf), "server": "gunicorn", "server_binary": str(server),
         "monitor_level": "process", "pid": str(work / "glance.pid"), "logfile": str(work / "log" / "server.log"),
         "store_mount": str(work / "share"), "store_check_timeout": "2"}
    yield p
    run_agent("stop", p)


def mount_share(work, uid, gid):
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=8m,mode=0750,uid={uid},gid={gid}", "share-tmpfs",
                    str(work / "share")], check=True)


def reason(result):
    return "".join(line for line in result.stderr.splitlines() if "ocf-exit-reason" in line)


def test_not_mounted_refuses_start_probe_and_validate(params):
    """No share mounted: the directory is local disk. start, a probe and validate-all refuse with
    OCF_ERR_INSTALLED (this node only) naming the mount point; nothing is started."""
    share = params["store_mount"]
    for action, interval in (("validate-all", None), ("start", None), ("monitor", 0)):
        result = run_agent(action, params, interval=interval)
        assert result.returncode == OCF_ERR_INSTALLED, describe(result)
        assert f"image store {share} is not mounted" in reason(result), describe(result)
    assert not Path(params["pid"]).exists()
    assert os.listdir(share) == []


def test_mounted_share_runs_and_monitor_fails_once_it_is_gone(params, work, glance_ids):
    mount_share(work, *glance_ids)
    assert run_agent("monitor", params, interval=0).returncode == OCF_NOT_RUNNING   # probe: mounted, stopped
    start = run_agent("start", params)
    assert start.returncode == OCF_SUCCESS, describe(start)
    assert run_agent("monitor", params, interval=10).returncode == OCF_SUCCESS
    subprocess.run(["umount", "-l", params["store_mount"]], check=True)
    mon = run_agent("monitor", params, interval=10)
    assert mon.returncode == OCF_ERR_INSTALLED, describe(mon)
    assert "is not mounted" in reason(mon)
    assert run_agent("stop", params).returncode == OCF_SUCCESS


def test_foreign_owner_is_refused_naming_both_and_never_chowned(params, work, glance_ids):
    uid, gid = glance_ids
    mount_share(work, uid + 1000, gid + 1000)
    for action in ("validate-all", "start"):
        result = run_agent(action, params)
        assert result.returncode == OCF_ERR_PERM, describe(result)
        assert f"uid:gid {uid + 1000}:{gid + 1000}" in reason(result)
        assert f"glance ({uid}:{gid})" in reason(result)
    st = os.stat(params["store_mount"])
    assert (st.st_uid, st.st_gid) == (uid + 1000, gid + 1000)
    assert not Path(params["pid"]).exists()


def test_hung_share_fails_monitor_and_start_within_the_bound(params, work, glance_ids):
    """bindfs over the glance-owned tmpfs, its daemon stopped: every stat of the share hangs. The monitor
    and a start give up after store_check_timeout (2 s), with OCF_ERR_GENERIC, and leave no waiting
    agent behind; the mount check itself never touches the share."""
    backing = work / "backing"
    backing.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=8m,mode=0750,uid={glance_ids[0]},gid={glance_ids[1]}",
                    "backing-tmpfs", str(backing)], check=True)
    fuse = subprocess.Popen(["bindfs", "-f", "-o", "allow_other", str(backing), params["store_mount"]])
    try:
        deadline = time.monotonic() + 10
        while not os.path.ismount(params["store_mount"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        start = run_agent("start", params)
        assert start.returncode == OCF_SUCCESS, describe(start)
        fuse.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        mon = run_agent("monitor", params, interval=10, timeout=20)
        took = time.monotonic() - t0
        assert mon.returncode == OCF_ERR_GENERIC, describe(mon)
        assert "did not answer a stat within 2s" in reason(mon)
        assert took < 6, took
        stop = run_agent("stop", params)
        assert stop.returncode == OCF_SUCCESS, describe(stop)
        t0 = time.monotonic()
        start = run_agent("start", params)
        assert start.returncode == OCF_ERR_GENERIC, describe(start)
        assert time.monotonic() - t0 < 6
        # a short operation timeout bounds the wait too: at most half of it
        t0 = time.monotonic()
        check = run_agent("validate-all", dict(params, store_check_timeout="30"), timeout=4)
        assert check.returncode == OCF_ERR_GENERIC and "within 2s" in reason(check), describe(check)
        assert time.monotonic() - t0 < 6
    finally:
        fuse.send_signal(signal.SIGCONT)
        subprocess.run(["umount", "-l", params["store_mount"]], capture_output=True, check=False)
        fuse.terminate()
        fuse.wait(timeout=10)
        subprocess.run(["umount", "-l", str(backing)], capture_output=True, check=False)


def test_without_store_mount_nothing_is_checked(params):
    params = dict(params, store_mount="")
    result = run_agent("validate-all", params)
    assert result.returncode == OCF_SUCCESS, describe(result)


def test_a_hidden_mount_is_not_the_share(params, work, glance_ids):
    """/proc/self/mountinfo still lists a mount that a later mount of a parent directory hides (as a
    controller's /var overlay hides what was mounted below /var before it): that is no share."""
    outer = work / "outer"
    share = outer / "share"
    share.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=1m,uid={glance_ids[0]},gid={glance_ids[1]}", "below",
                    str(share)], check=True)
    p = dict(params, store_mount=str(share))
    try:
        assert run_agent("validate-all", p).returncode == OCF_SUCCESS
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "over", str(outer)], check=True)
        share.mkdir()
        result = run_agent("validate-all", p)
        assert result.returncode == OCF_ERR_INSTALLED, describe(result)
        assert str(share) in Path("/proc/self/mountinfo").read_text()     # still listed, but hidden
    finally:
        subprocess.run(["umount", "-l", str(outer)], capture_output=True, check=False)
        subprocess.run(["umount", "-l", str(share)], capture_output=True, check=False)
