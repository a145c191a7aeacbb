"""The guest's direction of a tap, for `path_probe`'s inject (a libvirt/qemu VM's port).

A frame written into a tap from the host goes TO the guest; the guest's own frames are
written by qemu into the tap's queue and the kernel receives them on the tap. The probe
reaches that receive path without touching the tap or qemu's queue: a veth pair of its
own (helper_names: from the probe's marker), on its receiving end a clsact qdisc whose
one u32 filter redirects the frames from the VM's MAC to the tap's ingress (tc mirred
ingress redirect).
The marked frames sent into the other end (AF_PACKET) are then received on the tap as
the VM's are: the Linux bridge (its nftables bridge hooks included) or Open vSwitch (its
userspace datapath reads the tap with a packet socket) takes them as sent by the VM, and
a watcher on the tap sees them `in`.

The pair has no address and no IPv6, and the filter passes only the VM's source MAC, so
nothing of the host's own (a DHCP client taking any new link) enters the tap. Its name is
recorded in the probe's watcher state (HELPERS) before it is made, and it is removed by
name: here, in a finally; by the watcher when it ends (collect, or its time bound: this
process was killed mid-inject); by collect; by the stale-state sweep.
Standard library only (runs on the host).
"""

import json
import os
import time

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core as core
    from ansible.module_utils import vnet_probe_frames as probe_frames
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core as core
    import vnet_probe_frames as probe_frames

HELPERS = "helpers"  # in the watcher's state directory: {"links": [name]}


def helper_names(marker):
    """(send end, redirect end) of the probe's pair: 'vpr', 10 hex digits of the
    marker, 's' or 'r' (14 bytes)."""
    base = "vpr" + marker[:10]
    return core.check_ifname(base + "s"), core.check_ifname(base + "r")


def tap_problem(link):
    """Why `link` (an `ip -j -d link` entry) is no tap to send from as its guest, or None."""
    info = link.get("linkinfo") or {}
    if info.get("info_kind") != "tun":
        return "not a tap"
    if (info.get("info_data") or {}).get("type") != "tap":
        return "a tun device (layer 3): the VM's frames have no Ethernet header to probe with"
    return None


def send(directory, marker, tap, mtu, src_mac, frames):
    """Send `frames` (from `src_mac`, the VM's) into `tap`'s receive path through the
    probe's pair; the pair is gone when this returns or raises. Returns the send end's
    name."""
    sender, redirect = helper_names(marker)
    mac = src_mac.replace(":", "").lower()
    if len(mac) != 12 or any(c not in "0123456789abcdef" for c in mac):
        raise core.ModuleError("%r is not a MAC address" % src_mac)
    _record(directory, [sender])
    try:
        core.run(["ip", "link", "add", sender, "mtu", str(mtu), "type", "veth", "peer", "name",
                  redirect, "mtu", str(mtu)])  # fmt: skip
    except core.ModuleError:  # not made: a link of that name, if any, is not the probe's
        _record(directory, [])
        raise
    try:
        for end in (sender, redirect):
            _no_ipv6(end)
            core.run(["ip", "link", "set", "dev", end, "up"])
        _wait_up(sender)
        core.run(["tc", "qdisc", "add", "dev", redirect, "clsact"])
        # only frames from the VM's MAC (the source address, 8 bytes before the network
        # header): whatever else the host might send out of a new link stays out
        core.run(["tc", "filter", "add", "dev", redirect, "ingress", "protocol", "all", "u32",
                  "match", "u32", "0x" + mac[:8], "0xffffffff", "at", "-8",
                  "match", "u16", "0x" + mac[8:], "0xffff", "at", "-4",
                  "action", "mirred", "ingress", "redirect", "dev", tap])  # fmt: skip
        probe_frames.send(sender, frames)
    finally:
        remove([sender])
    return sender


def _wait_up(device, tries=100, every_s=0.02):
    """Until the kernel's link watch has activated the link: before that its qdisc is
    `noop`, which drops every frame sent, silently (under load, for a second or so)."""
    for _ in range(tries):
        link = json.loads(core.run(["ip", "-j", "link", "show", "dev", device]))[0]
        if link.get("operstate") == "UP" and link.get("qdisc") not in (None, "noop"):
            return
        time.sleep(every_s)
    raise core.ModuleError("the probe's link %s did not come up within %g s"
                           % (device, tries * every_s))  # fmt: skip


def _no_ipv6(device):
    """Before the link is up: no link-local address, no router solicitation, no MLD."""
    try:
        with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % device, "w") as knob:
            knob.write("1")
    except FileNotFoundError:
        pass  # IPv6 not in this kernel


def _record(directory, names):
    path = os.path.join(directory, HELPERS)
    with open(path + ".tmp", "w") as out:
        json.dump({"links": names}, out)
    os.replace(path + ".tmp", path)


def remove(names):
    """Delete each link by its name (a veth takes its peer along); one already gone is
    fine. Raises ModuleError for a link that is still there after its delete."""
    left = []
    for name in names:
        core.check_ifname(name)
        deleted = core.run_status(["ip", "link", "del", "dev", name])[0] == 0
        if not deleted and core.run_status(["ip", "link", "show", "dev", name])[0] == 0:
            left.append(name)
    if left:
        raise core.ModuleError("could not remove the probe's link(s) %s" % ", ".join(left))


def remove_recorded(directory):
    """remove() the links recorded in `directory` (a watcher's state), errors swallowed:
    for the watcher, collect and the sweep, which have no one to tell."""
    try:
        with open(os.path.join(directory, HELPERS)) as src:
            names = [n for n in json.load(src).get("links", []) if isinstance(n, str)]
        remove(names)
    except (OSError, ValueError, AttributeError, core.ModuleError):
        pass
