"""libvirt XML for the lab's tiny guests and for bridge-mode networks (pure: data in,
text out; every name checked, every value escaped by ElementTree).

A guest: domain type 'qemu' (software emulation: KVM guests do not boot on this
machine), q35, one vCPU, 96 MiB (64 or less never reaches /init), the kernel and
initramfs of vnetctl.lab.vm.image with the command line of vnetctl.lab.vm.guest_init,
a translation cache of 32 MiB (qemu's default of 1 GiB is most of a guest's memory
otherwise), one virtio NIC without option ROM (iPXE adds a second to every boot) and
with checksum offload off (TCP to a guest across an OVS userspace bridge stalls with
it), and its serial console written to a file. It is destroyed when it powers off,
reboots or crashes (panic=-1), so a broken guest stops instead of looping.
"""

from __future__ import annotations

import hashlib
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from vnetctl.errors import InputError
from vnetctl.lab.vm.guest_init import Send, cmdline, mac

EMULATOR = "/usr/bin/qemu-system-x86_64"
DEFAULT_MEMORY_MIB = 96
TB_CACHE_MIB = 32
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")


def libvirt_name(text: str, what: str = "name") -> str:
    if not _NAME_RE.fullmatch(text or ""):
        raise InputError(
            f"bad {what} {text!r}: 1-63 of A-Z a-z 0-9 _ . - (a letter or digit first)"
        )
    return text


@dataclass(frozen=True)
class Nic:
    """The guest's one NIC: on a libvirt `network` (with a `portgroup`), or straight on a
    `bridge` (`ovs=True`: an Open vSwitch bridge, `<virtualport type='openvswitch'/>`)."""

    network: str | None = None
    portgroup: str | None = None
    bridge: str | None = None
    ovs: bool = False
    mac: str | None = None  # default: from the guest's name (guest_mac)
    filter: str | None = None  # an nwfilter, e.g. clean-traffic
    tap: str | None = None  # the tap's name; default: libvirt's vnetN


@dataclass(frozen=True)
class Guest:
    """A tiny guest and what its /init does (vnetctl.lab.vm.guest_init)."""

    name: str
    nic: Nic
    addresses: tuple[str, ...] = ()
    set_mac: str | None = None  # the guest changes eth0's MAC to this at boot
    vlans: tuple[tuple[int, str | None], ...] = ()
    sends: tuple[Send, ...] = field(default=())
    memory_mib: int = DEFAULT_MEMORY_MIB

    @property
    def mac(self) -> str:
        """The NIC's MAC as libvirt gives it (the guest's own until it changes it)."""
        return self.nic.mac or guest_mac(self.name)


def guest_mac(name: str) -> str:
    """A stable, locally administered MAC for a guest name (qemu's 52:54:00 prefix)."""
    digest = hashlib.sha256(name.encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])


