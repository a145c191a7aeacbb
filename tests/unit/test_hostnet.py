"""The host's network model (vnet_hostnet): devices and how they stack, addresses and
routes, built once from the facts and again after a change."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vnetctl.catalog import Catalog

host = Catalog().host_lib()
FIXTURES = Path(__file__).parent / "fixtures" / "facts"
TRACE_FIXTURES = Path(__file__).parent / "fixtures" / "trace"


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


def test_a_vms_port_is_what_the_host_says_belongs_to_a_guest():
    bridge = net("vm_ports_bridge.json")  # br-vm: eth1, eth2, vm8p (guarded), vnet7 (a tap)
    assert bridge.vm_port("vnet7") == "a tap" and bridge.vm_port("mvt0") == "a macvtap"
    assert bridge.vm_port("vm8p") == "guarded by a port group (nftables)"
    assert [bridge.vm_port(n) for n in ("eth1", "eth2", "br-vm", "vm8")] == [None] * 4
    ovs = net("vm_ports_ovs.json")  # OVS br-vm (userspace datapath: its own ports are taps)
    assert ovs.vm_port("vnet7") == "marked by libvirt (external_ids:attached-mac)"
    assert ovs.vm_port("vnet9") == "a tap"  # on the bridge, no marks: still a guest's tap
    assert ovs.vm_port("vm8p") == "in port group web (external_ids:vnetctl-port-group)"
    assert [ovs.vm_port(n) for n in ("br-vm", "hostvm", "ovs-netdev", "eth1")] == [None] * 4


def test_a_recording_without_nftables_or_ovs_claims_no_port():
    plain = net("vm_tap.json")  # no `ovs`, no `nft_bridge`
    assert plain.vm_port("tap0") == "a tap" and plain.vm_port("eth1") is None
    ports = net("thiskernel_vm_ports.json")  # veths in br-vm, no port group yet
    assert [ports.vm_port(p) for p in ports.ports("br-vm")] == [None] * 3


def libvirt_nics(status_dir: Path) -> list:
    """What the facts source reads from libvirt's status files: its own grep (argv), run
    on a directory laid out as /run/libvirt, parsed by its own parse."""
    hostnet = sys.modules[host.Facts.MODEL.__module__]
    argv = [status_dir.as_posix() if a == "/run/libvirt" else a for a in hostnet.LIBVIRT_NICS.argv]
    done = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=status_dir)
    return hostnet.LIBVIRT_NICS.parse(done.stdout)


def test_libvirt_status_files_give_each_running_domains_nics_in_order():
    nics = libvirt_nics(TRACE_FIXTURES / "libvirt_h1")  # web1, dup (qemu); a network's file
    assert [(n["domain"], n["index"], n["alias"], n["dev"], n["mac"]) for n in nics] == [
        ("dup", 0, "net0", "vnet8", "52:54:00:aa:00:31"),
        ("dup", 1, "ua-backup", "vnet9", "52:54:00:aa:00:11"),
        ("web1", 0, "net0", "vm1p", "52:54:00:aa:00:01"),
        ("web1", 1, "ua-backup", "vnet9", "52:54:00:aa:00:11"),
    ]  # the disk's target (vda), the network's <interface dev> and <domain name>: none
    hostnet = sys.modules[host.Facts.MODEL.__module__]
    lines = ("<domain type=", "<name>a&amp;b&apos;</name>", "<interface type='x'>", "</interface>")
    escaped = "".join(f"x.xml\0{line}\n" for line in lines)  # grep -Z: FILE NUL MATCH
    assert hostnet.LIBVIRT_NICS.parse(escaped)[0]["domain"] == "a&b'"


def test_an_interface_of_a_domain_libvirt_runs_is_a_vms_port_whatever_its_kind():
    data = json.loads((FIXTURES / "thiskernel_vm_ports.json").read_text())  # veths vnet0-2
    data["libvirt_nics"] = [{"domain": "d", "index": 0, "mac": None, "dev": "vnet1", "alias": None}]
    ports = host.Facts(data).net
    assert ports.vm_port("vnet1") == "an interface of a domain libvirt runs (/run/libvirt)"
    assert ports.vm_port("vnet0") is None
    assert ports.libvirt_nic("vnet1")["domain"] == "d" and ports.libvirt_nic("vnet0") is None


def test_libvirt_status_files_give_each_nics_bridge_port_group_and_vnetctls_metadata():
    nics = {(n["domain"], n["index"]): n for n in libvirt_nics(TRACE_FIXTURES / "libvirt_h1")}
    web = nics[("web1", 0)]
    # vnetctl's namespace only (another namespace's <tier> is not read), unescaped
    assert web["metadata"] == {"tier": "db", "app": "shop&co"}
    assert (web["bridge"], web["port_group"]) == ("br-vx100", None)
    backup = nics[("web1", 1)]
    assert (backup["bridge"], backup["port_group"]) == ("virbr0", "backup")
    assert backup["metadata"] == web["metadata"]  # the domain's, on each of its NICs
    assert nics[("dup", 0)]["metadata"] == {}  # prefix vnetctl bound to another URI
    hostnet = sys.modules[host.Facts.MODEL.__module__]
    status = sys.modules[hostnet.LIBVIRT_NICS.parse.__module__]
    one = '<vnetctl:tier xmlns:vnetctl="https://vnetctl.dev/xmlns/1">web</vnetctl:tier>'
    assert status.metadata_of([one]) == {"tier": "web"}  # one element per key
