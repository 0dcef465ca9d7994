"""What the lab's client does, run inside the client namespace by lab/probes.py (Lab.client_call):

    ip netns exec <pfx>-cl .venv/bin/python -m lab.client   < request.json

The request (JSON on stdin, so passwords and tokens never appear on a command line) is
{"op": ..., ...}; the reply is JSON on stdout. Stdlib + kombu only.

ops:
  token          {auth_url, username, password, project}            -> {token, seconds}
  catalog        {auth_url, token}                                   -> {catalog}
  request        {url, token?, method?, body? (JSON), timeout? | request_timeout?}
                                                                     -> {status, seconds, body?}
  upload         {url (image API root), token, file, name}           -> {id, status, seconds, sha256}
  stage          {url (image API root), token, file, name}           -> {id, status, seconds, sha256}
                 (PUT .../stage: glance-direct's staging, the image is then `uploading`)
  download       {url, token, id, file}                              -> {status, seconds, sha256, bytes}
  create         {url (image API root), token, name}                 -> {id, status, http, seconds}
  verify         {url, token, images: [{id, sha256}, ...]}           -> {results: [{id, status, sha256,
                 ok}, ...]}: download each image and compare its sha256 with the recorded one
  notifications  {amqp_url, queue, wait}                             -> {events: [event_type, ...]}
  wait_http      {url, token?, timeout, interval}                    -> {status, seconds, attempts}
  poll           {url, token?, interval, timeout, stop, ready?, recovered?, duration?, method?}
                 -> {polls: [[start, end, status], ...]}: a request every `interval` s, each in its own
                 thread (a hung one does not delay the next), until the file `stop` exists or
                 `duration` s passed; times are time.monotonic(), the host's clock (no time namespace);
                 the file `ready` is created at the first 200, `recovered` at the first 200 that
                 follows a failed request
"""

import hashlib
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.request

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(method, url, token=None, body=None, headers=None, timeout=30):
    req = urllib.request.Request(url, data=body, method=method)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        resp = OPENER.open(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()
    with resp:
        return resp.status, resp.headers, resp.read()


def token(r):
    t = time.monotonic()
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": r["username"], "domain": {"name": "Default"}, "password": r["password"]}}},
        "scope": {"project": {"name": r["project"], "domain": {"name": "Default"}}}}}
    status, headers, data = _http("POST", r["auth_url"].rstrip("/") + "/auth/tokens",
                                  body=json.dumps(body).encode(),
                                  headers={"Content-Type": "application/json"})
    if status != 201:
        raise SystemExit(f"token: HTTP {status}: {data[:300]!r}")
    return {"token": headers["X-Subject-Token"], "seconds": time.monotonic() - t}


def catalog(r):
    status, _, data = _http("GET", r["auth_url"].rstrip("/") + "/auth/catalog", token=r["token"])
    if status != 200:
        raise SystemExit(f"catalog: HTTP {status}")
    return {"catalog": json.loads(data)["catalog"]}


def request(r):
    t = time.monotonic()
    try:
        body = json.dumps(r["body"]).encode() if "body" in r else None
        status, _, data = _http(r.get("method", "GET"), r["url"], token=r.get("token"), body=body,
                                headers={"Content-Type": "application/json"} if body else None,
                                timeout=r.get("request_timeout", r.get("timeout", 10)))
    except OSError as exc:
        return {"status": 0, "error": str(exc), "seconds": time.monotonic() - t}
    out = {"status": status, "seconds": time.monotonic() - t}
    try:
        out["body"] = json.loads(data)
    except ValueError:
        out["text"] = data[:500].decode(errors="replace")
    return out


def upload(r):
    return _create_and_send(r, "file")


def stage(r):
    """Like upload, but PUT /v2/images/{id}/stage (glance-direct's first step, `glance image-stage`):
    the image stays `uploading` until an import."""
    return _create_and_send(r, "stage")


