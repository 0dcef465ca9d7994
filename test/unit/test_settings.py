"""Pillar merging, validation and derived values: _utils/glance_ha_settings.py (pure) through the
thin _modules/glance_ha.py (validation rules, the masked view); INI editing: _utils/glance_ha_ini.py."""

import copy

import pytest
import yaml
from salt.exceptions import SaltInvocationError

from test.conftest import FORMULA_ROOT, deep_merge
from test.modload import load

SECRETS = ("glance-db-secret", "rabbit-secret", "keystone-admin-secret", "glance-keystone-secret")


def fileserver(url, saltenv=None):
    """cp.get_file_str over the checkout (salt://glance_ha/... -> glance_ha/...)."""
    return (FORMULA_ROOT / url.removeprefix("salt://")).read_text()


@pytest.fixture(scope="module")
def mod():
    return load("_modules/glance_ha.py", __grains__={"os_family": "Debian"}, __opts__={},
                __salt__={"cp.get_file_str": fileserver})


@pytest.fixture(scope="module")
def pure():
    return load("_utils/glance_ha_settings.py")


@pytest.fixture(scope="module")
def secrets_util():
    return load("_utils/glance_ha_secrets.py")


@pytest.fixture(scope="module")
def ini():
    return load("_utils/glance_ha_ini.py")


@pytest.fixture
def settings(mod, pure, defaults, osfamilymap):
    """The settings with their secrets (what the config state renders), after the exec module's
    validation (which raises naming every bad key)."""
    def _settings(pillar, scope="all"):
        mod.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar), scope=scope)
        merged = pure.merge(defaults, osfamilymap, copy.deepcopy(pillar), "Debian")
        return pure.derive(merged, scope)
    return _settings


def errors_of(settings, pillar):
    with pytest.raises(SaltInvocationError) as info:
        settings(pillar)
    return str(info.value)


def test_example_pillar_is_valid(settings, example_pillar):
    cfg = settings(example_pillar["glance_ha"])
    # two VIPs: glance has one bind_host, so it listens on all addresses to answer on both
    assert cfg["api"]["bind_host"] == "0.0.0.0"
    assert cfg["conf"]["database"]["connection"] == (
        "mysql+pymysql://glance:glance-db-secret@10.0.0.11:3306/glance")
    assert cfg["conf"]["DEFAULT"]["transport_url"] == "rabbit://openstack:rabbit-secret@10.0.0.11:5672/"
    assert cfg["conf"]["oslo_messaging_notifications"] == {"driver": "messagingv2", "retry": "0"}
    # bounded waits on hung backends (doc/ha.md)
    assert cfg["conf"]["oslo_messaging_rabbit"] == {"heartbeat_timeout_threshold": "5"}
    assert cfg["conf"]["keystone_authtoken"]["http_connect_timeout"] == "5"
    assert cfg["conf"]["database"]["connection_parameters"].startswith("connect_timeout=5&")
    assert cfg["lookup"]["config_file"] == "/etc/glance/glance-api.conf"
    assert cfg["cluster"]["monitor"] == {"interval": "30s", "timeout": "30s"}


def test_site_override(settings, site_pillar):
    cfg = settings(site_pillar["glance_ha"])
    assert cfg["vip"]["internal"] == "192.168.50.20"
    assert cfg["vip"]["internal_netmask"] == 23
    assert cfg["vip"]["public"] == ""
    assert cfg["api"]["bind_host"] == "192.168.50.20"
    assert cfg["endpoints"] == {"manage": True, "public": "http://images.site.example:9393",
                                "internal": "http://10.0.0.11:9292", "admin": "http://10.0.0.11:9292",
                                "service_name": "glance"}
    conf = cfg["conf"]
    assert cfg["api"]["port"] == 9393 and "bind_port" not in conf["DEFAULT"]
    # ':', '@', '/', '%' would break the URL, so the password is URL-quoted (and '$' with it).
    assert conf["database"]["connection"] == (
        "mysql+pymysql://glance:p%40ss%3Aw%24rd%2Fwith%25chars@db.site.example:3306/glance")
    assert "transport_url" not in conf["DEFAULT"]
    assert conf["oslo_messaging_notifications"]["driver"] == "noop"
    assert conf["DEFAULT"]["image_size_cap"] == "53687091200"
    assert conf["taskflow_executor"] == {"conversion_format": "raw"}
    assert conf["keystone_authtoken"]["region_name"] == "SiteOne"


def test_endpoints_derive_from_vips(settings, example_pillar):
    pillar = copy.deepcopy(example_pillar["glance_ha"])
    del pillar["endpoints"]
    pillar["api"]["port"] = 9999
    cfg = settings(pillar)
    assert cfg["endpoints"]["public"] == "http://203.0.113.11:9999"
    assert cfg["endpoints"]["internal"] == cfg["endpoints"]["admin"] == "http://10.0.0.11:9999"
    pillar["vip"] = {"internal": "2001:db8::11", "cidr_netmask": 64}
    cfg = settings(pillar)
    assert cfg["endpoints"]["public"] == "http://[2001:db8::11]:9999"
    assert cfg["api"]["bind_host"] == "2001:db8::11"
    pillar["vip"]["public"] = "2001:db8::12"
    assert settings(pillar)["api"]["bind_host"] == "::"


