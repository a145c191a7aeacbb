"""The lab's tiny guest without booting it: its initramfs archive, the module load order,
the kernel command line that steers /init, and the libvirt XML (vnetctl/lab/vm/)."""

from __future__ import annotations

import gzip
import stat
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vnetctl.errors import InputError
from vnetctl.lab.proc import LabError
from vnetctl.lab.state import LabHost, LabState
from vnetctl.lab.vm import cpio, libvirtd
from vnetctl.lab.vm.domain_xml import Guest, Nic, domain_xml, guest_mac, network_xml
from vnetctl.lab.vm.guest_init import BASE_CMDLINE, Send, cmdline
from vnetctl.lab.vm.image import MODULES, _has_interpreter, load_order


def read_newc(data: bytes) -> list[tuple[str, int, bytes, tuple[int, int]]]:
    """(name, mode, data, rdev) of each member, checking the format as the kernel does."""
    members, offset = [], 0
    while True:
        assert data[offset : offset + 6] == b"070701"
        fields = [int(data[offset + 6 + 8 * i : offset + 14 + 8 * i], 16) for i in range(13)]
        mode, size, rdev, namesize = fields[1], fields[6], (fields[9], fields[10]), fields[11]
        assert fields[5] == 0 and fields[2] == fields[3] == 0  # no timestamp, owned by root
        name_at = offset + 110
        name = data[name_at : name_at + namesize - 1].decode()
        assert data[name_at + namesize - 1] == 0
        data_at = name_at + namesize + (-(110 + namesize) % 4)
        if name == "TRAILER!!!":
            return members
        members.append((name, mode, data[data_at : data_at + size], rdev))
        offset = data_at + size + (-size % 4)
        assert offset % 4 == 0


def test_the_initramfs_archive_is_newc_gzip_and_the_same_for_the_same_input():
    entries = [
        cpio.directory("bin"),
        cpio.file("bin/busybox", b"\x7fELF...", executable=True),
        cpio.symlink("bin/sh", "busybox"),
        cpio.char_device("dev/console", 5, 1),
        cpio.file("init", b"#!/bin/busybox sh\n"),
    ]
    packed = cpio.initramfs(entries)
    assert packed == cpio.initramfs(entries)
    members = read_newc(gzip.decompress(packed))
    assert [m[0] for m in members] == ["bin", "bin/busybox", "bin/sh", "dev/console", "init"]
    by_name = {m[0]: m for m in members}
    assert stat.S_ISDIR(by_name["bin"][1])
    assert by_name["bin/busybox"][1] == stat.S_IFREG | 0o755
    assert by_name["bin/sh"][2] == b"busybox" and stat.S_ISLNK(by_name["bin/sh"][1])
    assert stat.S_ISCHR(by_name["dev/console"][1]) and by_name["dev/console"][3] == (5, 1)
    assert by_name["init"][2] == b"#!/bin/busybox sh\n"


def test_modules_load_after_what_they_depend_on():
    # the kernel package's own `depends` for the virtio NIC (found on Debian's 6.1)
    depends = {
        "virtio_net": ["net_failover", "virtio", "virtio_ring"],
        "net_failover": ["failover"],
        "failover": [],
        "virtio_pci": ["virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_ring", "virtio"],
        "virtio_pci_modern_dev": [],
        "virtio_pci_legacy_dev": [],
        "virtio": [],
        "virtio_ring": [],
    }
    order = load_order(depends)
    assert sorted(order) == sorted(depends)
    for module, needs in depends.items():
        assert all(order.index(n) < order.index(module) for n in needs), module
    assert order == load_order(dict(reversed(depends.items())))  # stable, whatever the input order


def test_a_module_the_list_lacks_or_a_circle_is_named():
    with pytest.raises(LabError, match="need garp"):
        load_order({"8021q": ["garp"]})
    with pytest.raises(LabError, match="circle"):
        load_order({"a": ["b"], "b": ["a"]})
    assert {"virtio_net", "virtio_pci", "8021q"} <= set(MODULES)


def test_the_command_line_carries_only_checked_values():
    line = cmdline(
        addresses=("10.50.0.21/24",),
        guest_mac="02:00:00:00:00:01",
        vlans=((20, "10.50.20.21/24"), (30, None)),
        sends=(Send("arp", "10.50.0.1", src="02:00:00:00:00:99", count=2),),
    )
    assert line == (
        f"{BASE_CMDLINE} vnet.mac=02:00:00:00:00:01 vnet.ip=10.50.0.21/24 "
        "vnet.vlan=20:10.50.20.21/24 vnet.vlan=30 vnet.send=arp,eth0,02:00:00:00:00:99,10.50.0.1,2"
    )


@pytest.mark.parametrize(
    "options",
    [
        {"addresses": ("10.0.0.1/24 init=/bin/sh",)},
        {"addresses": ("10.0.0.300/24",)},
        {"guest_mac": "02:00:00:00:00:0G"},
        {"vlans": ((4095, None),)},
        {"sends": (Send("tcp", "10.0.0.1"),)},
        {"sends": (Send("arp", "10.0.0.1", dev="eth1;reboot"),)},
        {"sends": (Send("arp", "10.0.0.1 vnet.ip=1.2.3.4/8"),)},
        {"sends": (Send("ping", "10.0.0.1", count=0),)},
    ],
)
def test_a_bad_guest_option_is_refused(options):
    with pytest.raises(InputError):
        cmdline(**options)