def _create_and_send(r, where):
    t = time.monotonic()
    base = r["url"].rstrip("/")
    meta = {"name": r["name"], "disk_format": "raw", "container_format": "bare", "visibility": "private"}
    status, _, data = _http("POST", base + "/v2/images", token=r["token"], body=json.dumps(meta).encode(),
                            headers={"Content-Type": "application/json"})
    if status != 201:
        raise SystemExit(f"create image: HTTP {status}: {data[:300]!r}")
    image_id = json.loads(data)["id"]
    with open(r["file"], "rb") as f:
        blob = f.read()
    status, _, data = _http("PUT", f"{base}/v2/images/{image_id}/{where}", token=r["token"], body=blob,
                            headers={"Content-Type": "application/octet-stream"}, timeout=300)
    if status != 204:
        raise SystemExit(f"{where} image data: HTTP {status}: {data[:300]!r}")
    status, _, data = _http("GET", f"{base}/v2/images/{image_id}", token=r["token"])
    return {"id": image_id, "status": json.loads(data).get("status"), "seconds": time.monotonic() - t,
            "sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}


def download(r):
    t = time.monotonic()
    status, _, data = _http("GET", f"{r['url'].rstrip('/')}/v2/images/{r['id']}/file", token=r["token"],
                            timeout=300)
    if r.get("file"):
        with open(r["file"], "wb") as f:
            f.write(data)
    return {"status": status, "seconds": time.monotonic() - t, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest() if status == 200 else None}


def create(r):
    """POST /v2/images only (no data): one image.create notification, nothing else."""
    t = time.monotonic()
    meta = {"name": r["name"], "disk_format": "raw", "container_format": "bare", "visibility": "private"}
    status, _, data = _http("POST", r["url"].rstrip("/") + "/v2/images", token=r["token"],
                            body=json.dumps(meta).encode(), headers={"Content-Type": "application/json"},
                            timeout=r.get("request_timeout", 300))
    body = json.loads(data) if status == 201 else {}
    return {"id": body.get("id"), "status": body.get("status"), "http": status,
            "seconds": time.monotonic() - t}


def verify(r):
    out = []
    for img in r["images"]:
        d = download({"url": r["url"], "token": r["token"], "id": img["id"]})
        out.append({"id": img["id"], "status": d["status"], "sha256": d["sha256"],
                    "ok": d["status"] == 200 and d["sha256"] == img["sha256"]})
    return {"results": out}


def notifications(r):
    """Drain the oslo.messaging notification queue (exchange glance, topic notifications.info)."""
    import kombu

    events = []
    deadline = time.monotonic() + r.get("wait", 10)
    with kombu.Connection(r["amqp_url"], connect_timeout=5) as conn:
        chan = conn.channel()
        while time.monotonic() < deadline:
            try:
                msg = chan.basic_get(r.get("queue", "notifications.info"), no_ack=True)
            except conn.channel_errors:  # the queue does not exist yet: nothing was sent so far
                chan = conn.channel()
                msg = None
            if msg is None:
                if events and r.get("until") and r["until"] in events:
                    break
                time.sleep(0.2)
                continue
            body = json.loads(msg.body)
            if "oslo.message" in body:
                body = json.loads(body["oslo.message"])
            events.append(body.get("event_type"))
    return {"events": events}


def wait_http(r):
    """Poll url until it answers 200 (or timeout): how long a service was unreachable."""
    t = time.monotonic()
    attempts = 0
    last = None
    while time.monotonic() - t < r.get("timeout", 60):
        attempts += 1
        last = request({"url": r["url"], "token": r.get("token"), "timeout": r.get("request_timeout", 2)})
        if last["status"] == 200:
            break
        time.sleep(r.get("interval", 0.2))
    return {"status": last["status"], "seconds": time.monotonic() - t, "attempts": attempts}


def poll(r):
    """Downtime probe: a request every `interval` s whatever the previous ones do (each in a thread)."""
    results, lock, threads = [], threading.Lock(), []
    ready, recovered, failed_at = r.get("ready"), r.get("recovered"), []

    def one(start):
        try:
            res = request({"url": r["url"], "token": r.get("token"), "method": r.get("method", "GET"),
                           "timeout": r.get("timeout", 2)})
        except Exception:  # noqa: BLE001 -- e.g. http.client.BadStatusLine mid-failover: no answer
            res = {"status": 0}
        with lock:
            results.append([start, time.monotonic(), res["status"]])
            if res["status"] != 200:
                failed_at.append(start)
            late = res["status"] == 200 and failed_at and start > min(failed_at)
        if ready and res["status"] == 200 and not os.path.exists(ready):
            open(ready, "w").close()
        if recovered and late and not os.path.exists(recovered):
            open(recovered, "w").close()

    t0 = time.monotonic()
    tick = t0
    while time.monotonic() - t0 < r.get("duration", 600) and not os.path.exists(r["stop"]):
        th = threading.Thread(target=one, args=(time.monotonic(),), daemon=True)
        th.start()
        threads.append(th)
        tick += r.get("interval", 0.1)
        time.sleep(max(0.0, tick - time.monotonic()))
    for th in threads:
        th.join(r.get("timeout", 2) + 5)
    with lock:
        return {"polls": sorted(results)}


def main():
    r = json.load(sys.stdin)
    ops = {f.__name__: f for f in (token, catalog, request, upload, stage, download, notifications, wait_http,
                                  poll, create, verify)}
    json.dump(ops[r["op"]](r), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
