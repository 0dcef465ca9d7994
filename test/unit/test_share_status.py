"""glance_ha.share_status's mount check: which mount points /proc/self/mountinfo really shows."""

import pytest

from test.modload import load

# a controller: the root, /var from the sandbox with a share below it, then the node's own /var overlay
# on top of it (hiding that share) and the node's bind mount of the real share; a path with a blank
MOUNTINFO = """\
20 1 0:1 / / rw - ext4 /dev/root rw
30 20 0:30 / /var rw - overlay overlay rw
31 30 0:31 / /var/lib/glance/images rw - tmpfs glance-share rw
40 30 0:40 / /var rw - overlay overlay rw
41 40 0:41 /images /var/lib/glance/images rw - ext4 /dev/root rw
50 20 0:50 / /srv/my\\040share rw - nfs4 nfs:/x rw
60 20 0:60 / /srv/stacked rw - tmpfs a rw
61 60 0:61 / /srv/stacked rw - tmpfs b rw
"""


@pytest.fixture(scope="module")
def mod():
    return load("_modules/glance_ha.py", __grains__={"os_family": "Debian"}, __salt__={})


@pytest.mark.parametrize("path, mounted", [
    ("/", True), ("/var", True), ("/var/lib/glance/images", True), ("/var/lib/glance", False),
    ("/srv/my share", True), ("/srv/stacked", True), ("/srv", False),
])
def test_visible_mount_points(mod, path, mounted):
    assert mod._is_mount_point(MOUNTINFO, path) is mounted


def test_a_share_below_a_later_mount_is_hidden(mod):
    # the node's bind mount (41) gone: only the sandbox's share (31), hidden by the node's /var (40), is left
    text = "\n".join(line for line in MOUNTINFO.splitlines() if not line.startswith("41 "))
    assert mod._is_mount_point(text, "/var/lib/glance/images") is False
