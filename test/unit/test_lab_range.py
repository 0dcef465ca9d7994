"""The lab refuses a network the host uses (lab.topology.check_range, run before anything is made)."""

import ipaddress

import pytest

from lab.procs import LabError
from lab.topology import check_range


def test_a_network_of_the_host_is_refused():
    with pytest.raises(LabError, match="overlaps 127.0.0.1/8 on host interface lo"):
        check_range(ipaddress.ip_network("127.0.0.0/24"))


def test_an_unused_network_is_accepted():
    check_range(ipaddress.ip_network("203.0.113.0/24"))
