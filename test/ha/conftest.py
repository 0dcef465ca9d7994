"""One lab (lab/lab.py) per test session: services namespace + three Pacemaker controllers with
salt-minions, the formula applied from the master to all three at once.

Skipped (with the reason) unless root with Pacemaker, Corosync, MariaDB, RabbitMQ and the venvs.
The lab dies with the pytest process (tied=True: every PID 1 of the lab has PDEATHSIG=KILL) and is
torn down at session end; LAB_KEEP_RUN=1 keeps its run dir (logs of every node) for a post-mortem.
"""

import os
import secrets
import shutil
import tempfile

import pytest

from lab.lab import VENV, VENV_OS, Lab, remove_empty_namespaces

RESOURCE = "p_glance-api"


def _skip_reason():
    if os.geteuid() != 0:
        return "the lab needs root (network, mount and pid namespaces)"
    for tool in ("pacemakerd", "corosync", "crm_mon", "cibadmin", "nsenter", "unshare"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            return f"{tool} missing (scripts/bootstrap installs Pacemaker/Corosync)"
    for exe in (VENV / "bin/salt-master", VENV_OS / "bin/gunicorn"):
        if not exe.exists():
            return f"{exe} missing (scripts/bootstrap)"
    from lab.services import missing

    return missing()


@pytest.fixture(scope="session")
def lab():
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    remove_empty_namespaces("t[0-9a-f]{4}")  # left by a session that was killed (its lab died with it)
    run_dir = tempfile.mkdtemp(prefix="glha-", dir="/tmp")  # short: Salt's unix sockets live below it
    the_lab = Lab(prefix="t" + secrets.token_hex(2), run_dir=run_dir, tied=True,
                  log=lambda msg: print(msg, flush=True))
    try:
        the_lab.up()
        yield the_lab
    finally:
        the_lab.down()
        if os.environ.get("LAB_KEEP_RUN") == "1":
            print(f"lab run dir kept: {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)


def apply_all(lab):
    """state.apply glance_ha on every controller at once (one publish from the master)."""
    rc, data = lab.salt("ctl*", "state.apply", "glance_ha", timeout=900)
    return rc, data


@pytest.fixture(scope="session")
def first_apply(lab):
    rc, data = lab.salt("ctl*", "saltutil.sync_all", timeout=300)
    assert rc == 0 and len(data) == lab.nodes, data
    rc, data = apply_all(lab)
    lab.wait_settled(180)
    return rc, data


@pytest.fixture(scope="session")
def second_apply(lab, first_apply):
    return apply_all(lab)


@pytest.fixture(scope="session")
def token(lab, first_apply):
    return lab.admin_token()


@pytest.fixture(scope="session")
def uploaded_image(lab, token):
    """A 4 MiB random image uploaded through the public VIP."""
    img = lab.run_dir / "test-image.raw"
    img.write_bytes(os.urandom(4 << 20))
    return lab.client_call("upload", url=lab.image_url(public=True), token=token, file=str(img),
                           name="ha-test")
