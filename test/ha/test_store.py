"""Image data across failovers, on the lab (each test on a restored lab, the `baseline` fixture).

The lab's controllers mount the shared image store as a real site does: <run>/images, bind-mounted at
/var/lib/glance/images in every controller (a mount point, owned by glance: what glance_ha.config and the
agent's store guard check). Staging and tasks live on it (<share>/staging, <share>/tasks). The faults are
made inside one controller's own mount namespace only: its share unmounted, replaced by a tmpfs of other
ids, or replaced by a bindfs (FUSE) view of the same directory whose daemon is then SIGSTOPped (a share
that hangs like an NFS server that stopped answering).

  - an image staged on the active controller, which then crashes, imports with glance-direct through the
    VIP on the new node: active, same sha256; the same with a standby in the middle of the import task
  - a controller without its share: glance_ha.config creates nothing on its local disk, the probe refuses
    (crm_mon shows why), glance never starts there; with the share back and a refresh it may again
  - a share that hangs: an image download fails within store:timeout; the monitor notices within its
    interval + store_check_timeout and glance moves, once, to a node whose share answers (per level)
  - a share owned by other ids: refused by glance_ha.config and the agent naming both, nothing chowned
"""

import os
import time

import pytest

from test.ha.conftest import RESOURCE, wait_for
from test.ha.test_faults_cluster import api_back, moved_from

SHARE = "/var/lib/glance/images"
GLANCE_DIRECT = {"method": {"name": "glance-direct"}}


def image(lab, token, image_id):
    r = lab.client_call("request", url=f"{lab.image_url(True)}/v2/images/{image_id}", token=token)
    assert r["status"] == 200, r
    return r["body"]


def image_status(lab, token, image_id, unless=None):
    """The image's status, or None while it is `unless`."""
    status = image(lab, token, image_id)["status"]
    return None if status == unless else status


def wait_image(lab, token, image_id, want="active", timeout=180):
    return wait_for(f"image {image_id} {want}", lambda: image_status(lab, token, image_id) == want or None,
                    timeout, 1)


def import_direct(lab, token, image_id):
    return lab.client_call("request", method="POST", url=f"{lab.image_url(True)}/v2/images/{image_id}/import",
                           token=token, body=GLANCE_DIRECT, request_timeout=60)


def stage(lab, token, name, size):
    path = lab.run_dir / f"{name}.raw"
    path.write_bytes(os.urandom(size))
    try:
        staged = lab.client_call("stage", url=lab.image_url(True), token=token, file=str(path), name=name)
    finally:
        path.unlink()
    assert staged["status"] == "uploading", staged
    # on the share, where every controller finds it
    assert (lab.run_dir / "images" / "staging" / staged["id"]).is_file()
    return staged


def sha_of(lab, token, image_id):
    r = lab.client_call("download", url=lab.image_url(True), token=token, id=image_id)
    assert r["status"] == 200, r
    return r["sha256"]


def crm(lab, *args):
    return lab.exec(lab.live_nodes()[0], list(args), check=False, timeout=60)


def standby(lab, node, on=True):
    crm(lab, "crm_standby", "-N", node, "-v", "on" if on else "off")


def rebind_share(lab, n):
    """Controller n's share as node-init mounts it (whatever is mounted over it now goes)."""
    script = f"umount -l {SHARE} 2>/dev/null; mount --bind {lab.run_dir / 'images'} {SHARE}"
    lab.exec(n, ["sh", "-c", script])


def test_staged_image_imports_after_a_crash(lab, baseline, token):
    staged = stage(lab, token, "staged-crash", 8 << 20)
    lab.crash(baseline.n)
    t0 = time.monotonic()
    api_back(lab, token)
    new = moved_from(lab, baseline.active, baseline.others()[0])
    r = import_direct(lab, token, staged["id"])
    assert r["status"] == 202, r
    wait_image(lab, token, staged["id"])
    print(f"crash -> API back + import active: {time.monotonic() - t0:.1f} s on {new}")
    assert image(lab, token, staged["id"])["os_hash_value"] and sha_of(lab, token, staged["id"]) == staged["sha256"]
    assert not (lab.run_dir / "images" / "staging" / staged["id"]).exists()   # glance removed it


