"""Day 0 on the lab: from bare services and controllers to the HA image API in one highstate.

The session's first highstate (conftest's first_apply) is the one from bare: `bare` records what the
lab looked like just before it (no glance database, Keystone after its bootstrap only, Debian's
glance-api started by its init script in every controller). test_lab.py checks the same highstate for
the Pacemaker objects, the one image service with its three endpoints, the image round trip through
both VIPs and the second highstate's zero changes. The last two tests run on the live cluster: a
highstate before a DC is elected, and one on a partitioned minority.
"""

import time

from lab.probes import wait_for
from test.ha.conftest import (
    PIDFILE,
    RESOURCE,
    apply_all,
    glance_pid,
    keystone_get,
    packaged_glance,
    restore,
    start_pacemaker,
)

SCHEMA_STATE = "glance_db_|-glance_ha-db-schema_|-"
DATABASE_STATE = "glance_db_|-glance_ha-db-database_|-"
SHARED_STATES = ("glance_ha-db-schema", "glance_ha-db-database", "glance_ha-keystone-service-user",
                 "glance_ha-keystone-service", "glance_ha-keystone-endpoints")


def states(ret, sid_prefix):
    assert isinstance(ret, dict), f"not a state return (render error?): {str(ret)[:3000]}"
    return [s for key, s in ret.items() if key.startswith(sid_prefix)]


def failures(data):
    return {m: [f"{s['__id__']}: {s['comment']}" for s in r.values() if s["result"] is not True]
            for m, r in data.items() if isinstance(r, dict)} | \
           {m: [str(r)[:2000]] for m, r in data.items() if not isinstance(r, dict)}


def test_the_lab_starts_bare(lab, bare):
    assert "glance" not in bare["databases"], bare["databases"]
    assert bare["users"] == ["admin"], bare["users"]             # keystone-manage bootstrap's only
    assert "service" not in bare["projects"], bare["projects"]
    assert bare["image_services"] == []
    for name, pkg in bare["packaged"].items():
        assert pkg["running"] and pkg["pid"], (name, pkg)
        assert pkg["start_links"], (name, pkg)                    # enabled, as its postinst leaves it
        # :9292 on every address, held by the packaged daemon (its parent and its workers)
        assert [p["addr"] for p in pkg["port"]] == ["0.0.0.0:9292"], (name, pkg)
        holders = pkg["port"][0]["procs"]
        assert {c for c, _ in holders} == {"glance-api"} and pkg["pid"] in {p for _, p in holders}, (name, pkg)


def test_one_highstate_from_bare(lab, first_apply):
    rc, data = first_apply
    assert sorted(data) == [lab.node_name(n) for n in lab.node_range]
    assert failures(data) == {m: [] for m in data}
    assert rc == 0


def test_one_schema_migration_run(lab, first_apply):
    """The schema was migrated by exactly one controller, from nothing to glance 33's head, and the
    database and its account were created by that one writer too."""
    _, data = first_apply
    migrated = {m: s["changes"]["migrations"] for m, r in data.items() for s in states(r, SCHEMA_STATE)
                if "migrations" in s["changes"]}
    assert len(migrated) == 1, {m: states(r, SCHEMA_STATE) for m, r in data.items()}
    (writer, change), = migrated.items()
    assert not change["old"], change                               # from an empty database
    others = [s["comment"] for m, r in data.items() if m != writer for s in states(r, SCHEMA_STATE)]
    assert len(others) == lab.nodes - 1 and all("writer" in c.lower() for c in others), others
    created = [m for m, r in data.items() for s in states(r, DATABASE_STATE) if s["changes"]]
    assert created == [writer], {m: states(r, DATABASE_STATE) for m, r in data.items()}
    head = [row[0] for row in lab.db_sql("SELECT version_num FROM alembic_version", "glance")]
    assert head == change["new"], (head, change)
    # the metadata definitions loaded once (a second load would find them and add nothing, but only
    # the writer ran glance-manage at all)
    assert int(lab.db_sql("SELECT COUNT(*) FROM metadef_namespaces", "glance")[0][0]) > 0
    loaded = [m for m, r in data.items() for s in states(r, SCHEMA_STATE) if "metadefs" in s["changes"]]
    assert loaded == [writer]


def test_one_service_user_with_its_roles(lab, token, first_apply):
    users = keystone_get(lab, token, "/users?name=glance")["users"]
    assert len(users) == 1 and users[0]["domain_id"] == "default" and users[0]["enabled"], users
    projects = keystone_get(lab, token, "/projects?name=service")["projects"]
    assert len(projects) == 1, projects
    got = keystone_get(lab, token, f"/role_assignments?user.id={users[0]['id']}"
                                   f"&scope.project.id={projects[0]['id']}&include_names=true")
    assert sorted(a["role"]["name"] for a in got["role_assignments"]) == ["admin", "service"], got
    # glance-api logs in with it: an authenticated request through the VIP is answered
    r = lab.client_call("request", url=f"{lab.image_url(True)}/v2/images", token=token)
    assert r["status"] == 200, r


def test_one_image_service_three_endpoints(lab, token, first_apply):
    services = keystone_get(lab, token, "/services?type=image")["services"]
    assert [s["name"] for s in services] == ["glance"], services
    eps = keystone_get(lab, token, f"/endpoints?service_id={services[0]['id']}")["endpoints"]
    assert sorted(e["interface"] for e in eps) == ["admin", "internal", "public"], eps