@pytest.mark.parametrize("override, key, words", [
    ({"vip": {"internl": "10.0.0.1"}}, "glance_ha:vip:internl", "unknown key"),
    ({"databse": {}}, "glance_ha:databse", "unknown key"),
    ({"cluster": {"monitor": {"intervall": "30s"}}}, "glance_ha:cluster:monitor:intervall", "unknown key"),
    ({"vip": {"internal": "10.0.0.300"}}, "glance_ha:vip:internal", "not an IP address"),
    ({"vip": {"internal": "10.0.0.11/40"}}, "glance_ha:vip:internal", "out of range"),
    ({"vip": {"cidr_netmask": 33}}, "glance_ha:vip:cidr_netmask", "too long"),
    ({"vip": {"cidr_netmask": "255.255.255.0"}}, "glance_ha:vip:cidr_netmask", "not a prefix length"),
    ({"vip": {"nic": "eth0; rm -rf /"}}, "glance_ha:vip:nic", "not a network interface"),
    ({"vip": {"public": "10.0.0.11/16"}}, "glance_ha:vip:public", "different netmask"),
    ({"api": {"port": 70000}}, "glance_ha:api:port", "not a TCP port"),
    ({"api": {"port": "9292"}}, "glance_ha:api:port", "not a TCP port"),
    ({"api": {"workers": 0}}, "glance_ha:api:workers", "worker count"),
    ({"database": {"password": ""}}, "glance_ha:database:password", "is required"),
    ({"database": {"driver": "mysql"}}, "glance_ha:database:driver", "mysql+pymysql"),
    ({"database": {"host": "db host"}}, "glance_ha:database:host", "not a host name"),
    ({"messaging": {"password": None}}, "glance_ha:messaging:password", "is required"),
    ({"messaging": {"driver": "rabbit"}}, "glance_ha:messaging:driver", "messagingv2"),
    ({"messaging": {"hosts": []}}, "glance_ha:messaging:hosts", "is required"),
    ({"messaging": {"retry": -2}}, "glance_ha:messaging:retry", "retry count"),
    ({"keystone": {"auth_url": "http://10.0.0.11:5000/v2.0/"}}, "glance_ha:keystone:auth_url", "v3"),
    ({"keystone": {"auth_url": "10.0.0.11:5000"}}, "glance_ha:keystone:auth_url", "not an http"),
    ({"keystone": {"service_user": {"password": ""}}}, "glance_ha:keystone:service_user:password",
     "is required"),
    ({"keystone": {"admin": {"password": ""}}}, "glance_ha:keystone:admin:password", "is required"),
    ({"cluster": {"monitor": {"interval": "30x"}}}, "glance_ha:cluster:monitor:interval", "interval"),
    ({"cluster": {"monitor": {"timeout": "0"}}}, "glance_ha:cluster:monitor:timeout", "positive"),
    ({"cluster": {"monitor_level": "deep"}}, "glance_ha:cluster:monitor_level", "process, http, healthcheck, api"),
    ({"cluster": {"resource": "p glance"}}, "glance_ha:cluster:resource", "Pacemaker id"),
    ({"cluster": {"mode": "active-standby"}}, "glance_ha:cluster:mode", "active-passive, active-active"),
    ({"cluster": {"mode": None}}, "glance_ha:cluster:mode", "active-passive, active-active"),
    ({"cluster": {"clone": "cl glance"}}, "glance_ha:cluster:clone", "Pacemaker id"),
    ({"cluster": {"clone": "p_glance-api"}}, "glance_ha:cluster:vip_resources", "must differ"),
    ({"cluster": {"drain_file": "healthcheck_disable"}}, "glance_ha:cluster:drain_file", "absolute file path"),
    ({"cluster": {"drain_file": "/etc/glance/"}}, "glance_ha:cluster:drain_file", "absolute file path"),
    ({"cluster": {"drain_delay": -1}}, "glance_ha:cluster:drain_delay", "number of seconds (0-40"),
    ({"cluster": {"drain_delay": "10s"}}, "glance_ha:cluster:drain_delay", "number of seconds"),
    ({"cluster": {"drain_delay": True}}, "glance_ha:cluster:drain_delay", "number of seconds"),
    ({"cluster": {"drain_delay": 41}}, "glance_ha:cluster:drain_delay", "stop timeout"),
    ({"cluster": {"vip_resources": {"internal": "p_glance-api"}}}, "glance_ha:cluster:vip_resources",
     "must differ"),
    ({"cluster": {"meta": {"failure-timeout": "soon"}}}, "glance_ha:cluster:meta:failure-timeout",
     "not an interval"),
    ({"cluster": {"manage": "yes"}}, "glance_ha:cluster:manage", "true or false"),
    ({"cluster": {"meta": {"migrate-timeout": "1 hour"}}}, "glance_ha:cluster:meta:migrate-timeout",
     "not an interval"),
    ({"cluster": {"meta": {"is-managed": "maybe"}}}, "glance_ha:cluster:meta:is-managed", "true or false"),
    ({"cluster": {"agent_source": "https://example.org/glance-api"}}, "glance_ha:cluster:agent_source_hash",
     "required"),
    ({"cluster": {"agent_source": "http://example.org/glance-api"}}, "glance_ha:cluster:agent_source",
     "salt:// or https://"),
    ({"endpoints": {"public": "images.example.org:9292"}}, "glance_ha:endpoints:public", "not an http"),
    ({"endpoints": {"public": "http://x y:9292"}}, "glance_ha:endpoints:public", "not an http"),
    ({"keystone": {"auth_url": "http://10.0.0.11/identity/v1"}}, "glance_ha:keystone:auth_url", "v3"),
    ({"nova": {"config": "nova.conf"}}, "glance_ha:nova:config", "absolute path"),
    ({"keystone": {"service_user": {"roles": []}}}, "glance_ha:keystone:service_user:roles", "non-empty list"),
    ({"keystone": {"service_user": {"roles": "admin"}}}, "glance_ha:keystone:service_user:roles", "list"),
    ({"keystone": {"service_user": {"roles": ["admin", "admin"]}}}, "glance_ha:keystone:service_user:roles",
     "distinct"),
    ({"keystone": {"service_user": {"manage": "no"}}}, "glance_ha:keystone:service_user:manage", "true or false"),
    ({"endpoints": {"service_name": ""}}, "glance_ha:endpoints:service_name", "image service"),
    ({"endpoints": {"service_name": " glance"}}, "glance_ha:endpoints:service_name", "spaces"),
    ({"config": {"DEFAULT": {"sql_connection": "mysql://x"}}}, "glance_ha:config:DEFAULT:sql_connection",
     "[database] connection"),
    ({"config": {"DEFAULT": {"registry_host": "10.0.0.11"}}}, "glance_ha:config:DEFAULT:registry_host",
     "glance-registry"),
    ({"config": {"DEFAULT": "x"}}, "glance_ha:config:DEFAULT", "mapping"),
    ({"config": {"DEFAULT": {"debug": None}}}, "glance_ha:config:DEFAULT:debug", "scalar"),
    ({"config": {"DEFAULT": {"d": {"a": 1}}}}, "glance_ha:config:DEFAULT:d", "scalar"),
    ({"config": {"DEFAULT": {"l": ["a,b", "c"]}}}, "glance_ha:config:DEFAULT:l", "two items"),
    ({"database": {"host": "10.0.0.300"}}, "glance_ha:database:host", "not a host name"),
    ({"messaging": {"hosts": ["10.0.0.999"]}}, "glance_ha:messaging:hosts:0", "not a host name"),
    ({"messaging": {"vhost": 123}}, "glance_ha:messaging:vhost", "vhost"),
    ({"vip": {"internal": "0.0.0.0"}}, "glance_ha:vip:internal", "cannot be a VIP"),
    ({"vip": {"public": "224.0.0.1"}}, "glance_ha:vip:public", "cannot be a VIP"),
    ({"keystone": {"service_user": {"password": "a\nb = c"}}},
     "glance_ha:keystone:service_user:password", "control character"),
    ({"lookup": {"config_fle": "/x"}}, "glance_ha:lookup:config_fle", "unknown key"),
    ({"lookup": {"config_file": "glance-api.conf"}}, "glance_ha:lookup:config_file", "absolute path"),
    ({"lookup": {"agent_params": {"os_password": "x"}}}, "glance_ha:lookup:agent_params:os_password",
     "never go into the CIB"),
    ({"lookup": {"agent_params": {"api_token": "x"}}}, "glance_ha:lookup:agent_params:api_token",
     "never go into the CIB"),
    ({"lookup": {"agent_params": {"sever": "gunicorn"}}}, "glance_ha:lookup:agent_params:sever",
     "not a parameter of the OCF agent glance-api (it has: additional_parameters, binary"),
    ({"api": {"port": 80}}, "glance_ha:api:port", "privileged port"),
    ({"api": {"port": 1023}}, "glance_ha:api:port", "privileged port"),
    ({"endpoints": {"public": "https://images.example.org"}}, "glance_ha:endpoints:public",
     "glance serves plain HTTP"),
    ({"endpoints": {"internal": "https://10.0.0.11:9292"}}, "glance_ha:endpoints:internal", "http://"),
    ({"vip": {"public": "2001:db8::11"}}, "glance_ha:vip:cidr_netmask", "both an IPv4 and an IPv6"),
    ({"vip": {"internal": "2001:db8::11", "public": "", "cidr_netmask": 129}}, "glance_ha:vip:cidr_netmask",
     "not a prefix length"),
    ({"vip": {"public": "2001:db8::11/129"}}, "glance_ha:vip:public", "out of range"),
    ({"store": {"backend": "rbd"}}, "glance_ha:store:rbd:user", "is required with store:backend rbd"),
    ({"store": {"backend": "rbd", "rbd": {"user": "glance", "pool": ""}}}, "glance_ha:store:rbd:pool",
     "is required"),
    ({"store": {"backend": "rbd", "rbd": {"user": "glance", "ceph_conf": "ceph.conf"}}},
     "glance_ha:store:rbd:ceph_conf", "absolute path"),
    ({"store": {"backend": "rbd", "rbd": {"user": "glance", "chunk_size": 6}}},
     "glance_ha:store:rbd:chunk_size", "power of two"),
    ({"store": {"backend": "swift"}}, "glance_ha:store:swift:config_file", "is required"),
    ({"store": {"backend": "swift"}}, "glance_ha:store:swift:reference", "is required"),
    ({"store": {"backend": "s3"}}, "glance_ha:store:s3:secret_key", "is required"),
    ({"store": {"backend": "s3", "s3": {"host": "s3.example"}}}, "glance_ha:store:s3:host", "not an http"),
    ({"store": {"backend": "cinder"}}, "glance_ha:store:cinder:password", "is required"),
    ({"store": {"backend": "http", "http": {"insecure": "no"}}}, "glance_ha:store:http:insecure",
     "true or false"),
    ({"store": {"backend": "rbd", "rbd": {"user": "glance", "keyring": "/x"}}}, "glance_ha:store:rbd:keyring",
     "unknown key"),
    ({"store": {"backend": "nfs"}}, "glance_ha:store:backend", "not one of"),
    ({"log": {"destination": "stderr"}}, "glance_ha:log:destination", "file, journald, syslog"),
    ({"log": {"file": "/var/log/glance-api.log"}}, "glance_ha:log:file", "under /var/log/glance/"),
    ({"log": {"file": "/var/log/glance/../x.log"}}, "glance_ha:log:file", "under /var/log/glance/"),
    ({"log": {"destination": "syslog", "syslog_facility": "local0"}}, "glance_ha:log:syslog_facility",
     "LOG_LOCAL0"),
    ({"config": {"DEFAULT": {"enabled_import_methods": "[glance-direct,copy-image]"}}},
     "glance_ha:config:DEFAULT:enabled_import_methods", "copy-image"),
    ({"config": {"DEFAULT": {"debug\n": True}}}, "glance_ha:config:DEFAULT", "control character"),
])
def test_bad_pillar_names_the_key(settings, example_pillar, override, key, words):
    assert_names_key(settings, example_pillar, override, key, words)


