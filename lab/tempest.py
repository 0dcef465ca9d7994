"""tempest, the OpenStack conformance suite, against the lab (`make tempest` -> this).

Runs tempest's image API tests (`^tempest\\.api\\.image\\.`) from the client namespace. tempest finds
the image service through the Keystone catalog (`[image] endpoint_type` public, then internal: the
formula's two VIPs), authenticates with the lab's Keystone admin (read from the run's secrets file
into a 0600 tempest.conf, never printed) and creates its own projects and users per test class.

What it adds to the lab:
- an HTTP server in the services namespace on port 80 (glance's web-download accepts ports 80 and
  443 only) serving a small qcow2 image, so `web-download` imports run inside the lab;
- the exclusion list lab/tempest-exclude.txt (one regex a line, its reason after `#`): excluded
  tests are not run and are counted apart.

    python -m lab.tempest                 # own lab: up, sync_all + glance_ha on 3 controllers, tempest
                                          # through the public then the internal VIP, down
    python -m lab.tempest --attach        # on a lab left by `make demo DEMO_ARGS=--keep` (formula applied)
    python -m lab.tempest --interface public --keep

Each run leaves <run>/tempest/<interface>/ (tempest.conf 0600, tempest.log, output.txt) and prints
one JSON line per interface: {interface, endpoint, ran, passed, skipped, failed, excluded, seconds}.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from glance_ha_files import write_atomic

from lab import REPO, VENV, VENV_OS
from lab.procs import LabError, clean_env, run

VENV_TEMPEST = Path(os.environ.get("LAB_VENV_TEMPEST", REPO / "build/venv-tempest"))
EXCLUDE = REPO / "lab/tempest-exclude.txt"
REGEX = r"^tempest\.api\.image\."
INTERFACES = ("public", "internal")
HTTP_PORT = 80  # glance's [import_filtering_opts] allowed_ports default: 80, 443
QCOW2 = "cirros.qcow2"


def exclusions(path: Path = EXCLUDE) -> list[tuple[str, str]]:
    """[(regex, reason)] of the exclusion file; every entry must give its reason after `#`."""
    out = []
    for num, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        regex, _, reason = line.partition("#")
        if not reason.strip():
            raise LabError(f"{path}:{num}: an exclusion without its reason after '#'")
        out.append((regex.strip(), reason.strip()))
    return out


def tempest_conf(lab, interface: str, workdir: Path) -> str:
    """tempest.conf for one interface (holds the Keystone admin password: written 0600)."""
    http = f"http://{lab.svc_addr}:{HTTP_PORT}/{QCOW2}"
    sections = {
        "DEFAULT": {"log_file": str(workdir / "tempest.log"), "use_stderr": "false"},
        "auth": {"use_dynamic_credentials": "true", "admin_username": "admin",
                 "admin_password": lab.secret["keystone_admin"], "admin_project_name": "admin",
                 "admin_domain_name": "Default", "default_credentials_domain_name": "Default"},
        "identity": {"uri_v3": lab.auth_url, "auth_version": "v3", "region": "RegionOne",
                     "v3_endpoint_type": "public", "disable_ssl_certificate_validation": "true"},
        "identity-feature-enabled": {"api_v2": "false"},
        "service_available": {"glance": "true", "nova": "false", "cinder": "false",
                              "neutron": "false", "swift": "false", "horizon": "false"},
        "image": {"region": "RegionOne", "endpoint_type": interface, "http_image": http,
                  "http_qcow2_image": http, "build_timeout": "120"},
        "image-feature-enabled": {"import_image": "true"},
        "validation": {"run_validation": "false"},
    }
    return "".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in opts.items()) + "\n"
                   for name, opts in sections.items())


class TempestRun:
    """tempest's image API tests against one lab whose formula is applied."""

    def __init__(self, lab, log=print):
        self.lab = lab
        self.log = log
        self.dir = lab.run_dir / "tempest"

    def catalog_endpoints(self) -> dict[str, str]:
        """{interface: url} of the image service in the Keystone catalog; each on its VIP."""
        services = self.lab.image_catalog()
        if len(services) != 1:
            raise LabError(f"expected one image service in the catalog, got {services}")
        urls = {e["interface"]: e["url"] for e in services[0]["endpoints"]}
        want = {"public": self.lab.vip_public, "internal": self.lab.vip_internal}
        for interface, vip in want.items():
            if urlsplit(urls.get(interface, "")).hostname != vip:
                raise LabError(f"catalog {interface} endpoint {urls.get(interface)!r} is not on VIP {vip}")
        return urls

    def http_server(self) -> str:
        """The web-download source: a qcow2 image served from the services namespace (port 80)."""
        root = self.dir / "http"
        url = f"http://{self.lab.svc_addr}:{HTTP_PORT}/{QCOW2}"
        if not (root / QCOW2).exists():
            root.mkdir(parents=True, exist_ok=True)
            run(["qemu-img", "create", "-q", "-f", "qcow2", str(root / QCOW2), "16M"])
        if self.lab.client_call("request", url=url, method="HEAD", request_timeout=3)["status"] == 200:
            return url
        log = self.dir / "http.log"
        # Started in the svc namespace's pid namespace: it ends with the lab like every service there.
        serve = (f"setsid -f {VENV}/bin/python -m http.server {HTTP_PORT} --bind {self.lab.svc_addr} "
                 f"--directory {root} </dev/null >>{log} 2>&1")
        self.lab.svc_exec(["sh", "-c", serve])
        deadline = time.monotonic() + 30
        while self.lab.client_call("request", url=url, method="HEAD", request_timeout=3)["status"] != 200:
            if time.monotonic() > deadline:
                raise LabError(f"web-download source {url} not served:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        return url

    def load_metadefs(self) -> str:
        # TEMPORARY: until the formula loads glance's metadata definitions (glance-manage db
        # load_metadefs) on main, the lab loads them here when none are loaded.
        token = self.lab.admin_token()
        r = self.lab.client_call("request", url=f"{self.lab.image_url(True)}/v2/metadefs/namespaces",
                                 token=token, request_timeout=30)
        if r["status"] == 200 and r.get("body", {}).get("namespaces"):
            return "already loaded"
        conf = self.lab.svc_dir / "glance-manage/glance-api.conf"
        self.lab.svc_exec([str(VENV_OS / "bin/glance-manage"), "--config-file", str(conf), "db",
                           "load_metadefs", "--path", str(VENV_OS / "etc/glance/metadefs")],
                          env={"OS_GLANCE_CONFIG_DIR": str(conf.parent)}, timeout=300)
        return "loaded (temporary lab step)"

    def prepare(self) -> dict:
        self.dir.mkdir(mode=0o700, exist_ok=True)
        return {"endpoints": self.catalog_endpoints(), "web_download": self.http_server(),
                "metadefs": self.load_metadefs()}

    def run(self, interface: str, concurrency: int = 2, timeout: float = 1800) -> dict:
        """tempest run on one interface; returns the counts (see parse())."""
        workdir = self.dir / interface
        if workdir.exists():
            shutil.rmtree(workdir)
        workdir.mkdir(mode=0o700, parents=True)
        conf = workdir / "tempest.conf"
        write_atomic(conf, tempest_conf(self.lab, interface, workdir))
        excluded = exclusions()
        cmd = [str(VENV_TEMPEST / "bin/tempest"), "run", "--config-file", str(conf), "--regex", REGEX,
               "--exclude-list", str(EXCLUDE), "--concurrency", str(concurrency)]
        t = time.monotonic()
        # tempest writes .stestr.conf and .stestr/ in its working directory
        proc = run(["ip", "netns", "exec", self.lab.ns("cl"), *cmd], check=False, timeout=timeout,
                   cwd=str(workdir), env=clean_env({"HOME": str(workdir)}))
        out = proc.stdout + proc.stderr
        (workdir / "output.txt").write_text(out)
        result = parse(out)
        result.update(interface=interface, rc=proc.returncode, seconds=round(time.monotonic() - t, 1),
                      excluded=[{"regex": r, "reason": why} for r, why in excluded],
                      output=str(workdir / "output.txt"))
        return result


def parse(out: str) -> dict:
    """Counts from tempest's (subunit-trace's) closing 'Totals', the failed tests and the skip
    reasons: {ran, passed, skipped, failed, failures: [test], skips: {reason: n}}."""
    def total(label):
        m = re.search(rf"^\s*-?\s*{label}: (\d+)", out, re.MULTILINE)
        return int(m.group(1)) if m else None

    m = re.search(r"^Ran: (\d+) tests", out, re.MULTILINE)
    failures = sorted(set(re.findall(r"^\{\d+\} (\S+?)(?: \[[^]]*\])? \.\.\. FAILED", out, re.MULTILINE)))
    skips: dict[str, int] = {}
    for reason in re.findall(r"\.\.\. SKIPPED: (.*)$", out, re.MULTILINE):
        skips[reason.strip()] = skips.get(reason.strip(), 0) + 1
    return {"ran": int(m.group(1)) if m else None, "passed": total("Passed"), "skipped": total("Skipped"),
            "failed": total("Failed"), "failures": failures, "skips": skips}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lab.tempest", description=__doc__.split("\n\n")[0])
    ap.add_argument("--attach", action="store_true", help="use the lab that is up (formula applied)")
    ap.add_argument("--keep", action="store_true", help="leave the lab running at the end")
    ap.add_argument("--prefix", help="namespace prefix (default gl, env LAB_PREFIX)")
    ap.add_argument("--interface", choices=INTERFACES, action="append",
                    help="endpoint interface (repeatable; default: public then internal)")
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("lab.tempest: run as root (network, mount and pid namespaces)", file=sys.stderr)
        return 1
    if not (VENV_TEMPEST / "bin/tempest").exists():
        print(f"lab.tempest: {VENV_TEMPEST}/bin/tempest missing (scripts/bootstrap)", file=sys.stderr)
        return 1
    from lab.lab import Lab

    log = lambda msg: print(f"    {msg}", flush=True)
    lab = Lab.attach(prefix=args.prefix, log=log) if args.attach else Lab(prefix=args.prefix, log=log)
    ok = False
    t0 = time.monotonic()
    try:
        if not args.attach:
            print("==> lab up", flush=True)
            lab.up()
            print("==> saltutil.sync_all, state.apply glance_ha on every controller", flush=True)
            lab.salt("ctl*", "saltutil.sync_all", timeout=300, check=True)
            lab.salt("ctl*", "state.apply", "glance_ha", timeout=900, check=True)
            lab.wait_settled(180)
        tr = TempestRun(lab)
        prep = tr.prepare()
        print(f"==> image endpoints from the catalog: {prep['endpoints']}; web-download source "
              f"{prep['web_download']}; metadefs {prep['metadefs']}", flush=True)
        results = []
        for interface in args.interface or INTERFACES:
            print(f"==> tempest {REGEX} through the {interface} endpoint {prep['endpoints'][interface]}",
                  flush=True)
            r = tr.run(interface, concurrency=args.concurrency)
            r["endpoint"] = prep["endpoints"][interface]
            results.append(r)
            print(f"    ran {r['ran']}, passed {r['passed']}, skipped {r['skipped']}, failed {r['failed']}, "
                  f"excluded {len(r['excluded'])} ({r['seconds']} s; output {r['output']})", flush=True)
            for f in r["failures"]:
                print(f"    FAILED {f}")
            for reason, n in sorted(r["skips"].items()):
                print(f"    skipped {n}: {reason}")
            for e in r["excluded"]:
                print(f"    excluded {e['regex']}: {e['reason']}")
        for r in results:
            print(json.dumps({k: r[k] for k in ("interface", "endpoint", "ran", "passed", "skipped",
                                                  "failed", "seconds")} | {"excluded": len(r["excluded"])}))
        ok = all(r["rc"] == 0 and r["failed"] == 0 and r["passed"] for r in results)
    except LabError as exc:
        print(f"lab.tempest: {exc}", file=sys.stderr)
    finally:
        if not (args.keep or args.attach):
            lab.down()
    print(f"lab.tempest: {'OK' if ok else 'FAILED'} in {time.monotonic() - t0:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
