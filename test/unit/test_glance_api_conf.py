"""glance-api.conf as the installed glance sees it (glance 33 and glance_store in .venv-os, through
test/oslo_check.py):

- every rendered variant (pillar.example, the site override, each store backend, each monitor level,
  each log destination) passes glance's own oslo-config-validator with glance-api's namespaces, its
  store sections pass glance_store's option lists of their driver: no unknown, no deprecated option;
- every value, secret or not, in any section, is read back by oslo.config exactly as the pillar wrote
  it; option and section names that cannot be written are refused, naming the key.
"""

import copy
import json
import subprocess
import urllib.parse

import jinja2
import pytest
from salt.exceptions import SaltInvocationError

from test.conftest import FORMULA_ROOT, deep_merge
from test.modload import load

OS_PYTHON = FORMULA_ROOT / ".venv-os" / "bin" / "python"
TEMPLATE = FORMULA_ROOT / "glance_ha" / "templates" / "glance-api.conf.jinja"
STORES = {
    "rbd": {"backend": "rbd", "rbd": {"user": "glance"}},
    "swift": {"backend": "swift", "swift": {"config_file": "/etc/glance/glance-swift.conf",
                                            "reference": "ref1"}},
    "s3": {"backend": "s3", "s3": {"host": "http://s3.example:8080", "access_key": "AKIA1",
                                   "secret_key": "s3-secret", "bucket": "images"}},
    "cinder": {"backend": "cinder", "cinder": {"auth_address": "http://10.0.0.11:5000/v3",
                                               "user_name": "glance", "password": "cinder-secret",
                                               "project_name": "service", "volume_type": "images"}},
    "http": {"backend": "http", "http": {"ca_file": "/etc/ssl/certs/ca-certificates.crt"}},
}
VARIANTS = {
    "example": {},
    **{f"store-{name}": {"store": store} for name, store in STORES.items()},
    **{f"monitor-{level}": {"cluster": {"monitor_level": level}} for level in ("process", "http", "api")},
    "log-file": {"log": {"destination": "file", "file": "/var/log/glance/api/glance-api.log"}},
    "log-journald": {"log": {"destination": "journald"}},
    "log-syslog": {"log": {"destination": "syslog", "syslog_facility": "LOG_LOCAL3"}},
    "messaging-noop": {"messaging": {"driver": "noop"}},
    "postgresql": {"database": {"driver": "postgresql+psycopg2", "port": 5432}},
}


@pytest.fixture(scope="module")
def mod():
    return load("_modules/glance_ha.py", __grains__={"os_family": "Debian"}, __opts__={},
                __salt__={"cp.get_file_str": lambda url, saltenv=None: (
                    FORMULA_ROOT / url.removeprefix("salt://")).read_text()})


@pytest.fixture(scope="module")
def render(mod, defaults, osfamilymap):
    """pillar (the glance_ha mapping) -> glance-api.conf text, after the module's validation."""
    pure = load("_utils/glance_ha_settings.py")
    template = jinja2.Template(TEMPLATE.read_text())

    def _render(pillar):
        mod.settings(defaults, osfamilymap, pillar=copy.deepcopy(pillar))
        cfg = pure.derive(pure.merge(defaults, osfamilymap, copy.deepcopy(pillar), "Debian"))
        return template.render(glance_ha=cfg) + "\n"
    return _render


