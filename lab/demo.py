"""The demo (`make demo` -> lab/demo -> this): the formula's job, end to end, on one machine.

Brings the lab up (lab.lab.Lab), applies glance_ha from the Salt master to the three controllers at
once, shows the cluster, checks the Keystone endpoints, puts an image through the public VIP with a
Keystone token and reads it back, reads the image notifications from RabbitMQ, crashes the controller
that runs glance-api and shows the service moved and the image still downloads. Every step prints
its duration; a summary table ends the run. The lab is torn down unless --keep is given.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

from lab.lab import Lab, LabError

RESOURCE = "p_glance-api"
IMAGE_MB = 8


def summarize_state(ret) -> dict:
    """{'states', 'changed', 'failed', 'seconds', 'errors'} of one minion's state.apply return."""
    if not isinstance(ret, dict):
        return {"states": 0, "changed": 0, "failed": 1, "seconds": 0.0, "errors": [str(ret)[:2000]]}
    failed = [v for v in ret.values() if v.get("result") is False]
    return {"states": len(ret), "changed": sum(1 for v in ret.values() if v.get("changes")),
            "failed": len(failed), "seconds": sum(float(v.get("duration") or 0) for v in ret.values()) / 1000,
            "errors": [f"{v.get('__id__')}: {v.get('comment')}" for v in failed]}


