"""Faults on the lab (runs after test_lab.py, on the same session lab)."""

RESOURCE = "p_glance-api"


def test_crash_of_the_active_controller_moves_glance(lab, token, uploaded_image):
    before = lab.locate(RESOURCE)
    assert len(before) == 1
    crashed = lab.node_number(before[0])
    lab.crash(crashed)
    back = lab.client_call("wait_http", url=f"{lab.image_url(public=True)}/v2/images", token=token,
                           timeout=120, interval=0.2)
    assert back["status"] == 200, back
    lab.wait_settled(120)
    after = lab.locate(RESOURCE)
    assert len(after) == 1 and after != before
    assert lab.glance_nodes() == after
    assert lab.vip_holders(lab.vip_internal) == after
    r = lab.client_call("download", url=lab.image_url(public=True), token=token, id=uploaded_image["id"])
    assert r["sha256"] == uploaded_image["sha256"]

    # The node comes back; glance stays where it is (stickiness) and still runs exactly once.
    lab.start(crashed)
    lab.wait_settled(120)
    assert lab.locate(RESOURCE) == after
    assert lab.glance_nodes() == after


def test_process_kill_is_recovered_in_place(lab, token):
    where = lab.locate(RESOURCE)
    n = lab.node_number(where[0])
    lab.exec(n, ["pkill", "-KILL", "-f", "glance.wsgi.api"])
    back = lab.client_call("wait_http", url=f"{lab.image_url(public=True)}/v2/images", token=token,
                           timeout=120, interval=0.2)
    assert back["status"] == 200, back
    lab.wait_settled(120)
    assert lab.glance_nodes() == lab.locate(RESOURCE)
    assert len(lab.glance_nodes()) == 1