def assert_names_key(settings, example_pillar, override, key, words):
    """The pillar example with ``override`` is refused with a line for ``key`` that says ``words``."""
    message = errors_of(settings, deep_merge(example_pillar["glance_ha"], override))
    line = next((ln for ln in message.splitlines() if ln.strip().startswith(f"- {key}:")), None)
    assert line is not None, message
    assert words in line


def test_vip_prefixes_per_address_family(settings, example_pillar):
    """A VIP's prefix is its own /nn, else vip:cidr_netmask, else none: IPaddr2 then takes the prefix of
    the route to the VIP (a default /24 on a /26 subnet makes its interface lookup fail)."""
    pillar = deep_merge(example_pillar["glance_ha"], {"vip": {"cidr_netmask": ""}})
    vip = settings(pillar)["vip"]
    assert (vip["internal_netmask"], vip["public_netmask"]) == ("", "")
    pillar = deep_merge(pillar, {"vip": {"internal": "2001:db8::11", "public": "203.0.113.11/26"}})
    vip = settings(pillar)["vip"]
    assert (vip["internal_netmask"], vip["public_netmask"]) == ("", 26)
    pillar = deep_merge(pillar, {"vip": {"internal": "2001:db8::11/64", "cidr_netmask": 26,
                                         "public": "203.0.113.11"}})
    vip = settings(pillar)["vip"]
    assert (vip["internal_netmask"], vip["public_netmask"]) == (64, 26)


