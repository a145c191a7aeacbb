"""A migration undone: the bridge's addresses and routes go back to its one port (the
host's NIC), and stay away from a VM's tap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

CATALOG = Catalog()
LIB = CATALOG.host_lib()
# br-mgmt holds 10.98.0.1/24 and the default route; eth0 is its one port
MOVED = json.loads((Path(__file__).parent / "fixtures/facts/bridge_mgmt_moved.json").read_text())


def steps(params: dict, tap: bool = False) -> list[str]:
    facts = json.loads(json.dumps(MOVED))
    if tap:  # as `ip -d -j link` shows libvirt's taps
        (eth0,) = [link for link in facts["links"] if link["ifname"] == "eth0"]
        eth0["linkinfo"] = {"info_kind": "tun", "info_data": {"type": "tap"}}
    planned = LIB.plan(CATALOG.load("linux_bridge"), params, LIB.Facts(facts))
    return [" ".join(step) for step in planned["steps"]]


@pytest.mark.parametrize("params", [{"state": "absent"}, {"ports": []}])
def test_the_bridges_address_goes_back_to_its_nic_but_not_to_a_tap(params):
    params = {"name": "br-mgmt", **params}
    assert "ip addr add 10.98.0.1/24 dev eth0" in steps(params)
    assert "ip route replace default via 10.98.0.254 dev eth0" in steps(params)
    assert not any(s.startswith(("ip addr add", "ip route")) for s in steps(params, tap=True))


def test_the_nic_leaving_a_bridge_that_still_carries_a_vms_tap_leaves_the_address_there():
    facts = json.loads(json.dumps(MOVED))
    tap = {"info_kind": "tun", "info_data": {"type": "tap"}}
    facts["links"].append({"ifname": "vnet0", "master": "br-mgmt", "mtu": 1500, "linkinfo": tap})
    bridge = CATALOG.load("linux_bridge")
    planned = LIB.plan(bridge, {"name": "br-mgmt", "ports": []}, LIB.Facts(facts))
    assert [" ".join(s) for s in planned["steps"]] == ["ip link set dev eth0 nomaster"]
