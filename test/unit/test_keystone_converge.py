"""The rule that makes two writers of the Keystone catalog converge (_utils/glance_ha_keystone.py:
keep_lowest, plan_endpoints(converge=...), converge_endpoints), run against an in-memory catalog with
the semantics of Keystone 30 that the rule depends on (keystone/catalog/core.py and backends/sql.py):
no uniqueness on services or endpoints, a service's endpoints deleted with it in one transaction, an
endpoint for a service that does not exist refused (HTTP 400), a DELETE of a missing object a 404.
Two writers are interleaved request by request, in many random orders, as the two processes of
test/functional/keystone/test_keystone_races.py are by chance; that test shows it on a real Keystone."""

import random
import threading
import types

import pytest

from test.modload import load

kc = load("_utils/glance_ha_keystone.py")

REGION = "RegionOne"
DESIRED = {"public": "http://203.0.113.11:9292", "internal": "http://10.0.0.11:9292",
           "admin": "http://10.0.0.11:9292"}


class KeystoneError(Exception):
    """What keystone_catalog raises for an HTTP error (CommandExecutionError in Salt)."""


class Refused(Exception):
    """The states' refusal of duplicates found before this run wrote anything."""


class Catalog:
    """Services and endpoints of one type and region as Keystone 30 keeps them (see the module doc)."""

    def __init__(self, rng):
        self.rng = rng
        self.services, self.endpoints = {}, {}

    def new_id(self):
        return f"{self.rng.getrandbits(128):032x}"

    def create_service(self):
        svc = {"id": self.new_id(), "name": "glance", "type": "image"}
        self.services[svc["id"]] = svc
        return dict(svc)

    def delete_service(self, service_id):
        if self.services.pop(service_id, None) is None:
            return False
        self.endpoints = {k: e for k, e in self.endpoints.items() if e["service_id"] != service_id}
        return True

    def create_endpoint(self, service_id, iface, url, enabled):
        if service_id not in self.services:
            raise KeystoneError("POST /v3/endpoints: HTTP 400: Could not find endpoint service_id")
        ep = {"id": self.new_id(), "service_id": service_id, "interface": iface, "url": url,
              "region_id": REGION, "enabled": enabled}
        self.endpoints[ep["id"]] = ep
        return dict(ep)

    def update_endpoint(self, endpoint_id, fields):
        if endpoint_id not in self.endpoints:
            raise KeystoneError("PATCH /v3/endpoints: HTTP 404")
        self.endpoints[endpoint_id].update(fields)

    def calls(self, gate=lambda: None):
        """The ``calls`` of converge_endpoints (and of a service_present) on this catalog; ``gate()``
        runs before each request (the interleaving)."""
        def via(fn):
            def call(*args):
                gate()
                return fn(*args)
            return call
        return types.SimpleNamespace(
            error=KeystoneError,
            services=via(lambda: [dict(s) for s in self.services.values()]),
            endpoints=via(lambda sid: [dict(e) for e in self.endpoints.values() if e["service_id"] == sid]),
            create=via(self.create_endpoint), update=via(self.update_endpoint),
            delete=via(lambda eid: self.endpoints.pop(eid, None) is not None),
            create_service=via(self.create_service), delete_service=via(self.delete_service))

    def one_set(self):
        """(one service, {interface: url}) if the catalog holds exactly one of each, else None."""
        if len(self.services) != 1:
            return None
        [sid] = self.services
        eps = list(self.endpoints.values())
        if any(e["service_id"] != sid for e in eps) or len({e["interface"] for e in eps}) != len(eps):
            return None
        return sid, {e["interface"]: e["url"] for e in eps}


def apply_endpoints_sls(calls, rounds=4):
    """What glance_ha.endpoints does in Keystone (service_present, then endpoints_present), written with
    the rule's functions as _states/keystone_catalog.py calls them. Returns (service id, changes)."""
    found = calls.services()
    if len(found) > 1:
        raise Refused(found)
    if found:
        svc = found[0]
    else:
        calls.create_service()
        svc, others = kc.keep_lowest(calls.services())
        for other in others:
            calls.delete_service(other["id"])
    plan = kc.plan_endpoints(calls.endpoints(svc["id"]), DESIRED, svc["id"], REGION)
    if plan["duplicates"]:
        raise Refused(plan["duplicates"])
    done = {}
    svc, _removed = kc.converge_endpoints(calls, svc, plan, DESIRED, REGION, done=done, rounds=rounds)
    return svc["id"], done


