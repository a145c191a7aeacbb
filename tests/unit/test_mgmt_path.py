"""The management path and the steps that touch it, planned from recorded facts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

LIB = Catalog().host_lib()
SAFETY = __import__("sys").modules["vnet_safety"]
FACTS = json.loads((Path(__file__).parent / "fixtures/facts/underlay_only.json").read_text())


def bridged() -> dict:
    """The same host with eth0 a port of br0, which holds the address."""
    facts = copy.deepcopy(FACTS)
    eth0 = next(link for link in facts["links"] if link["ifname"] == "eth0")
    eth0["master"] = "br0"
    facts["links"].append({"ifname": "br0", "mtu": 1500, "flags": ["UP"],
                           "linkinfo": {"info_kind": "bridge", "info_data": {}}})  # fmt: skip
    for entry in facts["addrs"]:
        if entry["ifname"] == "eth0":
            entry["ifname"] = "br0"
    return facts


def test_the_path_is_the_holder_and_what_is_below_it():
    plain = SAFETY.management_path(LIB.Facts(FACTS), "10.98.0.1")
    assert plain == {"address": "10.98.0.1", "interface": "eth0", "path": ["eth0"]}
    bridge = SAFETY.management_path(LIB.Facts(bridged()), "10.98.0.1")
    assert bridge == {"address": "10.98.0.1", "interface": "br0", "path": ["br0", "eth0"]}
    assert SAFETY.management_path(LIB.Facts(FACTS), "192.0.2.1") is None  # NAT: not ours


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ([("ip", "link set dev eth0 down")], [("eth0", "down", True)]),
        ([("ip", "link del dev eth0")], [("eth0", "delete", True)]),
        ([("ip", "link set dev eth0 mtu 68")], [("eth0", "mtu too low", True)]),
        ([("ip", "link set dev eth0 mtu 1400")], [("eth0", "mtu lowered", False)]),
        ([("ip", "link set dev eth0 mtu 9000")], []),
        ([("ip", "link set dev eth0 master br9")], [("eth0", "enslaved", True)]),
        ([("ovs-vsctl", "add-port br-ovs eth0")], [("eth0", "enslaved", True)]),
        (
            [("ip", "link set dev eth0 master br9"), ("ip", "addr add 10.98.0.1/24 dev br9"),
             ("ip", "addr del 10.98.0.1/24 dev eth0")],
            [("eth0", "moved into br9", False)],
        ),
        ([("ip", "addr del 10.98.0.1/24 dev eth0")], [("eth0", "address removed", True)]),
        (  # a bond member is set down to be enslaved: part of its move
            [("ip", "link set dev eth0 down"), ("ip", "link set dev eth0 master bond0"),
             ("ip", "addr add 10.98.0.1/24 dev bond0"), ("ip", "addr del 10.98.0.1/24 dev eth0")],
            [("eth0", "set down to move into bond0", False), ("eth0", "moved into bond0", False)],
        ),
        (
            [("ovs-vsctl", "add-port br-up eth0"), ("ip", "addr add 10.98.0.1/24 dev br-up"),
             ("ip", "addr del 10.98.0.1/24 dev eth0")],
            [("eth0", "moved into br-up", False)],
        ),
        ([("ovs-vsctl", "add-bond br-up bond0 eth0 eth9 lacp=active")],
         [("eth0", "enslaved", True)]),
        ([("ovs-vsctl", "--if-exists del-port eth0")], [("eth0", "delete", True)]),
        ([("ip", "link set dev eth1 down"), ("bridge", "fdb append 0:0:0:0:0:0 dev vx dst x")],
         []),
    ],
)  # fmt: skip
def test_steps_touching_the_path_are_named(steps, expected):
    facts = LIB.Facts(FACTS)
    mgmt = SAFETY.management_path(facts, "10.98.0.1")
    found = SAFETY.classify(steps, mgmt, facts)
    assert [(f["device"], f["effect"], f["cuts"]) for f in found] == expected


def test_a_port_of_the_management_bridge_is_on_the_path():
    facts = LIB.Facts(bridged())
    mgmt = SAFETY.management_path(facts, "10.98.0.1")
    found = SAFETY.classify([("ip", "link set dev eth0 nomaster")], mgmt, facts)
    assert [(f["device"], f["effect"]) for f in found] == [("eth0", "released from its master")]
