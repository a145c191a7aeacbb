"""The host's network model (vnet_hostnet): devices and how they stack, addresses and
routes, built once from the facts and again after a change."""

from __future__ import annotations

import json
from pathlib import Path

from vnetctl.catalog import Catalog

host = Catalog().host_lib()
FIXTURES = Path(__file__).parent / "fixtures" / "facts"


def net(name: str):
    return host.Facts(json.loads((FIXTURES / name).read_text())).net


def test_a_bond_sits_on_its_members_and_a_vlan_on_its_parent():
    bonded = net("fullkernel_bond_active_backup.json")
    assert bonded.lowers("bond0") == ["eth1", "eth2"] and bonded.uppers("eth1") == ["bond0"]
    assert bonded.device("bond0").kind == "bond" and bonded.device("eth1").kind is None
    vlans = net("fullkernel_vlans.json")
    assert vlans.lowers("eth1.100") == ["eth1"]
    assert vlans.uppers("eth1") == ["eth1.100", "eth1.200"]


def test_a_vxlan_device_sits_on_its_underlay_and_a_bridge_on_it():
    mesh = net("mesh_vni100.json")
    assert mesh.lowers("vxlan100") == ["eth0"] and mesh.lowers("br-vx100") == ["vxlan100"]
    assert mesh.below("br-vx100") == {"br-vx100", "vxlan100", "eth0"}


def test_an_open_vswitch_bridge_sits_on_its_ports_and_bond_members():
    teamed = net("ovs_teamed.json")
    assert teamed.lowers("br-vm") == ["eth1", "eth2"]  # hostvm: internal, beside it
    assert teamed.ovs_bridge("hostvm") == "br-vm" and teamed.uppers("eth1") == ["br-vm"]
    assert teamed.ovs_ports("br-vm") == {"bond0": ["eth1", "eth2"], "br-vm": ["br-vm"],
                                         "hostvm": ["hostvm"]}  # fmt: skip
    assert net("fullkernel_plain.json").ovs_bridge("eth1") is None


def test_addresses_and_their_holders():
    moved = net("ovs_nic_routed_moved.json")
    assert moved.addresses("br-up") == ["192.168.60.2/24", "fd00:60::2/64"]
    assert moved.addresses("eth1") == [] and moved.holder("192.168.60.2") == "br-up"
    assert moved.holders() == {"eth0", "br-up"}
    import ipaddress

    assert moved.on_link(ipaddress.ip_address("192.168.60.1")) == ["br-up"]
    assert moved.through("br-up")[-1] == "default via 192.168.60.1"


class Host:
    """A live host's runner: `ip -j ... link` and `ip -j addr`, counted."""

    def __init__(self):
        self.calls, self.mtu = [], 1500

    def __call__(self, argv, stdin=None):
        self.calls.append(argv)
        if "link" in argv:
            return json.dumps([{"ifname": "eth0", "mtu": self.mtu, "flags": ["UP"]}])
        return json.dumps([{"ifname": "eth0", "addr_info": []}])


def test_the_model_is_built_once_and_again_after_a_change_reading_only_what_is_asked():
    runner = Host()
    facts = host.Facts(runner=runner)
    assert facts.link("eth0")["mtu"] == 1500 and facts.kind("eth0") is None
    assert facts.admin_up("eth0") and facts.net is facts.net
    assert runner.calls == [["ip", "-j", "-d", "link", "show"]]  # no addresses asked yet
    runner.mtu = 9000
    facts.refresh()
    assert facts.net.device("eth0").mtu == 9000 and facts.net.addresses("eth0") == []
    assert len(runner.calls) == 3


def test_a_devices_tc_qdiscs_and_classes_as_the_tc_fact_holds_them():
    shaped = net("shaping_nioc.json")
    tc = shaped.tc("eth1")
    assert {q["kind"] for q in tc["qdiscs"]} >= {"htb"} and "1:1" in tc["classes"]
    assert shaped.tc("eth0")["classes"] is None