def test_agent_params_of_the_agent_are_accepted(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {"lookup": {"agent_params": {"server": "uwsgi"}}})
    assert settings(pillar)["lookup"]["agent_params"] == {"server": "uwsgi"}


def test_unversioned_keystone_url_with_a_path(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {"keystone": {"auth_url": "https://h.example/identity"}})
    assert settings(pillar)["conf"]["keystone_authtoken"]["auth_url"] == "https://h.example/identity"


def test_lookup_must_be_a_mapping(settings, example_pillar):
    pillar = copy.deepcopy(example_pillar["glance_ha"])
    pillar["lookup"] = "x"
    assert "glance_ha:lookup: must be a mapping" in errors_of(settings, pillar)


def test_mixed_family_vips_bind_everywhere(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {"vip": {"public": "2001:db8::11/64"}})
    assert settings(pillar)["api"]["bind_host"] == "::"


def test_active_active_binds_everywhere(settings, example_pillar):
    """A VIP moves to a node where glance already runs: it cannot listen on the VIP alone."""
    single = deep_merge(example_pillar["glance_ha"], {"vip": {"public": ""}})
    assert settings(single)["api"]["bind_host"] == "10.0.0.11"
    active = deep_merge(single, {"cluster": {"mode": "active-active"}})
    assert settings(active)["api"]["bind_host"] == "0.0.0.0"
    assert settings(active)["cluster"]["mode"] == "active-active"
    assert settings(example_pillar["glance_ha"])["cluster"]["mode"] == "active-passive"


