"""A counting HTTP/1.1 reverse proxy: Salt (or the openstack CLI) talks to it, it forwards every request
to the real Keystone and records method, path and status. That gives real, server-side counts of the
HTTP requests a run makes (tokens, reads, writes) without touching the client under test. Used by the
keystone_catalog functional tests (test/functional/keystone) and bench/bench_endpoints.py.

    with CountingProxy("http://127.0.0.1:5000") as proxy:   # proxy.url -> http://127.0.0.1:<random>
        ...
        proxy.counts()   # {"token": 1, "read": 2, "write": 0}
        proxy.reset()
"""

import http.client
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host",
       "content-length"}


def classify(method, path):
    if method == "POST" and urllib.parse.urlsplit(path).path.rstrip("/").endswith("/auth/tokens"):
        return "token"
    if method in ("GET", "HEAD"):
        return "read"
    return "write"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        host, port = self.server.upstream
        up = http.client.HTTPConnection(host, port, timeout=120)
        start = time.monotonic()
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
            up.request(self.command, self.path, body=body, headers=headers)
            resp = up.getresponse()
            data = resp.read()
        finally:
            up.close()
        self.server.record(self.command, self.path, resp.status, time.monotonic() - start)
        self.send_response(resp.status)
        for key, value in resp.getheaders():
            if key.lower() not in HOP | {"date", "server"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _forward

    def log_message(self, *args):
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream):
        super().__init__(("127.0.0.1", 0), _Handler)
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream = (parsed.hostname, parsed.port or 80)
        self.requests = []
        self.seconds = []
        self.lock = threading.Lock()

    def record(self, method, path, status, seconds):
        with self.lock:
            self.requests.append((method, path, status))
            self.seconds.append(seconds)


class CountingProxy:
    def __init__(self, upstream):
        self.server = _Server(upstream)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="counting-proxy", daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def requests(self):
        with self.server.lock:
            return list(self.server.requests)

    def reset(self):
        with self.server.lock:
            self.server.requests.clear()
            self.server.seconds.clear()

    @property
    def upstream_seconds(self):
        """Sum of the time Keystone took to answer the recorded requests."""
        with self.server.lock:
            return sum(self.server.seconds)

    def counts(self):
        out = {"token": 0, "read": 0, "write": 0}
        for method, path, _status in self.requests:
            out[classify(method, path)] += 1
        return out
