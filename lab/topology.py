"""The lab's network: names and addresses, the namespaces, the bridge, and the range check.

Every namespace of a lab is `<prefix>-<what>`: `br` (bridge br0), `svc` (services), `cl` (client),
`n1..nN` (controllers ctl1..ctlN), each plugged into the bridge by a veth whose namespace end is
eth0. Addresses are offsets in the lab network (LAB_NET, default 198.51.100.0/24), which must not
overlap any address, route or gateway of the host: :func:`check_range` refuses it before anything
is created.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re

from lab.procs import LabError, run

# Host offsets inside the lab network.
OFF_SVC, OFF_NODE0, OFF_CLIENT, OFF_VIP_INTERNAL, OFF_VIP_PUBLIC = 10, 10, 50, 100, 101
_NS_KINDS = r"(br|svc|cl|n\d+)"


def host_netns() -> str:
    """The host's network namespace: the one of the kernel threads (PID 2, kthreadd); PID 1 may be
    a protected init whose /proc entries root cannot read."""
    return os.readlink("/proc/2/ns/net")


def check_range(net: ipaddress.IPv4Network) -> None:
    """Refuse a lab network that overlaps an address or a route of the host's network namespace."""
    if os.readlink("/proc/self/ns/net") != host_netns():
        raise LabError("run the lab from the host's network namespace (it checks the host's addresses)")
    for link in json.loads(run(["ip", "-j", "-4", "addr"]).stdout):
        for a in link.get("addr_info", []):
            iface = ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
            if iface.network.overlaps(net):
                raise LabError(f"lab network {net} overlaps {iface} on host interface {link['ifname']}; "
                               "choose another with LAB_NET")
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout):
        dst = route.get("dst", "default")
        if dst != "default":
            dnet = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
            if dnet.overlaps(net):
                raise LabError(f"lab network {net} overlaps host route {dst} (dev {route.get('dev')}); "
                               "choose another with LAB_NET")
        gw = route.get("gateway")
        if gw and ":" not in gw and ipaddress.ip_address(gw) in net:
            raise LabError(f"lab network {net} contains the host gateway {gw}")


def namespaces(prefix_regex: str) -> list[str]:
    """Existing network namespaces of labs whose prefix matches prefix_regex."""
    pat = re.compile(rf"^(?:{prefix_regex})-{_NS_KINDS}$")
    names = [line.split()[0] for line in run(["ip", "netns", "list"]).stdout.splitlines() if line.strip()]
    return [ns for ns in names if pat.match(ns)]


def remove_empty_namespaces(prefix_regex: str) -> list[str]:
    """Delete lab namespaces (`<prefix>-br|svc|cl|nN`, prefix matching prefix_regex) in which no
    process runs any more: what a lab killed with its parent (tied=True) leaves behind."""
    gone = []
    for ns in namespaces(prefix_regex):
        if not run(["ip", "netns", "pids", ns], check=False).stdout.split():
            run(["ip", "netns", "del", ns], check=False)
            gone.append(ns)
    return gone


class Topology:
    """Names, addresses and the network of one lab (needs self.prefix, self.net, self.nodes)."""

    def addr(self, offset: int) -> str:
        return str(self.net.network_address + offset)

    @property
    def svc_addr(self) -> str:
        return self.addr(OFF_SVC)

    @property
    def client_addr(self) -> str:
        return self.addr(OFF_CLIENT)

    @property
    def vip_internal(self) -> str:
        return self.addr(OFF_VIP_INTERNAL)

    @property
    def vip_public(self) -> str:
        return self.addr(OFF_VIP_PUBLIC)

    def node_addr(self, n: int) -> str:
        return self.addr(OFF_NODE0 + n)

    def node_name(self, n: int) -> str:
        return f"ctl{n}"

    def node_number(self, name: str) -> int:
        return int(name.removeprefix("ctl"))

    @property
    def node_range(self) -> range:
        return range(1, self.nodes + 1)

    def ns(self, what) -> str:
        return f"{self.prefix}-n{what}" if isinstance(what, int) else f"{self.prefix}-{what}"

    def port(self, what) -> str:  # the bridge-side veth of a namespace
        return f"v{self.prefix}-n{what}" if isinstance(what, int) else f"v{self.prefix}-{what}"

    @property
    def all_namespaces(self) -> list[str]:
        return [self.ns("br"), self.ns("svc"), self.ns("cl")] + [self.ns(i) for i in self.node_range]

    def lab_namespaces(self) -> list[str]:
        """Existing network namespaces that belong to this prefix."""
        return namespaces(re.escape(self.prefix))

    def hosts_file(self) -> str:
        """/etc/hosts of every controller: node names -> addresses (crmsh resolves them)."""
        hosts = ["127.0.0.1 localhost", f"{self.svc_addr} svc", f"{self.client_addr} client"]
        hosts += [f"{self.node_addr(n)} {self.node_name(n)}" for n in self.node_range]
        return "\n".join(hosts) + "\n"

    def _make_network(self) -> None:
        br = self.ns("br")
        run(["ip", "netns", "add", br])
        for cmd in (["link", "add", "br0", "type", "bridge"], ["link", "set", "br0", "up"],
                    ["link", "set", "lo", "up"]):
            run(["ip", "-n", br, *cmd])
        for what, addr in (("svc", self.svc_addr), ("cl", self.client_addr)):
            run(["ip", "netns", "add", self.ns(what)])
            self._plug(what, addr)

    def _plug(self, what, addr: str) -> None:
        """veth from the bridge namespace into namespace `what`, named eth0 there."""
        br, ns, port = self.ns("br"), self.ns(what), self.port(what)
        run(["ip", "-n", br, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", br, "link", "set", port, "master", "br0", "up"])
        run(["ip", "-n", ns, "addr", "add", f"{addr}/{self.net.prefixlen}", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def isolate(self, n: int) -> None:
        """Network partition: take controller N's bridge port down."""
        run(["ip", "-n", self.ns("br"), "link", "set", self.port(n), "down"])

    def heal(self, n: int) -> None:
        run(["ip", "-n", self.ns("br"), "link", "set", self.port(n), "up"])
