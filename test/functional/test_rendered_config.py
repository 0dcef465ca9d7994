"""The glance-api.conf that glance_ha.config renders works for real: the formula's OCF agent starts glance
33 under gunicorn with it and with the p_glance-api parameters glance_ha.cluster renders (listen address,
port and workers), against the session's MariaDB, Keystone and RabbitMQ, and the image API answers 200 to
a Keystone token through it; an image round-trips with the same checksum."""

import copy
import hashlib
import json
import os
import secrets
import subprocess
import urllib.request
from pathlib import Path

import pytest

from lab.services import free_port
from test.conftest import FORMULA_ROOT

OS_VENV = Path(os.environ.get("GLANCE_HA_OS_VENV", FORMULA_ROOT / ".venv-os"))
AGENT = "/usr/lib/ocf/resource.d/openstack/glance-api"
CONF = "/etc/glance/glance-api.conf"
RSCTMP = "/var/lib/glance/resource-agents"


@pytest.fixture(scope="module")
def glance_pillar(mariadb, keystone, rabbitmq):
    db_password, svc_password = secrets.token_urlsafe(12) + "$/@", secrets.token_urlsafe(12)
    mariadb.create_database("glance_rendered", "glance_rendered", db_password)
    keystone.ensure_service_user("glance", svc_password)
    return {"glance_ha": {
        "vip": {"internal": "127.0.0.1"},
        "api": {"port": free_port(), "workers": 1},
        "database": {"host": mariadb.host, "port": mariadb.port, "name": "glance_rendered",
                     "user": "glance_rendered", "password": db_password},
        "messaging": {"hosts": [rabbitmq.host], "port": rabbitmq.port, "user": rabbitmq.user,
                      "password": rabbitmq.password},
        "keystone": {"auth_url": keystone.auth_url, "region": keystone.region,
                     "admin": {"password": keystone.admin_password},
                     "service_user": {"password": svc_password}},
        "cluster": {"manage": False, "monitor_level": "api"},
        "endpoints": {"manage": False},
        # pip glance 33 keeps its paste pipeline in the venv, not in /etc/glance.
        "config": {"paste_deploy": {"config_file": str(OS_VENV / "etc/glance/glance-api-paste.ini")}},
        "lookup": {"pkgs": [], "agent_params": {"server": "gunicorn",
                                                "server_binary": str(OS_VENV / "bin/gunicorn")}},
    }}


def rendered_params(modules, pillar):
    """The parameters of p_glance-api as glance_ha.cluster renders them (rendered only, not applied)."""
    data = copy.deepcopy(pillar)
    data["glance_ha"]["cluster"]["manage"] = True
    shown = modules.state.show_sls("glance_ha.cluster", pillar=data)
    assert isinstance(shown, dict), shown
    args = shown["glance_ha-cluster"]["crm"]
    objects = next(arg["objects"] for arg in args if isinstance(arg, dict) and "objects" in arg)
    return next(obj["params"] for obj in objects if obj.get("primitive") == "p_glance-api")


def agent(action, **params):
    env = dict(os.environ, OCF_ROOT="/usr/lib/ocf", OCF_RESOURCE_INSTANCE="p_glance-api",
               HA_RSCTMP=RSCTMP,  # the host's /run is not in the sandbox
               **{f"OCF_RESKEY_{k}": str(v) for k, v in params.items()})
    if action == "monitor":
        env["OCF_RESKEY_CRM_meta_interval"] = "30000"
    os.makedirs(RSCTMP, exist_ok=True)
    return subprocess.run([AGENT, action], env=env, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def running_glance(loaders, glance_pillar):
    modules = loaders.modules
    for sls in ("glance_ha.agent", "glance_ha.config"):
        ret = modules.state.sls(sls, pillar=glance_pillar)
        assert not ret.failed, ret  # render errors
        failed = [r for r in ret if r.result is False]
        assert not failed, failed
    sync = subprocess.run([str(OS_VENV / "bin/glance-manage"), "--config-file", CONF, "db_sync"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert sync.returncode == 0, sync.stderr[-2000:]
    params = rendered_params(modules, glance_pillar)
    api = glance_pillar["glance_ha"]["api"]
    # every address: the test minion's own pillar (pillar.example) adds a public VIP
    assert params.pop("bind_host") == "0.0.0.0"
    assert params == {"config": CONF, "server": "gunicorn", "server_binary": str(OS_VENV / "bin/gunicorn"),
                      "monitor_level": "api", "credentials_file": "/etc/glance/ocf-credentials",
                      "bind_port": api["port"], "workers": api["workers"],
                      "store_mount": "/var/lib/glance/images", "store_check_timeout": 10}
    params = rendered_params(modules, glance_pillar)
    text = Path(CONF).read_text()
    assert "bind_host" not in text and "bind_port" not in text and "\nworkers" not in text
    start = agent("start", **params)
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        yield params, glance_pillar
    finally:
        agent("stop", **params)


def http(method, url, token, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"X-Auth-Token": token, **(headers or {})})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.status, resp.read()


def test_rendered_config_serves_images(running_glance, keystone):
    params, pillar = running_glance
    assert agent("monitor", **params).returncode == 0
    base = f"http://127.0.0.1:{pillar['glance_ha']['api']['port']}"
    token = keystone.token("glance", pillar["glance_ha"]["keystone"]["service_user"]["password"])
    status, body = http("GET", f"{base}/v2/images", token)
    assert status == 200 and "images" in json.loads(body)

    payload = os.urandom(256 * 1024)
    status, body = http("POST", f"{base}/v2/images", token,
                        json.dumps({"name": "rendered", "disk_format": "raw", "container_format": "bare"}).encode(),
                        {"Content-Type": "application/json"})
    assert status == 201
    image = json.loads(body)["id"]
    status, _ = http("PUT", f"{base}/v2/images/{image}/file", token, payload,
                     {"Content-Type": "application/octet-stream"})
    assert status == 204
    status, data = http("GET", f"{base}/v2/images/{image}/file", token)
    assert status == 200 and hashlib.sha256(data).hexdigest() == hashlib.sha256(payload).hexdigest()
    assert os.path.exists(f"/var/lib/glance/images/{image}")


def test_glance_output_is_logged(running_glance):
    """The agent's default logfile holds the start line of the running main process and gunicorn's own
    start-up lines; glance's own log goes to glance_ha:log's file."""
    params, _ = running_glance
    pid = Path(RSCTMP, "p_glance-api.pid").read_text().split()[0]
    text = Path("/var/log/glance/glance-api-server.log").read_text()
    assert f"glance-api resource agent: main PID {pid}:" in text
    assert f"Listening at: http://0.0.0.0:{params['bind_port']}" in text[text.index(f"main PID {pid}:"):]
    assert Path("/var/log/glance/glance-api.log").stat().st_size > 0


def test_stopped_glance_is_not_running(running_glance):
    params, _ = running_glance
    assert agent("stop", **params).returncode == 0
    assert agent("monitor", **params).returncode == 7
    assert agent("start", **params).returncode == 0
    assert agent("monitor", **params).returncode == 0