class Interleaving:
    """Runs writers in threads, one request at a time, the next request's writer drawn at random."""

    def __init__(self, rng, writers):
        self.rng, self.cond = rng, threading.Condition()
        self.waiting, self.finished, self.turn = set(), set(), None
        self.writers = writers

    def gate(self, who):
        with self.cond:
            self.waiting.add(who)
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.turn == who)
            self.waiting.discard(who)
            self.turn = None

    def run(self, body):
        results, errors = {}, {}

        def one(who):
            try:
                results[who] = body(who, lambda: self.gate(who))
            except Exception as exc:          # noqa: BLE001 - reported by the test
                errors[who] = exc
            finally:
                with self.cond:
                    self.finished.add(who)
                    self.cond.notify_all()

        threads = [threading.Thread(target=one, args=(w,), daemon=True) for w in self.writers]
        for t in threads:
            t.start()
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.turn is None
                                   and self.waiting | self.finished == set(self.writers), timeout=10)
                ready = sorted(self.waiting)
                if not ready:
                    break
                self.turn = self.rng.choice(ready)
                self.cond.notify_all()
        for t in threads:
            t.join(10)
        return results, errors


def test_keep_lowest():
    assert kc.keep_lowest([]) == (None, [])
    kept, others = kc.keep_lowest([{"id": "b"}, {"id": "c"}, {"id": "a"}])
    assert kept == {"id": "a"} and others == [{"id": "b"}, {"id": "c"}]


def test_plan_converges_only_the_interfaces_given():
    def ep(id_, iface):
        return {"id": id_, "interface": iface, "url": DESIRED[iface], "region_id": REGION, "service_id": "s",
                "enabled": True}
    current = [ep("b2", "public"), ep("b1", "public"), ep("c", "internal"), ep("a2", "admin"), ep("a1", "admin")]
    plan = kc.plan_endpoints(current, DESIRED, "s", REGION, converge=("public",))
    assert plan["delete"] == {"public": ["b2"]} and plan["duplicates"] == {"admin": ["a1", "a2"]}
    assert plan["unchanged"] == {"public": "b1", "internal": "c"}
    plan = kc.plan_endpoints(current, DESIRED, "s", REGION, converge=kc.INTERFACES)
    assert plan["delete"] == {"public": ["b2"], "admin": ["a2"]} and not plan["duplicates"]
    assert [(i, a) for i, a, _s in kc.plan_steps(plan)] == [("public", "delete"), ("admin", "delete")]


def test_one_writer_reads_once_more_after_creating():
    cat = Catalog(random.Random(1))
    seen = []
    calls = cat.calls()
    read = calls.endpoints
    calls.endpoints = lambda sid: seen.append(sid) or read(sid)
    sid, done = apply_endpoints_sls(calls)
    assert cat.one_set() == (sid, DESIRED)
    assert seen == [sid, sid]              # the plan's read, then one read after the creates
    assert {i: c["new"]["id"] for i, c in done.items()} == {e["interface"]: e["id"] for e in cat.endpoints.values()}


def test_endpoints_created_twice_lowest_kept():
    """Another writer creates the same three endpoints right after this one's first create."""
    cat = Catalog(random.Random(2))
    svc = cat.create_service()
    calls = cat.calls()
    theirs = []

    def create(sid, iface, url, on, first=calls.create):
        if not theirs:
            theirs.extend(cat.create_endpoint(sid, i, u, True) for i, u in DESIRED.items())
        return first(sid, iface, url, on)
    calls.create = create
    plan = kc.plan_endpoints([], DESIRED, svc["id"], REGION)
    done = {}
    kept, removed = kc.converge_endpoints(calls, svc, plan, DESIRED, REGION, done=done)
    assert kept["id"] == svc["id"] and cat.one_set() == (svc["id"], DESIRED)
    assert len(removed) == 3 and not set(removed) & set(cat.endpoints)
    assert {i: c["new"]["id"] for i, c in done.items()} == {e["interface"]: e["id"] for e in cat.endpoints.values()}