def test_migration_threshold_follows_the_mode_unless_set(settings, example_pillar):
    """Unset: 3 in active-passive (restart in place), 1 in active-active (a failed instance's VIP moves
    at once to a running instance); a value in the pillar wins in both modes."""
    meta = {"cluster": {"meta": {"failure-timeout": "120s"}}}
    passive = deep_merge(example_pillar["glance_ha"], meta)
    active = deep_merge(passive, {"cluster": {"mode": "active-active"}})
    assert settings(passive)["cluster"]["meta"] == {"failure-timeout": "120s", "migration-threshold": 3}
    assert settings(active)["cluster"]["meta"] == {"failure-timeout": "120s", "migration-threshold": 1}
    for pillar in (passive, active):
        assert settings(deep_merge(pillar, {"cluster": {"meta": {"migration-threshold": 5}}}))[
            "cluster"]["meta"]["migration-threshold"] == 5


def test_drain_file_follows_the_mode(settings, example_pillar, pure):
    """Unset, the drain file is glance's own disable_by_file_path in active-active (a balancer polls every
    instance) and none in active-passive (the VIP moves with the one instance); set, it is kept as set."""
    passive = example_pillar["glance_ha"]
    active = deep_merge(passive, {"cluster": {"mode": "active-active"}})
    assert settings(passive)["cluster"]["drain_file"] == ""
    assert settings(active)["cluster"]["drain_file"] == "/etc/glance/healthcheck_disable"
    assert settings(active)["cluster"]["drain_delay"] == 0
    assert settings(deep_merge(active, {"cluster": {"drain_file": ""}}))["cluster"]["drain_file"] == ""
    chosen = deep_merge(passive, {"cluster": {"drain_file": "/run/glance/drain", "drain_delay": 40}})
    assert (settings(chosen)["cluster"]["drain_file"], settings(chosen)["cluster"]["drain_delay"]) == (
        "/run/glance/drain", 40)
    assert pure.HEALTHCHECK_DISABLE_FILE == "/etc/glance/healthcheck_disable"


