"""The management path and the steps that touch it, planned from recorded facts."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

LIB = Catalog().host_lib()
SAFETY = __import__("sys").modules["vnet_safety"]
FIXTURES = Path(__file__).parent / "fixtures/facts"
FACTS = json.loads((FIXTURES / "underlay_only.json").read_text())
ROUTED = json.loads((FIXTURES / "underlay_routed.json").read_text())  # default via .254


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
    assert plain == {"address": "10.98.0.1", "interface": "eth0", "path": ["eth0"], "client": None}
    bridge = SAFETY.management_path(LIB.Facts(bridged()), "10.98.0.1", "10.98.0.200")
    assert bridge == {"address": "10.98.0.1", "interface": "br0", "path": ["br0", "eth0"],
                      "client": "10.98.0.200"}  # fmt: skip
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
    assert [(f["device"], f["effect"]) for f in found] == [("eth0", "last port released")]


def effects(steps, facts=FACTS, client=None, address="10.98.0.1"):
    facts = LIB.Facts(facts)
    found = SAFETY.classify(steps, SAFETY.management_path(facts, address, client), facts)
    return [(f["device"], f["effect"], f["cuts"]) for f in found]


ON_LINK = "10.98.0.200"  # the controller, in the management address's subnet


def test_a_prefix_that_no_longer_holds_the_controller_cuts_the_host_off():
    """The address stays, but with /32 the controller is no longer on-link (issue 31)."""
    to_32 = [("ip", "addr add 10.98.0.1/32 dev eth0"), ("ip", "addr del 10.98.0.1/24 dev eth0")]
    assert effects(to_32, client=ON_LINK) == [("eth0", "controller no longer on-link", True)]
    assert effects(to_32) == []  # the controller's address unknown: only the address counts
    to_16 = [("ip", "addr add 10.98.0.1/16 dev eth0"), ("ip", "addr del 10.98.0.1/24 dev eth0")]
    assert effects(to_16, client=ON_LINK) == []


def with_secondary(primary: str) -> dict:
    """eth0 with `primary` first and the management address 10.98.0.1 its secondary."""
    facts = copy.deepcopy(FACTS)
    (entry,) = [e for e in facts["addrs"] if e["ifname"] == "eth0"]
    mgmt = next(a for a in entry["addr_info"] if a["local"] == "10.98.0.1")
    first = dict(mgmt, local=primary)
    entry["addr_info"] = [first, dict(mgmt, secondary=True)]
    facts["promote_secondaries"] = {"eth0": False}
    return facts


def test_deleting_the_primary_takes_the_management_secondary_along_unless_promoted():
    facts = with_secondary("10.98.0.5")
    renumber = [("ip", "addr add 10.98.0.6/24 dev eth0"), ("ip", "addr del 10.98.0.5/24 dev eth0")]
    assert effects(renumber, facts) == [("eth0", "address removed", True)]
    promoted = [renumber[0], ("sysctl", "net/ipv4/conf/eth0/promote_secondaries=1"), renumber[1],
                ("sysctl", "net/ipv4/conf/eth0/promote_secondaries=0")]  # fmt: skip
    assert effects(promoted, facts) == []
    facts["promote_secondaries"] = {"eth0": True}  # as systemd sets it
    assert effects(renumber, facts) == []


def test_the_route_to_a_controller_further_away_is_followed():
    far = "192.0.2.7"  # reached by the default route via 10.98.0.254
    assert effects([("ip", "route del default via 10.98.0.254 dev eth0")], ROUTED, far) == [
        ("eth0", "no route to the controller", True)
    ]
    assert effects([("ip", "route replace default via 10.98.0.253 dev eth0")], ROUTED, far) == [
        ("eth0", "route to the controller changed", False)
    ]
    gateway_gone = [("ip", "addr add 10.98.0.1/32 dev eth0"),
                    ("ip", "addr del 10.98.0.1/24 dev eth0")]  # fmt: skip
    assert effects(gateway_gone, ROUTED, far) == [("eth0", "no route to the controller", True)]
    assert effects([("ip", "route replace 198.51.100.0/24 via 10.98.0.253 dev eth0")], ROUTED,
                   far) == []  # fmt: skip


def test_port_security_on_the_path_drops_the_controllers_frames():
    facts = bridged()
    nft = [("nft", "add table bridge vnetctl"),
           ("nft", "add element bridge vnetctl guarded { eth0 }"),
           ("nft", "add element bridge vnetctl guarded { vnet0 }")]  # fmt: skip
    assert effects(nft, facts) == [("eth0", "port security", True)]
    assert effects([("nft", "delete element bridge vnetctl guarded { eth0 }")], facts) == []
    flow = "cookie=0x5,table=0,priority=100,in_port=eth0,dl_src=52:54:00:00:00:01,actions=drop"
    assert effects([("ovs-ofctl", "br0 add " + flow)], facts) == [("eth0", "port security", True)]
    assert effects([("ovs-ofctl", "br0 delete cookie=0x5,in_port=eth0")], facts) == []
    inbound = ("nft", "add chain netdev vnetctl inbound/eth0 { type filter hook egress "
                      "device eth0 priority 0 ; }")  # fmt: skip
    assert effects([inbound], facts) == [("eth0", "port security", True)]


def test_a_copy_of_the_paths_frames_to_a_promiscuous_port_is_no_cut():
    """Copies (vnet_nft_taps) drop nothing: a load balancer may see the uplink's
    traffic, the NIC the controller reaches the host by."""
    copy = [
        (
            "nft",
            "add chain netdev vnetctl copy/vnet0/eth0 { type filter hook ingress "
            "device eth0 priority 0 ; }",
        ),
        (
            "nft",
            "add rule netdev vnetctl copy/vnet0/eth0 ether saddr != "
            "52:54:00:00:00:01 return comment forged-source.0",
        ),
        ("nft", "add rule netdev vnetctl copy/vnet0/eth0 dup to vnet0 comment copy.0"),
    ]
    assert effects(copy, bridged()) == []


def test_a_migration_undone_gives_the_address_back_below_and_is_no_cut():
    facts = bridged()
    undo = [("ip", "link del dev br0"), ("ip", "addr add 10.98.0.1/24 dev eth0")]
    assert effects(undo, facts, ON_LINK) == [("br0", "deleted, its addresses move to eth0", False)]
    assert effects(undo[:1], facts, ON_LINK) == [("br0", "delete", True)]
    elsewhere = [undo[0], ("ip", "addr add 10.98.0.1/24 dev eth1")]  # not on the path
    assert effects(elsewhere, facts, ON_LINK) == [("br0", "delete", True)]


def test_vlan_changes_on_the_path_are_named():
    facts = bridged()
    assert effects([("bridge", "vlan del dev eth0 vid 1")], facts) == [
        ("eth0", "VLANs changed", False)
    ]
    assert effects([("ovs-vsctl", "set port eth0 tag=100")], facts) == [
        ("eth0", "VLANs changed", False)
    ]


def test_releasing_the_last_port_of_the_bridge_that_keeps_the_address_cuts():
    facts = bridged()
    release = [("ip", "link set dev eth0 nomaster")]
    assert effects(release, facts) == [("eth0", "last port released", True)]
    undo = [
        *release,
        ("ip", "addr add 10.98.0.1/24 dev eth0"),
        ("ip", "addr del 10.98.0.1/24 dev br0"),
    ]
    assert effects(undo, facts, ON_LINK) == [("eth0", "released from its master", False)]
    swap = [*release, ("ip", "link set dev eth1 master br0")]  # another port carries it on
    assert effects(swap, facts) == [("eth0", "released from its master", False)]


@pytest.mark.parametrize("explicit", [False, True])
def test_check_mode_refuses_what_the_real_run_refuses(explicit):
    """A cut is a failed task in check mode, with the real run's reason; under a rollback
    timer (explicit) the real run applies it, and check mode says it would."""
    link = Catalog().load("link")
    guard = SAFETY.Guard("10.98.0.1", None, explicit, LIB.ModuleError, ON_LINK, check=True)
    params = {"name": "eth0", "admin_state": "down"}
    result = LIB.execute(link, params, True, LIB.Facts(FACTS), guard=guard)
    assert [(t["device"], t["effect"]) for t in result["management_path"]] == [("eth0", "down")]
    if explicit:
        assert not result["failed"] and result["msg"].startswith("would be changed")
    else:
        assert result["failed"] and result["msg"].startswith("refused before any change")


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def test_the_ports_of_an_open_vswitch_bridge_holding_the_address_are_on_the_path():
    """OVS ports have no kernel master (userspace datapath) or `ovs-system` (the kernel's):
    before the host's model read OVSDB, br-up's NIC was not on the path, and setting it
    down or removing it from the bridge ran without the guard."""
    moved = recorded("ovs_nic_routed_moved.json")  # br-up holds 192.168.60.2; eth1 its port
    facts = LIB.Facts(moved)
    assert SAFETY.management_path(facts, "192.168.60.2")["path"] == ["br-up", "eth1"]
    assert effects([("ip", "link set dev eth1 down")], moved, address="192.168.60.2") == [
        ("eth1", "down", True)
    ]
    assert effects([("ovs-vsctl", "del-port br-up eth1")], moved, address="192.168.60.2") == [
        ("eth1", "delete", True)
    ]


def test_an_internal_port_holding_the_address_is_carried_by_its_bridges_uplinks():
    teamed = recorded("ovs_teamed.json")  # hostvm (internal) holds 192.168.50.11; bond0 eth1+2
    mgmt = SAFETY.management_path(LIB.Facts(teamed), "192.168.50.11")
    assert mgmt["interface"] == "hostvm" and mgmt["path"] == ["br-vm", "eth1", "eth2", "hostvm"]
    released = effects(
        [("ovs-vsctl", "del-bond-iface bond0 eth2")], teamed, address="192.168.50.11"
    )
    assert released == [("eth2", "released from its master", False)]
