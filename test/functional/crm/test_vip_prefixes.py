"""VIP prefixes per address family as glance_ha.cluster writes them to a CIB file: a VIP written
without a prefix (and no vip:cidr_netmask) gets no cidr_netmask, so IPaddr2 takes the prefix of the
route to it; a VIP's own /nn is its cidr_netmask; adding a prefix later updates the primitive in place."""

import copy

import pytest

pytestmark = pytest.mark.usefixtures("glance_agent")


def vip_params(cib, rsc):
    return {p.get("name"): p.get("value") for p in cib.find(rsc).iter("nvpair")}


def test_vip_prefix_per_family(modules, cib, example_pillar):
    pillar = copy.deepcopy(example_pillar)
    pillar["glance_ha"]["vip"] = {"internal": "2001:db8::10", "public": "198.51.100.11/26", "cidr_netmask": "",
                                   "nic": ""}
    pillar["glance_ha"]["lookup"] = {"pkgs": [], "service": ""}
    for vip_internal, want in (("2001:db8::10", {"ip": "2001:db8::10"}),
                               ("2001:db8::10/64", {"ip": "2001:db8::10", "cidr_netmask": "64"})):
        pillar["glance_ha"]["vip"]["internal"] = vip_internal
        ret = modules.state.sls("glance_ha.cluster", pillar=pillar)
        assert not [r for r in ret if r.result is False], [r.comment for r in ret if r.result is False]
        assert vip_params(cib, "p_ip_glance-api") == want
        assert vip_params(cib, "p_ip_glance-api-public") == {"ip": "198.51.100.11", "cidr_netmask": "26"}
        assert cib.verify().returncode == 0, cib.verify().stderr