def test_longest_drain_delay_fits_the_stop_op(pure):
    """The agent's wait keeps a fifth of the stop timeout (2-10 s) for glance's graceful stop and another
    for the KILL: the longest drain_delay the pillar accepts is what the primitive's stop op leaves."""
    objects = yaml.safe_load((FORMULA_ROOT / "test" / "golden" / "cluster-active-active.yaml").read_text())
    primitive = next(o for o in objects if o.get("primitive") == "p_glance-api")
    stop = next(op for op in primitive["ops"] if op["name"] == "stop")
    timeout = int(stop["timeout"].removesuffix("s"))
    assert pure.MAX_DRAIN_DELAY == timeout - 2 * min(10, max(2, timeout // 5))


def test_iso_intervals_and_odd_names(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {
        "cluster": {"monitor": {"interval": "PT30S", "timeout": "PT1M"}, "meta": {"failure-timeout": "PT2M"}},
        "messaging": {"vhost": "/my vhost"}, "database": {"name": "glance?db"}})
    conf = settings(pillar)["conf"]
    assert conf["DEFAULT"]["transport_url"].endswith("@10.0.0.11:5672/my%20vhost")
    assert conf["database"]["connection"].endswith("/glance%3Fdb")


def test_passwords_are_quoted_for_oslo(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {"keystone": {"service_user": {"password": ' "q$w" '}}})
    assert settings(pillar)["conf"]["keystone_authtoken"]["password"] == '" "q$$w" "'


def test_masked_diff_masks_secrets_it_was_not_told(secrets_util):
    old = ("password = old-rotated\nconnection = mysql+pymysql://glance:old-db@db/glance\n"
           "memcache_secret_key = k1\nOS_PASSWORD=\"old\"\nbind_host = 10.0.0.1\n")
    new = old.replace("old", "new").replace("k1", "k2").replace("10.0.0.1", "10.0.0.2")
    diff = secrets_util.masked_diff(old, new, [])
    for secret in ("old-rotated", "new-rotated", "old-db", "new-db", "k1", "k2", '"old"', '"new"'):
        assert secret not in diff
    assert "-bind_host = 10.0.0.1" in diff and "+bind_host = 10.0.0.2" in diff
    assert "+connection = mysql+pymysql://glance:********@db/glance" in diff


def test_all_errors_reported_at_once(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {"api": {"port": 0}, "vip": {"internal": "x"},
                                                       "database": {"password": ""}})
    message = errors_of(settings, pillar)
    for key in ("glance_ha:api:port", "glance_ha:vip:internal", "glance_ha:database:password"):
        assert key in message


def test_no_pillar_at_all_is_refused(settings):
    message = errors_of(settings, {})
    assert "glance_ha:vip:internal: is required" in message


def test_error_messages_never_echo_passwords(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {"vip": {"internal": "bad"}, "api": {"port": -1}})
    message = errors_of(settings, pillar)
    for secret in ("glance-db-secret", "rabbit-secret", "keystone-admin-secret", "glance-keystone-secret"):
        assert secret not in message


def test_nova_scope_needs_no_secrets(settings):
    cfg = settings({"vip": {"internal": "10.0.0.11"}}, scope="nova")
    assert cfg["endpoints"]["internal"] == "http://10.0.0.11:9292"
    with pytest.raises(SaltInvocationError, match="glance_ha:vip:internal"):
        settings({"vip": {"internal": "nope"}}, scope="nova")


@pytest.mark.parametrize("override, key", [
    ({"endpoints": {"internal": "https://10.0.0.11:9292"}}, "glance_ha:endpoints:internal"),
    ({"api": {"port": 80}}, "glance_ha:api:port"),
    ({"vip": {"internal": "2001:db8::11", "cidr_netmask": 24, "public": "10.0.0.12"}}, "glance_ha:vip:cidr_netmask"),
])
def test_nova_scope_refuses_what_glance_cannot_serve(settings, override, key):
    """nova's api_servers follows the internal endpoint: compute nodes refuse what glance cannot serve."""
    with pytest.raises(SaltInvocationError, match=key):
        settings(deep_merge({"vip": {"internal": "10.0.0.11"}}, override), scope="nova")


def test_noop_notifications_need_no_rabbit(settings, example_pillar):
    pillar = copy.deepcopy(example_pillar["glance_ha"])
    pillar["messaging"] = {"driver": "noop"}
    cfg = settings(pillar)
    assert "transport_url" not in cfg["conf"]["DEFAULT"]


def test_secrets_cover_rendered_forms(secrets_util):
    found = secrets_util.forms(secrets_util.collect({"database": {"password": "a$b/c"}, "x": [{"admin_password": "zz"}], "user": "u"}))
    assert {"a$b/c", "a$$b/c", "a%24b%2Fc", "zz"} <= set(found)
    assert "u" not in found


def test_masked_diff(secrets_util):
    diff = secrets_util.masked_diff("password = old-secret\n", "password = new-secret\n", ["old-secret", "new-secret"])
    assert "secret" not in diff
    assert "-password = ********" in diff and "+password = ********" in diff


NOVA = """[DEFAULT]
# a comment the operator wrote
my_ip = 10.0.0.31

[glance]
# api_servers = http://old:9292
api_servers = http://old:9292
num_retries = 3

[libvirt]
virt_type = kvm
"""


def test_ini_set_replaces_in_place(ini):
    out = ini.set_option(NOVA, "glance", "api_servers", "http://10.0.0.11:9292")
    assert out == NOVA.replace("\napi_servers = http://old:9292\n", "\napi_servers = http://10.0.0.11:9292\n")
    assert ini.get(out, "glance", "api_servers") == "http://10.0.0.11:9292"


def test_ini_set_adds_to_existing_section(ini):
    text = NOVA.replace("api_servers = http://old:9292\n", "")
    out = ini.set_option(text, "glance", "api_servers", "http://v:9292")
    assert "num_retries = 3\napi_servers = http://v:9292\n\n[libvirt]" in out
    assert out.replace("api_servers = http://v:9292\n", "") == text


def test_ini_set_appends_missing_section(ini):
    text = "[DEFAULT]\nmy_ip = 1.2.3.4"
    out = ini.set_option(text, "glance", "api_servers", "http://v:9292")
    assert out == "[DEFAULT]\nmy_ip = 1.2.3.4\n\n[glance]\napi_servers = http://v:9292\n"
    assert ini.set_option("", "glance", "k", "v") == "[glance]\nk = v\n"


@pytest.mark.parametrize("value, millis", [("30s", 30000), ("1min", 60000), ("500ms", 500), ("10", 10000),
                                           ("2h", 7200000), ("30x", None), ("", None), ("-1s", None)])
def test_parse_interval(mod, value, millis):
    assert mod._rules()["interval_ms"](value) == millis


def test_ini_remove_touches_nothing_else(ini):
    out = ini.remove_option(NOVA, "glance", "api_servers")
    assert out == NOVA.replace("\napi_servers = http://old:9292\n", "\n")
    assert ini.get(out, "glance", "api_servers") is None
    assert ini.remove_option(out, "glance", "api_servers") == out


def test_view_masks_every_secret(mod, defaults, osfamilymap, example_pillar, site_pillar):
    """What glance_ha.settings returns (to map.jinja, or to an operator's job cache) holds no secret
    in any form, while the non-secret values are intact."""
    for pillar in (example_pillar, site_pillar):
        view = mod.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar["glance_ha"]))
        text = repr(view)
        for secret in SECRETS + ("p@ss:w$rd/with%chars", "p%40ss%3Aw%24rd%2Fwith%25chars"):
            assert secret not in text
        assert view["keystone"]["service_user"]["password"] == "********"
        assert view["conf"]["keystone_authtoken"]["password"] == "********"
        assert "glance:********@" in view["conf"]["database"]["connection"]
        assert view["lookup"]["config_file"] == "/etc/glance/glance-api.conf"
    view = mod.settings(defaults, osfamilymap, pillar=copy.deepcopy(example_pillar["glance_ha"]))
    assert view["conf"]["DEFAULT"]["transport_url"] == "rabbit://openstack:********@10.0.0.11:5672/"