def guest_uuid(name: str) -> str:
    """A stable UUID for a guest name: libvirt refuses to define a guest again under its
    name when the XML has no UUID (it makes a new one, which clashes with the first)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vnetctl-lab-guest:{name}"))


def domain_xml(guest: Guest, kernel: str, initrd: str, console: str) -> str:
    libvirt_name(guest.name, "guest name")
    if not 96 <= guest.memory_mib <= 4096:
        raise InputError(f"guest memory {guest.memory_mib} MiB: use 96 to 4096")
    domain = ET.Element("domain", type="qemu")
    _text(domain, "name", guest.name)
    _text(domain, "uuid", guest_uuid(guest.name))  # the same guest defined again: an update
    _text(domain, "memory", str(guest.memory_mib), unit="MiB")
    _text(domain, "vcpu", "1")
    os_ = ET.SubElement(domain, "os")
    _text(os_, "type", "hvm", arch="x86_64", machine="q35")
    _text(os_, "kernel", kernel)
    _text(os_, "initrd", initrd)
    line = cmdline(guest.addresses, guest.set_mac, guest.vlans, guest.sends)
    _text(os_, "cmdline", line)
    features = ET.SubElement(domain, "features")
    ET.SubElement(features, "acpi")
    tcg = ET.SubElement(features, "tcg")
    _text(tcg, "tb-cache", str(TB_CACHE_MIB), unit="MiB")
    ET.SubElement(domain, "cpu", mode="maximum")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        _text(domain, event, "destroy")
    devices = ET.SubElement(domain, "devices")
    _text(devices, "emulator", EMULATOR)
    devices.append(_interface(guest))
    serial = ET.SubElement(devices, "serial", type="file")
    ET.SubElement(serial, "source", path=console, append="off")
    ET.SubElement(serial, "target", port="0")
    ET.SubElement(devices, "controller", type="usb", model="none")
    ET.SubElement(devices, "memballoon", model="none")
    return ET.tostring(domain, encoding="unicode")


def _interface(guest: Guest) -> ET.Element:
    nic = guest.nic
    if (nic.network is None) == (nic.bridge is None):
        raise InputError(f"guest {guest.name}: its NIC needs a network or a bridge, not both")
    if nic.network is not None:
        iface = ET.Element("interface", type="network")
        source = {"network": libvirt_name(nic.network, "network name")}
        if nic.portgroup:
            source["portgroup"] = libvirt_name(nic.portgroup, "port group")
        ET.SubElement(iface, "source", source)
    else:
        if not _IFNAME_RE.fullmatch(nic.bridge or ""):
            raise InputError(f"bad bridge name {nic.bridge!r}")
        iface = ET.Element("interface", type="bridge")
        ET.SubElement(iface, "source", bridge=nic.bridge)
        if nic.ovs:
            ET.SubElement(iface, "virtualport", type="openvswitch")
    ET.SubElement(iface, "mac", address=mac(guest.mac))
    if nic.tap:
        if not _IFNAME_RE.fullmatch(nic.tap) or nic.tap.startswith(("vnet", "macvtap")):
            raise InputError(f"bad tap name {nic.tap!r} (libvirt keeps vnet* for itself)")
        ET.SubElement(iface, "target", dev=nic.tap)
    ET.SubElement(iface, "model", type="virtio")
    driver = ET.SubElement(iface, "driver", name="qemu")
    ET.SubElement(driver, "host", csum="off")
    ET.SubElement(driver, "guest", csum="off")
    ET.SubElement(iface, "rom", enabled="no")
    if nic.filter:
        ET.SubElement(iface, "filterref", filter=libvirt_name(nic.filter, "filter name"))
    return iface


def network_xml(
    name: str, bridge: str, ovs: bool = False, portgroups: dict[str, int | None] | None = None
) -> str:
    """A libvirt network in bridge mode on an existing bridge; on OVS, port groups may
    carry a VLAN tag (an access port), None for none. The first group is the default."""
    network = ET.Element("network")
    _text(network, "name", libvirt_name(name, "network name"))
    ET.SubElement(network, "forward", mode="bridge")
    if not _IFNAME_RE.fullmatch(bridge):
        raise InputError(f"bad bridge name {bridge!r}")
    ET.SubElement(network, "bridge", name=bridge)
    if ovs:
        ET.SubElement(network, "virtualport", type="openvswitch")
    for i, (group, tag) in enumerate((portgroups or {}).items()):
        attrs = {"name": libvirt_name(group, "port group")}
        if i == 0:
            attrs["default"] = "yes"
        element = ET.SubElement(network, "portgroup", attrs)
        if tag is not None:
            if not ovs or not 1 <= int(tag) <= 4094:
                raise InputError(f"port group {group}: a VLAN tag (1-4094) needs ovs=True")
            vlan = ET.SubElement(element, "vlan")
            ET.SubElement(vlan, "tag", id=str(int(tag)))
    return ET.tostring(network, encoding="unicode")


def _text(parent: ET.Element, tag: str, text: str, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    element.text = text
    return element