def oslo(request):
    out = subprocess.run([str(OS_PYTHON), str(FORMULA_ROOT / "test" / "oslo_check.py")],
                         input=json.dumps(request), capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def validated(render, example_pillar, site_pillar, tmp_path_factory):
    """{variant: the validator's answer} for every variant, in one run of glance's python."""
    tmp = tmp_path_factory.mktemp("conf")
    pillars = {name: deep_merge(example_pillar["glance_ha"], over) for name, over in VARIANTS.items()}
    pillars["site"] = site_pillar["glance_ha"]
    paths = {}
    for name, pillar in pillars.items():
        paths[name] = tmp / f"{name}.conf"
        paths[name].write_text(render(pillar))
    answer = oslo({"validate": [str(p) for p in paths.values()]})
    return {name: answer[str(path)] for name, path in paths.items()}


@pytest.mark.parametrize("variant", [*VARIANTS, "site"])
def test_glance_knows_every_option(validated, variant):
    result = validated[variant]
    assert result["errors"] == [], result["errors"]
    assert result["warnings"] == []


@pytest.mark.parametrize("backend", sorted(STORES))
def test_store_backend_has_its_section(validated, render, example_pillar, backend):
    store = "fs" if backend == "file" else backend
    assert store in validated[f"store-{backend}"]["sections"]
    text = render(deep_merge(example_pillar["glance_ha"], {"store": STORES[backend]}))
    assert f"enabled_backends = {store}:{backend}\n" in text
    assert "[fs]" not in text


def test_one_store_offers_no_copy_image(render, example_pillar):
    assert "enabled_import_methods = [glance-direct,web-download]\n" in render(example_pillar["glance_ha"])


# ------------------------------------------------------------------------------ values read back
ODD_VALUES = ["$region", "${other}", "a$$b", "$", "x$", "\\$x", "a\\\\$b", "\\", "back\\", "\\\\$$",
              " lead", "trail ", "  both  ", '"quoted"', "'single'", '"', "'", "\"x'", "''", "#hash",
              "a # b", ";semi", "a ; b", "ünïcødé ✓ 画像", "a=b:c", "[x]", "100%", "%(x)s", "key = value",
              "{{ x }}", "a,b", "true", "--x"]
# (pillar override built from the value, [(section, option, what oslo.config must read)])
PLACES = [
    (lambda v: {"keystone": {"region": v}}, [("keystone_authtoken", "region_name")]),
    (lambda v: {"keystone": {"service_user": {"username": v, "password": v, "project_name": v}}},
     [("keystone_authtoken", "username"), ("keystone_authtoken", "password"),
      ("keystone_authtoken", "project_name")]),
    (lambda v: {"config": {"DEFAULT": {"my_option": v}, "my_section": {"my_secret": v}}},
     [("DEFAULT", "my_option"), ("my_section", "my_secret")]),
    (lambda v: {"store": {"backend": "rbd", "rbd": {"pool": v, "user": v}}},
     [("rbd", "rbd_store_pool"), ("rbd", "rbd_store_user")]),
    (lambda v: {"store": {"backend": "cinder", "cinder": {
        "auth_address": "http://10.0.0.11:5000/v3", "user_name": v, "password": v, "project_name": v}}},
     [("cinder", "cinder_store_user_name"), ("cinder", "cinder_store_password")]),
]


@pytest.fixture(scope="module")
def read_back(render, example_pillar, tmp_path_factory):
    """{(value, section, option): what oslo.config reads} for every odd value in every place."""
    tmp = tmp_path_factory.mktemp("values")
    requests, keys = [], []
    for i, value in enumerate(ODD_VALUES):
        for j, (override, places) in enumerate(PLACES):
            path = tmp / f"{i}-{j}.conf"
            path.write_text(render(deep_merge(example_pillar["glance_ha"], override(value))))
            requests.append({"path": str(path), "opts": [list(p) for p in places]})
            keys.append([(value, *p) for p in places])
    answers = oslo({"read": requests})
    return {key: answer[f"{key[1]}/{key[2]}"] for key_list, answer in zip(keys, answers) for key in key_list}


@pytest.mark.parametrize("value", ODD_VALUES)
def test_value_reads_back_unchanged(read_back, value):
    got = {(s, o): v for (val, s, o), v in read_back.items() if val == value}
    assert got and all(v == value for v in got.values()), got


def test_store_path_reads_back(render, example_pillar, tmp_path):
    path = tmp_path / "p.conf"
    path.write_text(render(deep_merge(example_pillar["glance_ha"], {"store": {"path": "/srv/$img s"}})))
    answer = oslo({"read": [{"path": str(path), "opts": [["fs", "filesystem_store_datadir"]]}]})
    assert answer == [{"fs/filesystem_store_datadir": "/srv/$img s/"}]


@pytest.mark.parametrize("config, key", [
    ({"DEFAULT": {"debug\n": True}}, "glance_ha:config:DEFAULT"),
    ({"DEFAULT": {"a=b": 1}}, "glance_ha:config:DEFAULT:'a=b'"),
    ({"DEFAULT": {"a:b": 1}}, "glance_ha:config:DEFAULT:'a:b'"),
    ({"DEFAULT": {" lead": 1}}, "glance_ha:config:DEFAULT:' lead'"),
    ({"DEFAULT": {"": 1}}, "glance_ha:config:DEFAULT:''"),
    ({"DEFAULT": {"a b": 1}}, "glance_ha:config:DEFAULT:'a b'"),
    ({"DEFAULT": {"#x": 1}}, "glance_ha:config:DEFAULT:'#x'"),
    ({"DEFAULT": {"[x": 1}}, "glance_ha:config:DEFAULT:'[x'"),
    ({"DEFAULT": {"ü": 1}}, "glance_ha:config:DEFAULT:'ü'"),
    ({"a]b": {"x": 1}}, "glance_ha:config:a]b"),
    ({"": {"x": 1}}, "glance_ha:config:"),
    ({" s": {"x": 1}}, "glance_ha:config: s"),
    ({"s\n": {"x": 1}}, "glance_ha:config"),
    ({"[s": {"x": 1}}, "glance_ha:config:[s"),
])
def test_unwritable_names_are_refused(render, example_pillar, config, key):
    with pytest.raises(SaltInvocationError) as info:
        render(deep_merge(example_pillar["glance_ha"], {"config": config}))
    lines = [ln.strip() for ln in str(info.value).splitlines()]
    assert any(ln.startswith((f"- {key}:", f"- {key} ")) for ln in lines), str(info.value)


def test_checker_sees_unknown_and_deprecated_options(tmp_path):
    """The check itself: what it must catch, it catches (validator and store lists alike)."""
    path = tmp_path / "bad.conf"
    path.write_text("[DEFAULT]\nenabled_backends = swift:swift\nshow_multiple_locations = true\nbogus = 1\n"
                    "[swift]\nswift_store_user = x\nnope = 1\n")
    result = oslo({"validate": [str(path)]})[str(path)]
    assert result["errors"] == ["DEFAULT/bogus is not part of the sample config",
                                "swift/nope is not an option of glance_store's swift driver"]
    assert result["warnings"] == ["DEFAULT/show_multiple_locations is deprecated for removal",
                                  "swift/swift_store_user is deprecated for removal (swift driver)"]


@pytest.fixture(scope="module")
def urls_read_back(render, example_pillar, tmp_path_factory):
    """{value: (connection, transport_url)} as oslo.config reads them, with value as every user,
    password, database name and vhost."""
    tmp = tmp_path_factory.mktemp("urls")
    requests = []
    for i, value in enumerate(ODD_VALUES):
        path = tmp / f"{i}.conf"
        path.write_text(render(deep_merge(example_pillar["glance_ha"], {
            "database": {"user": value, "password": value, "name": value},
            "messaging": {"user": value, "password": value, "vhost": "/" + value,
                          "hosts": ["10.0.0.11", "10.0.0.12"]}})))
        requests.append({"path": str(path), "opts": [["database", "connection"], ["DEFAULT", "transport_url"]]})
    answers = oslo({"read": requests})
    return {v: (a["database/connection"], a["DEFAULT/transport_url"]) for v, a in zip(ODD_VALUES, answers)}


@pytest.mark.parametrize("value", ODD_VALUES)
def test_url_parts_read_back_unchanged(urls_read_back, value):
    """Users, passwords, database names and vhosts inside the database and transport URLs."""
    connection, transport = urls_read_back[value]
    url = urllib.parse.urlsplit(connection)
    assert [urllib.parse.unquote(p) for p in (url.username, url.password, url.path[1:])] == [value] * 3
    rest, _, vhost = transport.removeprefix("rabbit://").partition("/")
    assert urllib.parse.unquote(vhost) == value
    for netloc in rest.split(","):
        userinfo = netloc.rpartition("@")[0]
        assert [urllib.parse.unquote(p) for p in userinfo.split(":")] == [value, value]