@pytest.mark.parametrize("when", ["before the creates", "after the creates"])
def test_service_deleted_by_the_other_writer_endpoints_follow_the_one_kept(when):
    """This writer's service loses to another one (lower id) that the other writer keeps, deleting
    this one -- with the endpoints Keystone deletes along, or before they could be created."""
    cat = Catalog(random.Random(3))
    mine = cat.create_service()
    lower = dict(mine, id="0" * 32)
    calls = cat.calls()
    state = {"n": 0}

    def create(sid, iface, url, on, first=calls.create):
        state["n"] += 1
        if when == "before the creates" and state["n"] == 2:
            cat.services[lower["id"]] = dict(lower)
            cat.delete_service(mine["id"])
        return first(sid, iface, url, on)

    def endpoints(sid, first=calls.endpoints):
        if when == "after the creates" and state["n"] == 3 and lower["id"] not in cat.services:
            cat.services[lower["id"]] = dict(lower)
            cat.delete_service(mine["id"])
        return first(sid)
    calls.create, calls.endpoints = create, endpoints
    kept, _removed = kc.converge_endpoints(calls, mine, kc.plan_endpoints([], DESIRED, mine["id"], REGION),
                                           DESIRED, REGION, done={})
    assert kept["id"] == lower["id"] and cat.one_set() == (lower["id"], DESIRED)


def test_failed_write_under_a_service_that_stays_is_not_repeated():
    cat = Catalog(random.Random(4))
    svc = cat.create_service()
    calls = cat.calls()
    sent = []

    def create(sid, iface, url, on):
        sent.append(iface)
        raise KeystoneError("POST /v3/endpoints failed after the request may have reached Keystone")
    calls.create = create
    with pytest.raises(KeystoneError, match="may have reached"):
        kc.converge_endpoints(calls, svc, kc.plan_endpoints([], DESIRED, svc["id"], REGION), DESIRED, REGION)
    assert sent == ["public"]


def test_rounds_are_bounded():
    """A catalog that loses every endpoint right after it is created: an error after ``rounds``."""
    cat = Catalog(random.Random(5))
    svc = cat.create_service()
    calls = cat.calls()
    calls.create = lambda sid, iface, url, on: {"id": cat.new_id()}
    with pytest.raises(KeystoneError, match="after 3 rounds"):
        kc.converge_endpoints(calls, svc, kc.plan_endpoints([], DESIRED, svc["id"], REGION), DESIRED, REGION,
                              rounds=3)


@pytest.mark.parametrize("writers", [2, 3])
def test_writers_at_once_in_any_order_leave_one_set(writers):
    """Every writer starts on an empty catalog; after all of them, one service and one endpoint per
    interface under it. Two writers both succeed; of three, one may find the other two's services
    before it wrote anything and refuse them (as the states do), and the catalog still converges."""
    refused = 0
    for seed in range(200):
        rng = random.Random(seed)
        cat = Catalog(rng)
        names = [f"w{n}" for n in range(writers)]
        results, errors = Interleaving(rng, names).run(lambda who, gate, cat=cat: apply_endpoints_sls(cat.calls(gate)))
        assert all(isinstance(e, Refused) for e in errors.values()), (seed, errors)
        assert writers == 3 or not errors, (seed, errors)
        refused += len(errors)
        assert cat.one_set() is not None, (seed, cat.services, cat.endpoints)
        sid, urls = cat.one_set()
        assert urls == DESIRED, seed
        # A writer may finish on a service another one deletes afterwards (it read before that one
        # created the lower id): its report is then of endpoints Keystone deleted with the service.
        assert sid in {r[0] for r in results.values()}, (seed, results, sid)
    print(f"{writers} writers, 200 orders: {refused} refusals")