# ------------------------------------------------------------------ one writer without a managed cluster
def test_unmanaged_cluster_needs_a_named_writer(mod, defaults, osfamilymap, example_pillar, monkeypatch):
    """cluster:manage false with endpoints managed: a writer must be named, unless Pacemaker is installed
    here to elect one (its DC); the error names the key, at render time."""
    pillar = deep_merge(example_pillar["glance_ha"], {"cluster": {"manage": False}})
    monkeypatch.setattr(mod, "_pacemaker_found", list)
    with pytest.raises(SaltInvocationError) as info:
        mod.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar))
    assert "glance_ha:cluster:writer: must name the minion" in str(info.value)
    named = mod.settings(defaults, osfamilymap, pillar=deep_merge(pillar, {"cluster": {"writer": "ctl1"}}))
    assert named["cluster"]["writer"] == "ctl1"
    # no catalog to write: every node may run the (locked) database steps
    off = mod.settings(defaults, osfamilymap, pillar=deep_merge(pillar, {"endpoints": {"manage": False}}))
    assert off["cluster"]["writer"] is None
    monkeypatch.setattr(mod, "_pacemaker_found", lambda: ["crmadmin"])
    assert mod.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar))["cluster"]["writer"] == ""


def test_database_lifecycle_keys(settings, example_pillar):
    base = example_pillar["glance_ha"]
    cfg = settings(base)
    assert (cfg["database"]["sync"], cfg["database"]["create"], cfg["database"]["lock_timeout"]) == (True, False, 600)
    assert cfg["lookup"]["glance_manage"] == "/usr/bin/glance-manage"
    text = errors_of(settings, deep_merge(base, {"database": {"create": True, "sync": "yes", "lock_timeout": 0},
                                                 "lookup": {"glance_manage": "bin/glance-manage"}}))
    for key in ("glance_ha:database:admin:password: is required", "glance_ha:database:sync: must be true",
                "glance_ha:database:lock_timeout: 0", "glance_ha:lookup:glance_manage: 'bin/glance-manage'"):
        assert key in text
    created = settings(deep_merge(base, {"database": {"create": True, "admin": {"password": "db-admin-secret"}}}))
    assert created["database"]["admin"]["username"] == "root"


def test_vip_nic_is_one_of_this_minions_interfaces(defaults, osfamilymap, example_pillar):
    """vip:nic names an interface of the minion that renders it (its ip_interfaces grain); the error
    names the key and says to leave it empty when names differ between nodes."""
    minion = load("_modules/glance_ha.py", __grains__={"os_family": "Debian", "ip_interfaces": {
        "lo": ["127.0.0.1"], "ens3": ["10.0.0.21"]}}, __opts__={}, __salt__={"cp.get_file_str": fileserver})
    pillar = copy.deepcopy(example_pillar["glance_ha"])
    pillar["vip"]["nic"] = "eth0"
    with pytest.raises(SaltInvocationError) as info:
        minion.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar))
    assert "glance_ha:vip:nic: 'eth0' is not an interface of this minion (it has: ens3, lo)" in str(info.value)
    assert "leave vip:nic empty when interface names differ" in str(info.value)
    pillar["vip"]["nic"] = "ens3"
    assert minion.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar))["vip"]["nic"] == "ens3"
    pillar["vip"]["nic"] = ""
    minion.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar))
    pillar["vip"]["nic"] = "eth0"
    pillar["cluster"]["manage"] = False  # no VIP resources: nothing uses vip:nic
    minion.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar))