def test_standby_during_an_import_task(lab, baseline, token):
    """The import task runs inside glance on the active node; standby stops that glance while the task
    copies and hashes 256 MiB. Either the task finishes within glance's graceful stop, or a new import
    on the new node takes over the staged data: the image ends active with the staged data."""
    staged = stage(lab, token, "staged-standby", 256 << 20)
    r = import_direct(lab, token, staged["id"])
    assert r["status"] == 202, r
    standby(lab, baseline.active)
    t0 = time.monotonic()
    # a standby is not instant (glance stops gracefully, the import still running): the old node answers
    # until it has stopped, so wait for the move first, then for the API through the VIP on the new node
    new = moved_from(lab, baseline.active, baseline.others()[0])
    api_back(lab, token)
    lab.wait_settled(120)
    status = wait_for("the import to end", lambda: image_status(lab, token, staged["id"], unless="importing"),
                      240, 1)
    print(f"standby during import: image {status} after {time.monotonic() - t0:.1f} s; glance on {new}")
    if status != "active":
        body = image(lab, token, staged["id"])
        print("image after the standby:", {k: v for k, v in body.items() if k.startswith("os_glance") or k == "status"})
        r = import_direct(lab, token, staged["id"])
        assert r["status"] == 202, r
        wait_image(lab, token, staged["id"])
    assert sha_of(lab, token, staged["id"]) == staged["sha256"]


def test_controller_without_its_share(lab, baseline, token, ledger):
    ledger.add("before-unmounted")
    active = baseline.active
    m = baseline.others()[0]
    mname = lab.node_name(m)
    third = lab.node_name(baseline.others()[1])
    lab.exec(m, ["umount", SHARE])
    try:
        # the formula creates nothing on the local disk under the mount point
        _rc, data = lab.salt(mname, "state.apply", "glance_ha.config", timeout=300)
        share_state = next(v for k, v in data[mname].items() if "glance_ha-share" in k)
        assert share_state["result"] is False and f"{SHARE} is not mounted" in share_state["comment"], share_state
        assert lab.exec(m, ["ls", "-A", SHARE]).stdout == ""
        # the probe refuses with its reason (as `crm_resource --force-check` shows it); Pacemaker never
        # starts glance there: it goes to the third node
        probe = lab.exec(m, ["crm_resource", "--force-check", "-r", RESOURCE], check=False)
        print("probe on", mname, probe.returncode, probe.stdout.strip(), probe.stderr.strip())
        assert probe.returncode == 5 and f"is not mounted on {mname}" in probe.stdout + probe.stderr
        crm(lab, "crm_resource", "--refresh", "-r", RESOURCE, "-N", mname)
        lab.wait_settled(120)
        standby(lab, active)
        new = moved_from(lab, active)
        assert new == third
        api_back(lab, token)
        ledger.add("while-unmounted")
        # with m the only node left, glance stays stopped rather than start on its local disk: crm_mon
        # says "Stopped (not installed)"
        standby(lab, third)
        wait_for("glance stopped", lambda: lab.locate(RESOURCE) == [], 120)
        lab.wait_settled(120)
        mon = lab.crm_mon()
        print(mon)
        assert lab.locate(RESOURCE) == [] and mname not in lab.glance_nodes()
        assert "p_glance-api\t(ocf:openstack:glance-api):\t Stopped (not installed)" in mon
        assert lab.exec(m, ["ls", "-A", SHARE]).stdout == ""
        # share back + `crm resource refresh` (the README's step): glance may run on m again
        rebind_share(lab, m)
        t0 = time.monotonic()
        crm(lab, "crm_resource", "--refresh", "-r", RESOURCE)
        wait_for("glance on the remounted node", lambda: lab.locate(RESOURCE) == [mname], 120)
        api_back(lab, token)
        print(f"remount + refresh -> glance on {mname}: {time.monotonic() - t0:.1f} s")
        assert ledger.verify() == []
    finally:
        rebind_share(lab, m)