def test_upload_and_download_through_the_public_vip(lab, token, uploaded_image):
    assert uploaded_image["status"] == "active", uploaded_image
    r = lab.client_call("download", url=lab.image_url(public=True), token=token, id=uploaded_image["id"])
    assert r["status"] == 200 and r["sha256"] == uploaded_image["sha256"], r


def test_second_highstate_changes_nothing(lab, second_apply):
    rc, data = second_apply
    changed = {m: [f"{s['__id__']}: {s['changes']}" for s in r.values() if s["changes"] or not s["result"]]
               for m, r in data.items()}
    assert changed == {lab.node_name(n): [] for n in lab.node_range}
    assert rc == 0


def test_packaged_daemon_stopped_disabled_port_held_by_pacemaker(lab, first_apply, bare):
    """After the highstate Debian's glance-api runs nowhere and starts at no boot (no S link); :9292 is
    held only on the node that runs p_glance-api, by the process the agent started."""
    lab.wait_settled(120)
    (active,) = lab.locate(RESOURCE)
    for n in lab.node_range:
        name = lab.node_name(n)
        pkg = packaged_glance(lab, n)
        assert not pkg["running"] and not pkg["start_links"], (name, pkg)
        old = bare["packaged"][name]["pid"]
        assert lab.exec(n, ["kill", "-0", str(old)], check=False).returncode != 0, (name, old)
        if name != active:
            assert pkg["port"] == [], (name, pkg)
            continue
        pid = glance_pid(lab, n)
        assert pid, f"no {PIDFILE} on {name}"
        assert len(pkg["port"]) == 1 and pid in {p for _, p in pkg["port"][0]["procs"]}, (name, pid, pkg)


def _dc(lab, n):
    """The DC controller n knows of, or None (none elected yet: no answer, or '<null>')."""
    out = lab.exec(n, ["crmadmin", "-D", "-t", "2000"], check=False).stdout
    name = out.split()[-1] if "Designated Controller is:" in out else None
    return name if name and name.startswith("ctl") else None


def test_highstate_before_a_dc_is_elected_waits_then_succeeds(lab, baseline):
    """Pacemaker restarted on every controller with dc-deadtime 20s: the highstate published at once
    finds no DC, waits for the election (bounded: crm.writer_status) and then succeeds; one writer."""
    first = lab.node_range[0]
    lab.exec(first, ["crm_attribute", "--type", "crm_config", "--name", "dc-deadtime", "--update", "20s"])
    try:
        for n in lab.node_range:
            lab.exec(n, ["pacemakerd", "--shutdown"], timeout=120)
        for n in lab.node_range:   # a pacemakerd started before the old one exited would quit at once
            wait_for(f"pacemakerd gone on {lab.node_name(n)}",
                     lambda n=n: lab.exec(n, ["pgrep", "-x", "pacemakerd"], check=False).returncode != 0, 90)
        for n in lab.node_range:
            start_pacemaker(lab, n)
        wait_for("the CIB answers on every controller", lambda: all(
            lab.exec(n, ["cibadmin", "--query", "--scope", "crm_config"], check=False).returncode == 0
            for n in lab.node_range), 60, 0.3)
        no_dc_at_start = [lab.node_name(n) for n in lab.node_range if _dc(lab, n) is None]
        t = time.monotonic()
        rc, data = apply_all(lab)
        seconds = time.monotonic() - t
        assert no_dc_at_start == [lab.node_name(n) for n in lab.node_range], no_dc_at_start
        assert failures(data) == {lab.node_name(n): [] for n in lab.node_range}, seconds
        assert rc == 0
        writers = [m for m, r in data.items() for s in states(r, SCHEMA_STATE)
                   if "not the writer" not in s["comment"].lower()]
        assert len(writers) == 1, {m: states(r, SCHEMA_STATE) for m, r in data.items()}
    finally:
        lab.exec(lab.live_nodes()[0], ["crm_attribute", "--type", "crm_config", "--name", "dc-deadtime",
                                       "--update", "2s"], check=False)
        restore(lab)


def test_partitioned_minority_writes_nothing(lab, baseline):
    """A controller cut off from the other two (corosync cannot reach them; the Salt master still
    can) is its partition's DC without quorum: its highstate writes no shared state and says why."""
    n = next(x for x in baseline.others() if lab.node_name(x) != baseline.dc)
    name = lab.node_name(n)
    peers = [lab.node_addr(x) for x in lab.node_range if x != n]
    try:
        for addr in peers:
            lab.exec(n, ["ip", "route", "add", "blackhole", f"{addr}/32"])
        wait_for(f"{name} without quorum", lambda: lab.exec(n, ["crm_node", "-q"], check=False).stdout.strip() == "0",
                 60, 0.5)
        wait_for(f"{name} its own DC", lambda: _dc(lab, n) == name, 60, 0.5)
        rc, data = lab.salt(name, "state.apply", "glance_ha", timeout=600)
        ret = data[name]
        assert isinstance(ret, dict), ret
        changed = [f"{s['__id__']}: {s['changes']}" for s in ret.values() if s["changes"]]
        assert changed == []
        shared = {s["__id__"]: s["comment"] for s in ret.values() if s["__id__"] in SHARED_STATES}
        assert set(shared) == set(SHARED_STATES), sorted(shared)
        assert all("without quorum" in c for c in shared.values()), shared
        assert all(s["result"] is True for s in ret.values() if s["__id__"] in SHARED_STATES), shared
        assert failures(data) == {name: []} and rc == 0
    finally:
        for addr in peers:
            lab.exec(n, ["ip", "route", "del", "blackhole", f"{addr}/32"], check=False)
        restore(lab)