# --------------------------------------------------------------------------- shared store, staging, cache
@pytest.mark.parametrize("override, key, words", [
    ({"store": {"staging_path": "/var/lib/glance/staging"}}, "glance_ha:store:staging_path",
     "not under the shared filesystem '/var/lib/glance/images'"),
    ({"store": {"tasks_path": "/srv/tasks"}}, "glance_ha:store:tasks_path", "not under the shared filesystem"),
    ({"store": {"staging_path": "staging"}}, "glance_ha:store:staging_path", "absolute path"),
    ({"store": {"staging_path": "/var/lib/glance/images/../staging"}}, "glance_ha:store:staging_path",
     "absolute path"),
    ({"store": {"staging_path": "/var/lib/glance/images"}}, "glance_ha:store:staging_path",
     "not under the shared filesystem"),
    ({"store": {"share": "/srv/glance", "staging_path": "/srv/glance/images"}}, "glance_ha:store:path",
     "not on the shared filesystem glance_ha:store:share '/srv/glance'"),
    ({"store": {"share": "/var/lib/glance", "staging_path": "/var/lib/glance/images"}},
     "glance_ha:store:staging_path", "is the image store itself"),
    ({"store": {"staging_path": "/var/lib/glance/images/x", "tasks_path": "/var/lib/glance/images/x/t"}},
     "glance_ha:store:staging_path", "separate directories"),
    ({"store": {"share": "nfs"}}, "glance_ha:store:share", "absolute path"),
    ({"store": {"backend": "rbd", "rbd": {"user": "glance"}, "staging_path": "/srv/staging"}},
     "glance_ha:store:staging_path", "not under a shared filesystem the formula knows of"),
    ({"store": {"backend": "rbd", "rbd": {"user": "glance"}}, "cache": {"enabled": True}},
     "glance_ha:cache:enabled", "needs a shared filesystem"),
    ({"cache": {"enabled": True, "path": "/var/cache/glance"}}, "glance_ha:cache:path",
     "not under the shared filesystem"),
    ({"cache": {"enabled": "yes"}}, "glance_ha:cache:enabled", "true or false"),
    ({"cache": {"max_size": 0}}, "glance_ha:cache:max_size", "size in bytes"),
    ({"store": {"timeout": -1}}, "glance_ha:store:timeout", "number of seconds"),
    ({"store": {"check_timeout": 0}}, "glance_ha:store:check_timeout", "number of seconds"),
    ({"config": {"DEFAULT": {"worker_self_reference_url": "http://10.0.0.21:9292"}}},
     "glance_ha:config:DEFAULT:worker_self_reference_url", "internal endpoint on every controller"),
])
def test_bad_store_pillar_names_the_key(settings, example_pillar, override, key, words):
    assert_names_key(settings, example_pillar, override, key, words)


def test_staging_and_tasks_default_to_the_share(settings, example_pillar):
    cfg = settings(example_pillar["glance_ha"])
    assert cfg["store"]["share"] == "/var/lib/glance/images"
    assert cfg["conf"]["os_glance_staging_store"] == {"filesystem_store_datadir": "/var/lib/glance/images/staging/",
                                                      "filesystem_store_timeout": "30"}
    assert cfg["conf"]["os_glance_tasks_store"] == {"filesystem_store_datadir": "/var/lib/glance/images/tasks/",
                                                    "filesystem_store_timeout": "30"}
    assert cfg["conf"]["fs"]["filesystem_store_timeout"] == "30"
    # one reference URL on every node: the internal endpoint (the VIP)
    assert cfg["conf"]["DEFAULT"]["worker_self_reference_url"] == cfg["endpoints"]["internal"]
    assert "image_cache_dir" not in cfg["conf"]["DEFAULT"]
    assert cfg["conf"]["paste_deploy"]["flavor"] == "keystone"


def test_share_above_the_store(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {"store": {"share": "/var/lib/glance/", "timeout": 0}})
    cfg = settings(pillar)
    assert cfg["store"]["share"] == "/var/lib/glance"
    assert cfg["store"]["staging_path"] == "/var/lib/glance/staging"
    assert cfg["conf"]["os_glance_staging_store"] == {"filesystem_store_datadir": "/var/lib/glance/staging/"}
    assert "filesystem_store_timeout" not in cfg["conf"]["fs"]


def test_other_backends_keep_staging_local_without_a_share(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {"store": {"backend": "rbd", "rbd": {"user": "glance"}}})
    cfg = settings(pillar)
    assert cfg["store"]["share"] == ""
    assert cfg["store"]["staging_path"] == "/var/lib/glance/staging"
    assert "filesystem_store_timeout" not in cfg["conf"]["rbd"]
    pillar = deep_merge(pillar, {"store": {"share": "/srv/glance"}, "cache": {"enabled": True}})
    cfg = settings(pillar)
    assert cfg["conf"]["os_glance_staging_store"]["filesystem_store_datadir"] == "/srv/glance/staging/"
    assert cfg["conf"]["DEFAULT"]["image_cache_dir"] == "/srv/glance/cache/"


def test_cache_on_the_share(settings, example_pillar):
    pillar = deep_merge(example_pillar["glance_ha"], {"cache": {"enabled": True, "max_size": 1073741824}})
    cfg = settings(pillar)
    assert cfg["conf"]["DEFAULT"]["image_cache_dir"] == "/var/lib/glance/images/cache/"
    assert cfg["conf"]["DEFAULT"]["image_cache_driver"] == "centralized_db"
    assert cfg["conf"]["DEFAULT"]["image_cache_max_size"] == "1073741824"
    assert cfg["conf"]["paste_deploy"]["flavor"] == "keystone+cachemanagement"


def test_share_root_opts_out_of_the_mount_check(settings, example_pillar):
    """A single node on local disk: `store:share: /` (always mounted) keeps staging beside the store."""
    cfg = settings(deep_merge(example_pillar["glance_ha"], {"store": {"share": "/"}}))
    assert cfg["store"]["share"] == "/"
    assert cfg["store"]["staging_path"] == "/staging"
    cfg = settings(deep_merge(example_pillar["glance_ha"], {"store": {
        "share": "/", "staging_path": "/var/lib/glance/staging", "tasks_path": "/var/lib/glance/tasks"}}))
    assert cfg["conf"]["os_glance_staging_store"]["filesystem_store_datadir"] == "/var/lib/glance/staging/"
