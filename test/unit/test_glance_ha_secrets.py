"""The one secrets rule and mask (_utils/glance_ha_secrets.py), loaded with no Salt dunders."""

import pytest

from test.modload import load

sec = load("_utils/glance_ha_secrets.py")
MASK = sec.MASK


@pytest.mark.parametrize("name", ["password", "os_password", "OS_PASSWORD", "api_token", "secret_key",
                                  "db_passwd", "ssh_key", "memcache_secret_key", "admin_password"])
def test_secret_names(name):
    assert sec.is_secret(name)


@pytest.mark.parametrize("name", ["username", "auth_url", "keystone", "monitor_level", "key_manager",
                                  "region_name", "ip"])
def test_plain_names(name):
    assert not sec.is_secret(name)


def test_extra_names_from_pillar_list():
    assert not sec.is_secret("credential")
    assert sec.is_secret("Credential", extra=["credential"])


def test_every_rendered_form_is_masked():
    pw = 'p@ss w$rd/"<&>\''
    text = "\n".join([pw, "mysql+pymysql://glance:p%40ss%20w%24rd%2F%22%3C%26%3E%27@db/glance",
                      "mysql+pymysql://glance:p%40ss%20w%24%24rd%2F%22%3C%26%3E%27@db/glance",
                      "x = p@ss w$$rd/\"<&>'",
                      '<nvpair name="other" value="p@ss w$rd/&quot;&lt;&amp;&gt;&apos;"/>'])
    out = sec.mask(text, [pw])
    assert "ss w" not in out and "%40ss" not in out and "&lt;" not in out
    assert out.count(MASK) >= 5


def test_structural_masking_without_known_value():
    text = ("password = rotated-old\nOS_PASSWORD=\"x\"\napi_token: abc\n"
            "transport_url = rabbit://u:one@h1:5672,u:two@h2:5672/\n"
            '<nvpair id="i" name="secret_key" value="zzz"/>\nusername = glance\n')
    out = sec.mask(text)
    for value in ("rotated-old", '"x"', "abc", "one@", "two@", "zzz"):
        assert value not in out
    assert "username = glance" in out and 'name="secret_key"' in out


def test_mask_data_masks_secret_keys_and_values_elsewhere():
    data = {"params": {"api_token": "t0k", "ip": "198.51.100.10"}, "comment": "token t0k refused"}
    out = sec.mask_data(data, sec.collect(data))
    assert out["params"] == {"api_token": MASK, "ip": "198.51.100.10"}
    assert "t0k" not in out["comment"]


def test_collect_and_diff():
    cfg = {"database": {"password": "dbpw"}, "keystone": {"admin": {"password": "adm"}}, "x": [{"token": 5}]}
    assert sec.collect(cfg) == {"dbpw", "adm", "5"}
    diff = sec.masked_diff("password = old\n", "password = dbpw\n", ["dbpw"], path="f")
    assert "-password = " + MASK in diff and "+password = " + MASK in diff
    assert "old" not in diff and "dbpw" not in diff