class Demo:
    def __init__(self, args):
        self.args = args
        self.rows: list[tuple[str, float, str]] = []
        self.lab = Lab(prefix=args.prefix, net=args.net, log=lambda m: print(f"    {m}", flush=True))
        self.facts: dict = {}

    def step(self, title, fn):
        print(f"\n==> {title}", flush=True)
        t = time.monotonic()
        try:
            note = fn() or "ok"
        except Exception as exc:
            secs = time.monotonic() - t
            self.rows.append((title, secs, "FAILED"))
            print(f"    FAILED after {secs:.1f} s: {exc}", flush=True)
            raise
        secs = time.monotonic() - t
        self.rows.append((title, secs, note))
        print(f"    {note} ({secs:.1f} s)", flush=True)
        return note

    # ---- steps ---------------------------------------------------------------------------------
    def lab_up(self):
        lab = self.lab
        lab.up()
        print(f"    services {lab.svc_addr} (MariaDB 3306, RabbitMQ 5672, Keystone 5000, Salt master); "
              f"controllers {', '.join(lab.node_addr(n) for n in lab.node_range)}; client {lab.client_addr}")
        print(f"    VIPs: internal {lab.vip_internal}, public {lab.vip_public}; run dir {lab.run_dir}")
        return "services up, 3 controllers online, minions connected"

    def bare(self):
        """What the first highstate starts from: nothing of glance's in the services, Debian's
        glance-api (started by its init script) on :9292 in every controller."""
        lab = self.lab
        dbs = [row[0] for row in lab.db_sql("SHOW DATABASES")]
        cat = lab.image_catalog()
        print(f"    MariaDB databases: {', '.join(dbs)}; Keystone image services: {len(cat)}")
        for n in lab.node_range:
            print(f"    {lab.node_name(n)} :9292 {self._port(n)}")
        if "glance" in dbs or cat or not all(lab.port_holders(n, 9292) for n in lab.node_range):
            raise LabError("the lab is not bare")
        return "no glance database, no image service; the packaged glance-api listens on every controller"

    def _port(self, n):
        held = self.lab.port_holders(n, 9292)
        return "; ".join(f"{h['addr']} by {', '.join(sorted({c for c, _ in h['procs']}))}" for h in held) or "free"

    def packaged_after(self):
        for n in self.lab.node_range:
            print(f"    {self.lab.node_name(n)} :9292 {self._port(n)}")
        held = [n for n in self.lab.node_range if self.lab.port_holders(n, 9292)]
        if len(held) != 1 or any(c == "glance-api" for h in self.lab.port_holders(held[0], 9292)
                                 for c, _ in h["procs"]):
            raise LabError("the packaged glance-api still holds :9292, or more than one node does")
        return f"the packaged glance-api stopped everywhere; :9292 only on {self.lab.node_name(held[0])}"

    def sync(self):
        rc, data = self.lab.salt("ctl*", "saltutil.sync_all", timeout=300)
        if rc != 0 or len(data) != self.lab.nodes:
            raise LabError(f"sync_all rc {rc}: {data}")
        mods = sorted({m for v in data.values() for m in v.get("modules", []) + v.get("states", [])})
        return f"synced {', '.join(mods) or 'nothing new'}"

    def apply(self, label):
        rc, data = self.lab.salt("ctl*", "state.apply", "glance_ha", timeout=900)
        rows = {m: summarize_state(r) for m, r in sorted(data.items())}
        for m, s in rows.items():
            print(f"    {m}: {s['states']} states, {s['changed']} changed, {s['failed']} failed, "
                  f"{s['seconds']:.1f} s in states")
            for e in s["errors"][:10]:
                print(f"      ! {e[:600]}")
        self.facts[label] = rows
        if rc != 0 or len(rows) != self.lab.nodes or any(s["failed"] for s in rows.values()):
            raise LabError(f"state.apply glance_ha failed (rc {rc})")
        return ", ".join(f"{m} {s['changed']} changed" for m, s in rows.items())

    def settle(self):
        self.lab.wait_settled(180)
        print("\n".join("    " + line for line in self.lab.crm_mon().splitlines()))
        where = self.lab.locate(RESOURCE)
        if len(where) != 1:
            raise LabError(f"{RESOURCE} active on {where}")
        return f"{RESOURCE} started on {where[0]}"

    def endpoints(self):
        self.token = self.lab.admin_token()
        services = self.lab.image_catalog(self.token)
        for svc in services:
            for ep in sorted(svc["endpoints"], key=lambda e: e["interface"]):
                print(f"    image {ep['interface']:8} {ep['url']}  ({ep.get('region_id') or ep.get('region')})")
        if len(services) != 1 or len(services[0]["endpoints"]) != 3:
            raise LabError(f"expected one image service with 3 endpoints, got {services}")
        return "one image service, public/internal/admin endpoints"

    def vips(self):
        out = []
        for public in (True, False):
            url = self.lab.image_url(public)
            r = self.lab.client_call("request", url=url + "/healthcheck")
            v = self.lab.client_call("request", url=url + "/v2/images", token=self.token)
            print(f"    {url}/healthcheck -> {r['status']}   {url}/v2/images (token) -> {v['status']}")
            if r["status"] != 200 or v["status"] != 200:
                raise LabError(f"{url} does not answer")
            out.append(url)
        return "both VIPs answer"

    def upload(self):
        img = self.lab.run_dir / "demo-image.raw"
        with open(img, "wb") as f:
            f.write(os.urandom(IMAGE_MB << 20))
        r = self.lab.client_call("upload", url=self.lab.image_url(True), token=self.token, file=str(img),
                                 name="lab-demo")
        self.image = r
        print(f"    image {r['id']} status {r['status']}, {r['bytes'] >> 20} MiB, sha256 {r['sha256'][:16]}...")
        if r["status"] != "active":
            raise LabError(f"image status {r['status']}")
        return f"{IMAGE_MB} MiB uploaded in {r['seconds']:.1f} s"

    def download(self, label=""):
        r = self.lab.client_call("download", url=self.lab.image_url(True), token=self.token, id=self.image["id"])
        print(f"    HTTP {r['status']}, {r['bytes'] >> 20} MiB, sha256 {str(r['sha256'])[:16]}... "
              f"(uploaded {self.image['sha256'][:16]}...)")
        if r["sha256"] != self.image["sha256"]:
            raise LabError("checksum mismatch")
        return f"sha256 equal{label}"

    def notifications(self):
        r = self.lab.client_call("notifications", amqp_url=self.lab.secret["rabbit_amqp_url"],
                                 wait=15, until="image.activate")
        print(f"    events: {', '.join(r['events'])}")
        if "image.upload" not in r["events"] and "image.activate" not in r["events"]:
            raise LabError("no image.upload/image.activate notification")
        return f"{len(r['events'])} notifications on exchange glance"

    def crash(self):
        lab = self.lab
        where = lab.locate(RESOURCE)[0]
        n = lab.node_number(where)
        print(f"    {RESOURCE} runs on {where}: power-cut (SIGKILL its PID 1, delete its netns)")
        lab.crash(n)
        r = lab.client_call("wait_http", url=lab.image_url(True) + "/v2/images", token=self.token,
                            timeout=120, interval=0.2)
        if r["status"] != 200:
            raise LabError(f"glance did not come back through the VIP (last {r})")
        lab.wait_settled(120)
        now = lab.locate(RESOURCE)
        print("\n".join("    " + line for line in lab.crm_mon().splitlines()))
        self.crashed = n
        if len(now) != 1 or now == [where]:
            raise LabError(f"{RESOURCE} now on {now}")
        return f"{where} -> {now[0]}: API back after {r['seconds']:.1f} s"

    def rejoin(self):
        lab = self.lab
        lab.start(self.crashed)
        lab.wait_settled(120)
        where = lab.locate(RESOURCE)
        if len(lab.glance_nodes()) != 1:
            raise LabError(f"glance runs on {lab.glance_nodes()}")
        return f"{lab.node_name(self.crashed)} back online; {RESOURCE} stays on {where[0]}"

    # ---- run -----------------------------------------------------------------------------------
    def run(self) -> int:
        t0 = time.monotonic()
        boot = os.environ.get("DEMO_BOOTSTRAP_SECONDS")
        if boot:
            self.rows.append(("Install what is missing (scripts/bootstrap)", float(boot), "ok"))
        ok = False
        try:
            self.step("Bring the lab up", self.lab_up)
            self.step("What the first highstate starts from", self.bare)
            self.step("Sync the formula's modules to the minions", self.sync)
            self.step("Apply glance_ha to ctl1, ctl2, ctl3 at once", lambda: self.apply("first"))
            self.step("Cluster state", self.settle)
            self.step("Who holds :9292 now", self.packaged_after)
            self.step("Apply glance_ha again (expect no changes)", lambda: self.apply("second"))
            self.step("Keystone endpoints", self.endpoints)
            self.step("Image API through the VIPs", self.vips)
            self.step("Upload an image through the public VIP", self.upload)
            self.step("Download it and compare sha256", self.download)
            self.step("Image notifications on RabbitMQ", self.notifications)
            self.step("Crash the active controller", self.crash)
            self.step("Download the image again", lambda: self.download(" after failover"))
            self.step("The crashed controller rejoins", self.rejoin)
            second = self.facts.get("second", {})
            if any(s["changed"] for s in second.values()):
                print("\n    note: the second apply reported changes: " +
                      ", ".join(f"{m}: {s['changed']}" for m, s in second.items()))
            ok = True
        except KeyboardInterrupt:
            print("\ninterrupted")
        except Exception:  # noqa: BLE001 -- any failure: show it, then still tear down and summarize
            traceback.print_exc()
        finally:
            if self.args.keep:
                print(f"\n--keep: the lab stays up (python -m lab status / down; prefix {self.lab.prefix})")
            else:
                self.step("Tear down", self.lab.down)
        total = time.monotonic() - t0
        print("\n  step" + " " * 48 + "seconds  result")
        for title, secs, note in self.rows:
            print(f"  {title[:50]:50} {secs:8.1f}  {note}")
        print(f"  {'total (without install)':50} {total:8.1f}  {'OK' if ok else 'FAILED'}")
        return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="lab/demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep", action="store_true", help="leave the lab running at the end")
    ap.add_argument("--prefix", help="namespace prefix (default gl, env LAB_PREFIX)")
    ap.add_argument("--net", help="lab network (default 198.51.100.0/24, env LAB_NET)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("lab/demo: run as root (network, mount and pid namespaces)", file=sys.stderr)
        return 1
    return Demo(args).run()


if __name__ == "__main__":
    sys.exit(main())
