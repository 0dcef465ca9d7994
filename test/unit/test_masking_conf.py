"""Masking of what the config and nova states show: every password of a multi-host transport_url in
the glance-api.conf diff, URL overrides with userinfo (glance_ha:config) in the view and the diff,
and nova.conf's own secrets in the context lines of glance_ha.nova's diff (THE secrets rule,
_utils/glance_ha_secrets.py)."""

import copy

import jinja2
import pytest

from test.conftest import FORMULA_ROOT, deep_merge
from test.modload import load

TEMPLATE = FORMULA_ROOT / "glance_ha" / "templates" / "glance-api.conf.jinja"
MASK = "********"


@pytest.fixture(scope="module")
def mod():
    return load("_modules/glance_ha.py", __grains__={"os_family": "Debian"}, __opts__={}, __salt__={})


@pytest.fixture(scope="module")
def secrets_util():
    return load("_utils/glance_ha_secrets.py")


@pytest.fixture(scope="module")
def rendered(defaults, osfamilymap):
    pure = load("_utils/glance_ha_settings.py")
    template = jinja2.Template(TEMPLATE.read_text())

    def _rendered(pillar):
        cfg = pure.derive(pure.merge(defaults, osfamilymap, copy.deepcopy(pillar), "Debian"))
        return template.render(glance_ha=cfg) + "\n"
    return _rendered


MULTI_HOST = {"messaging": {"hosts": ["10.0.0.11", "10.0.0.12", "2001:db8::13"], "password": "rmq-1st"}}
OVERRIDES = {"config": {
    "database": {"slave_connection": "mysql+pymysql://ro:replica-pw@db2/glance"},
    "oslo_messaging_notifications": {"transport_url": "rabbit://n:notify-pw1@h1:5672,n:notify-pw2@h2:5672/"},
    "DEFAULT": {"public_endpoint": "http://proxy:proxy-pw@images.example.org:9292"}}}
OVERRIDE_SECRETS = ("replica-pw", "notify-pw1", "notify-pw2", "proxy-pw")


@pytest.mark.parametrize("told", [True, False], ids=["secrets-collected", "structural-rule-only"])
def test_conf_diff_masks_every_password_of_every_url(rendered, secrets_util, example_pillar, told):
    """Password rotation on a three-host transport_url and URL overrides: the diff shows the changed
    lines, never a password, whether or not the state knows the values."""
    old_pillar = deep_merge(example_pillar["glance_ha"], {**MULTI_HOST, **OVERRIDES})
    new_pillar = deep_merge(old_pillar, {"messaging": {"password": "rmq-2nd"}, "config": {
        "database": {"slave_connection": "mysql+pymysql://ro:replica-pw2@db2/glance"}}})
    old, new = rendered(old_pillar), rendered(new_pillar)
    assert old.count("rmq-1st") == 3 and new.count("rmq-2nd") == 3
    secrets = (secrets_util.collect(old_pillar) | secrets_util.collect(new_pillar)) if told else ()
    diff = secrets_util.masked_diff(old, new, secrets, path="/etc/glance/glance-api.conf")
    assert "-transport_url = rabbit://openstack:********@10.0.0.11:5672,openstack:********@10.0.0.12:5672," \
           "openstack:********@[2001:db8::13]:5672/" in diff
    assert "+slave_connection = mysql+pymysql://ro:********@db2/glance" in diff
    for secret in ("rmq-1st", "rmq-2nd", "replica-pw", "replica-pw2"):
        assert secret not in diff
    whole = secrets_util.masked_diff("", new, secrets)
    for secret in ("rmq-2nd", *OVERRIDE_SECRETS[1:]):
        assert secret not in whole
    assert "notify-pw" not in whole and "n:********@h1:5672,n:********@h2:5672/" in whole


def test_view_masks_url_overrides(mod, defaults, osfamilymap, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {**MULTI_HOST, **OVERRIDES})
    view = mod.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar))
    text = repr(view)
    for secret in ("rmq-1st", *OVERRIDE_SECRETS):
        assert secret not in text
    assert view["config"]["DEFAULT"]["public_endpoint"] == "http://proxy:********@images.example.org:9292"
    assert view["conf"]["DEFAULT"]["transport_url"].count(MASK) == 3


NOVA = """[DEFAULT]
transport_url = rabbit://nova:nova-rmq-a@10.0.0.11:5672,nova:nova-rmq-b@10.0.0.12:5672/
[database]
connection = mysql+pymysql://nova:nova-db-pw@10.0.0.11/nova
[glance]
api_servers = http://old:9292
[keystone_authtoken]
password = nova-ks-pw
memcache_secret_key = nova-memcache-key
"""
NOVA_SECRETS = ("nova-rmq-a", "nova-rmq-b", "nova-db-pw", "nova-ks-pw", "nova-memcache-key")


@pytest.mark.parametrize("edit", ["set", "append-section", "remove"])
def test_nova_diff_masks_the_operators_secrets(tmp_path, edit):
    """glance_ha.nova edits one option; its diff's context lines are the operator's own nova.conf
    lines, whose secrets the formula was never told: masked by the rule, under test=True and for real."""
    text = NOVA.replace("[glance]\napi_servers = http://old:9292\n", "") if edit == "append-section" else NOVA
    path = tmp_path / "nova.conf"
    for test in (True, False):
        path.write_text(text)
        states = load("_states/glance_ha.py", __opts__={"test": test}, __salt__={}, __pillar__={})
        if edit == "remove":
            ret = states.ini_option_absent(str(path), "glance", "api_servers")
        else:
            ret = states.ini_option_present(str(path), "glance", "api_servers", "http://10.0.0.10:9292")
        assert ret["result"] is (None if test else True), ret
        diff = ret["changes"]["diff"]
        assert "api_servers" in diff
        if edit == "append-section":  # the context line is the operator's secret
            assert " memcache_secret_key = ********\n" in diff, diff
        for secret in NOVA_SECRETS:
            assert secret not in repr(ret), diff
    for secret in NOVA_SECRETS:
        assert secret in path.read_text()  # the operator's lines are untouched