@pytest.mark.parametrize("level", ["http", "process", "api"])
def test_hung_share(lab, baseline, token, ledger, level):
    ledger.add(f"before-hang-{level}")
    target = ledger.images[-1]["id"]
    if level != "http":
        crm(lab, "crm_resource", "-r", RESOURCE, "-p", "monitor_level", "-v", level)
        lab.wait_settled(120)
        api_back(lab, token)
    active = lab.locate(RESOURCE)[0]
    n = lab.node_number(active)
    fails = {name: lab.failcount(RESOURCE, name) for name in (lab.node_name(i) for i in lab.node_range)}
    # the same share, through a FUSE daemon that can be frozen (this controller only)
    lab.exec(n, ["sh", "-c", f"umount {SHARE} && bindfs -o allow_other {lab.run_dir / 'images'} {SHARE}"])
    pid = lab.exec(n, ["pgrep", "-x", "bindfs"]).stdout.split()[0]
    try:
        assert sha_of(lab, token, target) == ledger.images[-1]["sha256"]      # through bindfs
        lab.exec(n, ["kill", "-STOP", pid])
        t0 = time.monotonic()
        r = lab.client_call("request", url=f"{lab.image_url(True)}/v2/images/{target}/file", token=token,
                            request_timeout=120)
        download = time.monotonic() - t0
        print(f"[{level}] download on the hung share: HTTP {r['status']} after {download:.1f} s")
        assert r["status"] != 200 and download < 10 + 5, r
        new = moved_from(lab, active)
        moved = time.monotonic() - t0
        api_back(lab, token)
        back = time.monotonic() - t0
        lab.wait_settled(120)
        after = {name: lab.failcount(RESOURCE, name) for name in fails}
        print(f"[{level}] glance moved {active} -> {new} after {moved:.1f} s, API back after {back:.1f} s;"
              f" fail counts {fails} -> {after}")
        print(lab.crm_mon())
        assert lab.locate(RESOURCE) == [new] and new != active
        assert ledger.verify() == []
        time.sleep(30)        # no hopping: it stays where it is
        assert lab.locate(RESOURCE) == [new]
    finally:
        lab.exec(n, ["kill", "-CONT", pid], check=False)
        rebind_share(lab, n)
        lab.exec(n, ["kill", pid], check=False)
        if level != "http":
            crm(lab, "crm_resource", "-r", RESOURCE, "-p", "monitor_level", "-v", "http")


def test_foreign_owner_refused_naming_both(lab, baseline):
    m = baseline.others()[0]
    mname = lab.node_name(m)
    uid, gid = (int(x) for x in lab.exec(m, ["sh", "-c", "id -u glance; id -g glance"]).stdout.split())
    script = f"umount {SHARE} && mount -t tmpfs -o size=1m,uid={uid + 1000},gid={gid + 1000} foreign {SHARE}"
    lab.exec(m, ["sh", "-c", script])
    try:
        _rc, data = lab.salt(mname, "state.apply", "glance_ha.config", timeout=300)
        share_state = next(v for k, v in data[mname].items() if "glance_ha-share" in k)
        print(share_state["comment"])
        assert share_state["result"] is False
        assert f"uid:gid {uid + 1000}:{gid + 1000}" in share_state["comment"]
        assert f"is {uid}:{gid} on this node" in share_state["comment"]
        check = lab.exec(m, ["crm_resource", "--validate", "-r", RESOURCE], check=False)
        print(check.stdout, check.stderr)
        assert f"{uid + 1000}:{gid + 1000}" in check.stdout + check.stderr
        owner = lab.exec(m, ["stat", "-c", "%u:%g", SHARE]).stdout.strip()
        assert owner == f"{uid + 1000}:{gid + 1000}"                       # nothing chowned
        assert lab.exec(m, ["ls", "-A", SHARE]).stdout == ""
    finally:
        rebind_share(lab, m)