def test_a_guest_on_an_ovs_bridge_and_one_on_a_network_port_group():
    ovs = Guest("web1", Nic(bridge="br-app", ovs=True, filter="clean-traffic"), ("10.5.0.2/24",))
    root = ET.fromstring(domain_xml(ovs, "/k/vmlinuz", "/k/initrd.gz", "/var/log/c.log"))
    assert root.get("type") == "qemu" and root.findtext("name") == "web1"
    assert root.find("features/tcg/tb-cache").text == "32"
    assert root.findtext("os/kernel") == "/k/vmlinuz"
    assert "vnet.ip=10.5.0.2/24" in root.findtext("os/cmdline")
    iface = root.find("devices/interface")
    assert iface.get("type") == "bridge" and iface.find("source").get("bridge") == "br-app"
    assert iface.find("virtualport").get("type") == "openvswitch"
    assert iface.find("mac").get("address") == guest_mac("web1") == ovs.mac
    assert iface.find("filterref").get("filter") == "clean-traffic"
    assert iface.find("rom").get("enabled") == "no"
    assert iface.find("driver/host").get("csum") == "off"
    again = ET.fromstring(domain_xml(Guest("web1", Nic(bridge="br-other")), "/k", "/i", "/c"))
    other = ET.fromstring(domain_xml(Guest("web2", Nic(bridge="br-app")), "/k", "/i", "/c"))
    assert root.findtext("uuid")  # defining it again updates it (none: libvirt refuses)
    assert root.findtext("uuid") == again.findtext("uuid") != other.findtext("uuid")

    db = Guest("db1", Nic(network="prod", portgroup="db", tap="vm-db1"))
    iface = ET.fromstring(domain_xml(db, "/k", "/i", "/c")).find("devices/interface")
    assert iface.get("type") == "network"
    assert iface.find("source").attrib == {"network": "prod", "portgroup": "db"}
    assert iface.find("target").get("dev") == "vm-db1" and iface.find("virtualport") is None


@pytest.mark.parametrize(
    "guest",
    [
        Guest("a b", Nic(bridge="br0")),
        Guest("ok", Nic()),
        Guest("ok", Nic(bridge="br0", network="n")),
        Guest("ok", Nic(network="n", portgroup="db'/><x")),
        Guest("ok", Nic(bridge="br0", tap="vnet7")),
        Guest("ok", Nic(bridge="a-bridge-name-too-long")),
        Guest("ok", Nic(bridge="br0"), memory_mib=64),
    ],
)
def test_a_bad_guest_definition_is_refused(guest):
    with pytest.raises(InputError):
        domain_xml(guest, "/k", "/i", "/c")


def test_a_network_in_bridge_mode_with_port_groups():
    root = ET.fromstring(
        network_xml("prod", "br-ovs", ovs=True, portgroups={"web": None, "db": 20})
    )
    assert root.find("forward").get("mode") == "bridge"
    assert root.find("virtualport").get("type") == "openvswitch"
    groups = {g.get("name"): g for g in root.findall("portgroup")}
    assert groups["web"].get("default") == "yes" and groups["db"].get("default") is None
    assert groups["db"].find("vlan/tag").get("id") == "20"
    with pytest.raises(InputError, match="needs ovs"):
        network_xml("prod", "br0", portgroups={"db": 20})


def elf64(*segment_types: int) -> bytes:
    header = bytearray(64)
    header[:5] = b"\x7fELF\x02"
    header[32:40] = (64).to_bytes(8, "little")  # program headers right after
    header[54:56] = (56).to_bytes(2, "little")
    header[56:58] = len(segment_types).to_bytes(2, "little")
    return bytes(header) + b"".join(t.to_bytes(4, "little") + bytes(52) for t in segment_types)


def test_a_static_busybox_is_told_from_a_dynamic_program():
    assert not _has_interpreter(elf64(1, 1))  # PT_LOAD only: static
    assert _has_interpreter(elf64(6, 3, 1))  # a PT_INTERP: needs ld.so
    assert _has_interpreter(Path("/usr/bin/env").read_bytes())
    assert _has_interpreter(b"#!/bin/sh\n")  # not ELF at all


def test_the_lab_record_keeps_libvirt_and_each_libvirtd(tmp_path):
    host = LabHost("l-h1", 1, "vnl-l-h1", "10.9.0.11", ["a", "b", "c"], tmp_path, libvirtd_pid=42)
    state = LabState("l", "10.9.0.0/24", "10.9.0.1", tmp_path, [], [host], libvirt=True)
    again = LabState.from_dict(state.to_dict())
    assert again.libvirt and again.hosts[0].libvirtd_pid == 42
    assert not LabState.from_dict({**state.to_dict(), "libvirt": None}).libvirt


def test_setup_installs_the_lab_vms_packages_and_no_libvirt_service():
    """scripts/setup.sh installs every package `lab up --libvirt` names, without
    recommends, and never libvirt-daemon-system (its service would run a second libvirtd)."""
    root = Path(__file__).resolve().parents[2]
    setup = (root / "scripts" / "setup.sh").read_text()
    listed = setup.split("PACKAGES=(", 1)[1].split(")", 1)[0].split()
    assert set(libvirtd.PACKAGES) <= set(listed)
    assert "libvirt-daemon-system" not in listed
    assert "--no-install-recommends" in (root / "scripts" / "apt-install.sh").read_text()
