#!/usr/bin/python3
# WANT_JSON
"""A host's part of a VXLAN mesh: one VXLAN device per VNI, learning off, attached to the
segment's bridge, with static head-end replication to every other member (all-zero MAC
fdb entries `dst PEER`).

vnetctl fills `local` (this host's VTEP) and `peers` from the inventory (`members`,
`vtep`); under Ansible, give them directly. The mesh owns the devices it made (marked
with the alias "vnetctl mesh NAME") and their fdb entries: declared segments and peers
are added, others removed. A peer-list change only touches fdb entries.

With `dataplane: ovs` the segment bridge is an Open vSwitch bridge and each peer is a
VXLAN port (remote_ip, key = VNI) on it, all changed in one ovsdb transaction. Ports
per peer rather than one flow-based port: OVS's NORMAL action floods unknown and
broadcast frames to every tunnel port, which is head-end replication, and MAC learning
works per port, with no OpenFlow rules to own or to check for drift. The ports are
`protected` (OVS 2.10+): frames never go from one tunnel port to another, the split
horizon without which three or more hosts would loop broadcasts forever. The mesh owns
the ports whose external_ids name it.
"""

from __future__ import annotations

import sys
import zlib

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host

RESOURCE = "mesh"
ARGUMENT_SPEC = {
    "name": {"type": "str", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "segments": {"type": "list", "elements": "dict"},  # [{vni, bridge, mtu}]
    "port": {"type": "int", "default": 4789},
    "dataplane": {"type": "str", "choices": ["linux", "ovs"], "default": "linux"},
    "ovs_datapath": {"type": "str", "default": "system"},  # netdev: userspace datapath
    "local": {"type": "str"},
    "peers": {"type": "list", "elements": "str"},
    # read by vnetctl on the controller to fill local/peers; ignored on the host
    "members": {"type": "str"},  # host pattern; default: the play's hosts
    "vtep": {"type": "str"},  # this host's VTEP address (a template of host vars)
    "vtep_interface": {"type": "str"},  # ...or the address of this underlay interface
}

ZERO_MAC = "00:00:00:00:00:00"
MAX_VNI = 16777215
# outer Ethernet 14 + IP 20/40 + UDP 8 + VXLAN 8
OVERHEAD = {4: 50, 6: 70}
# fields the kernel cannot change on a live VXLAN device: a change means delete + add
IMMUTABLE = ("local", "port", "underlay")


def alias(name):
    return "vnetctl mesh %s" % name


def device(vni):
    return "vxlan%d" % vni


def read(params, facts):
    if params.get("dataplane") == "ovs":
        return _read_ovs(params, facts)
    owned = {
        link["linkinfo"]["info_data"]["id"]: link
        for link in facts.links.values()
        if link.get("ifalias") == alias(params["name"]) and facts.kind(link["ifname"]) == "vxlan"
    }
    segments = {str(vni): _segment_state(link, facts) for vni, link in owned.items()}
    state = "present" if owned else "absent"
    return {"name": params["name"], "state": state, "segments": segments}


def _segment_state(link, facts):
    info = link["linkinfo"]["info_data"]
    name = link["ifname"]
    return {
        "state": "present",
        "bridge": link.get("master"),
        "mtu": link["mtu"],
        "local": info.get("local"),
        "port": info.get("port"),
        "underlay": info.get("link"),
        "learning": bool(info.get("learning")),
        "up": facts.admin_up(name),
        "peers": sorted(
            e["dst"] for e in facts.fdb if e.get("ifname") == name and e.get("mac") == ZERO_MAC
        ),
    }


def desired(params, current, facts):
    name = params["name"]
    if params["state"] == "absent":
        return {"name": name, "state": "absent"}
    local = params.get("local")
    if not local:
        raise host.ModuleError("mesh %s: no VTEP address for this host (local)" % name)
    underlay, underlay_mtu = _underlay(local, facts)
    overhead = OVERHEAD[6 if ":" in local else 4]
    peers = sorted(set(params.get("peers") or []) - {local})
    want = {}
    segments = params.get("segments") or []
    _check_unique(name, segments)
    for seg in segments:
        vni = _vni(name, seg)
        mtu = seg.get("mtu")
        if mtu is not None and mtu + overhead > underlay_mtu:
            raise host.ModuleError(
                "mesh %s VNI %d: overlay mtu %d + %d (VXLAN over IPv%d) = %d exceeds the "
                "underlay %s mtu %d"
                % (
                    name,
                    vni,
                    mtu,
                    overhead,
                    6 if overhead == 70 else 4,
                    mtu + overhead,
                    underlay,
                    underlay_mtu,
                )
            )
        segment = {
            "state": "present",
            "bridge": seg["bridge"],
            "local": local,
            "port": params["port"],
            "peers": peers,
        }
        if params["dataplane"] == "ovs":
            _check_ovs(name, vni, seg, peers, facts)
            segment["datapath"] = params["ovs_datapath"]
            segment["split_horizon"] = True
        else:
            _check_device_free(name, vni, facts)
            _check_bridge(name, vni, seg, facts)
            segment.update(underlay=underlay, learning=False, up=True)
            if mtu is not None:
                segment["mtu"] = mtu
        want[str(vni)] = segment
    for vni in current.get("segments", {}):
        want.setdefault(vni, {"state": "absent"})
    desired = {"name": name, "state": "present", "segments": want}
    if params["dataplane"] == "ovs":
        desired["dataplane"] = "ovs"
    return desired


def _check_unique(name, segments):
    for key in ("vni", "bridge"):
        values = [seg.get(key) for seg in segments]
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise host.ModuleError(
                "mesh %s: %s used by more than one segment: %s" % (name, key, ", ".join(twice))
            )


def _vni(name, seg):
    vni = seg.get("vni")
    if not isinstance(vni, int) or isinstance(vni, bool) or not 1 <= vni <= MAX_VNI:
        raise host.ModuleError("mesh %s: VNI %r is not within 1..%d" % (name, vni, MAX_VNI))
    if not seg.get("bridge"):
        raise host.ModuleError("mesh %s VNI %d: no bridge named" % (name, vni))
    return vni


def _underlay(local, facts):
    for entry in facts.addrs:
        if any(a.get("local") == local for a in entry.get("addr_info", [])):
            return entry["ifname"], entry["mtu"]
    raise host.ModuleError("VTEP address %s is not configured on any interface" % local)


def _check_device_free(name, vni, facts):
    link = facts.link(device(vni))
    if link is not None and link.get("ifalias") != alias(name):
        owner = link.get("ifalias") or "nothing managed by vnetctl"
        raise host.ModuleError(
            "%s exists and belongs to %s, not to mesh %s" % (device(vni), owner, name)
        )


def _check_bridge(name, vni, seg, facts):
    kind = facts.kind(seg["bridge"])
    if kind not in (None, "bridge", "openvswitch"):
        raise host.ModuleError(
            "mesh %s VNI %d: %s is a %s, not a bridge" % (name, vni, seg["bridge"], kind)
        )


def steps(current, desired, facts):
    """Devices with `ip` (one batch), then every fdb change with `bridge` (one batch);
    on Open vSwitch, every change in one ovs-vsctl transaction."""
    if (desired.get("dataplane") or current.get("dataplane")) == "ovs":
        return _ovs_steps(current, desired, facts)
    links, fdb = [], []
    have = current.get("segments", {})
    if desired["state"] == "present":
        wanted = desired["segments"]
    else:
        wanted = {vni: {"state": "absent"} for vni in have}
    for vni, want in sorted(wanted.items()):
        now = have.get(vni, {"state": "absent"})
        dev = device(int(vni))
        if want["state"] == "absent":
            if now["state"] == "present":
                links.append(("ip", "link del dev %s" % dev))
            continue
        if now["state"] == "present" and any(now[k] != want[k] for k in IMMUTABLE):
            links.append(("ip", "link del dev %s" % dev))
            now = {"state": "absent"}
        links += _device_steps(dev, int(vni), now, want, desired["name"], facts)
        old, new = set(now.get("peers", [])), set(want["peers"])
        fdb += [
            ("bridge", "fdb del %s dev %s dst %s" % (ZERO_MAC, dev, p)) for p in sorted(old - new)
        ]
        fdb += [
            ("bridge", "fdb append %s dev %s dst %s" % (ZERO_MAC, dev, p))
            for p in sorted(new - old)
        ]
    return links + fdb


def _device_steps(dev, vni, now, want, mesh, facts):
    out = []
    if now["state"] == "absent":
        out.append(
            (
                "ip",
                "link add name %s type vxlan id %d local %s dstport %d dev %s nolearning"
                % (dev, vni, want["local"], want["port"], want["underlay"]),
            )
        )
        out.append(("ip", 'link set dev %s alias "%s"' % (dev, alias(mesh))))
    bridge = want["bridge"]
    if facts.link(bridge) is None:  # segment bridges are unique per mesh (desired checks)
        out.append(("ip", "link add name %s type bridge" % bridge))
        out.append(("ip", "link set dev %s up" % bridge))
    if "mtu" in want and want["mtu"] != now.get("mtu"):
        out.append(("ip", "link set dev %s mtu %d" % (dev, want["mtu"])))
    if now.get("bridge") != bridge:
        out.append(("ip", "link set dev %s master %s" % (dev, bridge)))
    if not now.get("up"):
        out.append(("ip", "link set dev %s up" % dev))
    return out


# ---- Open vSwitch dataplane ----------------------------------------------------


def ovs_port(vni, peer):
    """Stable per (VNI, peer) and within 15 characters: vx<VNI>-<16-bit hash of peer>."""
    return "vx%d-%04x" % (vni, zlib.crc32(peer.encode()) & 0xFFFF)


def _owned_ports(name, facts):
    interfaces = (facts.ovs or {}).get("interfaces", {})
    return {
        port: iface
        for port, iface in interfaces.items()
        if iface["external_ids"].get("vnetctl-mesh") == name
    }


def _read_ovs(params, facts):
    name = params["name"]
    bridge_of = {
        p: b for b, ports in ((facts.ovs or {}).get("bridges") or {}).items() for p in ports
    }
    segments = {}
    for port, iface in sorted(_owned_ports(name, facts).items()):
        options = iface["options"]
        seg = segments.setdefault(
            iface["external_ids"]["vnetctl-vni"],
            {
                "state": "present",
                "bridge": bridge_of.get(port),
                "local": options.get("local_ip"),
                "port": int(options.get("dst_port", 4789)),
                "datapath": facts.ovs["datapath"].get(bridge_of.get(port)),
                "peers": [],
            },
        )
        seg["peers"] = sorted(seg["peers"] + [options.get("remote_ip")])
        protected = port in (facts.ovs.get("protected") or ())
        seg["split_horizon"] = seg.get("split_horizon", True) and protected
    state = "present" if segments else "absent"
    return {"name": name, "state": state, "dataplane": "ovs", "segments": segments}


def _check_ovs(name, vni, seg, peers, facts):
    if facts.ovs is None:
        raise host.ModuleError("Open vSwitch is not running on this host (mesh %s)" % name)
    kind = facts.kind(seg["bridge"])
    if seg["bridge"] not in facts.ovs["bridges"] and kind not in (None, "openvswitch"):
        raise host.ModuleError(
            "mesh %s VNI %d: %s is a %s, not an Open vSwitch bridge"
            % (name, vni, seg["bridge"], kind)
        )
    names = [ovs_port(vni, p) for p in peers]
    if len(set(names)) != len(names):
        raise host.ModuleError("mesh %s VNI %d: two peers hash to one port name" % (name, vni))


def _ovs_steps(current, desired, facts):
    out = []
    have = current.get("segments", {})
    wanted = desired["segments"] if desired["state"] == "present" else {}
    owned = _owned_ports(desired["name"], facts)
    for vni in sorted(set(have) | set(wanted)):
        now, want = have.get(vni, {"state": "absent"}), wanted.get(vni, {"state": "absent"})
        keep = (
            want["state"] == "present"
            and now["state"] == "present"
            and all(now[k] == want[k] for k in ("bridge", "local", "port"))
        )
        old = set(now.get("peers", [])) if keep else set()
        new = set(want.get("peers", []))
        out += [
            ("ovs-vsctl", "--if-exists del-port %s" % p)
            for p in sorted(owned)
            if owned[p]["external_ids"].get("vnetctl-vni") == vni
            and (not keep or owned[p]["options"].get("remote_ip") not in new)
        ]
        if want["state"] == "absent":
            continue
        bridge = want["bridge"]
        if bridge not in (facts.ovs or {}).get("bridges", {}):
            out.append(("ovs-vsctl", "--may-exist add-br %s" % bridge))
        if now.get("datapath") != want["datapath"]:
            out.append(("ovs-vsctl", "set bridge %s datapath_type=%s" % (bridge, want["datapath"])))
        protected = facts.ovs.get("protected") or ()
        out += [
            ("ovs-vsctl", "set port %s protected=true" % p)
            for p in sorted(owned)
            if p not in protected
            and owned[p]["external_ids"].get("vnetctl-vni") == vni
            and owned[p]["options"].get("remote_ip") in new & old
        ]
        for peer in sorted(new - old):
            port = ovs_port(int(vni), peer)
            out.append(("ovs-vsctl", "add-port %s %s" % (bridge, port)))
            out.append(("ovs-vsctl", "set port %s protected=true" % port))
            out.append(
                (
                    "ovs-vsctl",
                    "set interface %s type=vxlan options:remote_ip=%s "
                    "options:key=%s options:local_ip=%s options:dst_port=%d "
                    "external_ids:vnetctl-mesh=%s external_ids:vnetctl-vni=%s"
                    % (port, peer, vni, want["local"], want["port"], desired["name"], vni),
                )
            )
    return out


SNAPSHOT_ORDER = 10  # the mesh makes its segment bridges; a bridge snapshot comes after


def snapshot(facts):
    """Each mesh found here (by its owned devices or ports), its VTEP as the interface that
    holds the local address. `members` is left to the caller: it is fleet knowledge."""
    names = {
        link["ifalias"][len(alias("")) :]
        for link in facts.links.values()
        if (link.get("ifalias") or "").startswith(alias(""))
        and facts.kind(link["ifname"]) == "vxlan"
    }
    ovs_names = {
        iface["external_ids"]["vnetctl-mesh"]
        for iface in ((facts.ovs or {}).get("interfaces") or {}).values()
        if "vnetctl-mesh" in iface["external_ids"]
    }
    out = []
    for name in sorted(names | ovs_names):
        ovs = name in ovs_names
        current = read({"name": name, "dataplane": "ovs" if ovs else "linux"}, facts)
        segments = sorted(current["segments"].items(), key=lambda item: int(item[0]))
        first = segments[0][1]
        params = {
            "name": name,
            "port": first["port"],
            "vtep_interface": _holder(first["local"], facts),
        }
        if ovs:
            params.update(dataplane="ovs", ovs_datapath=first["datapath"])
        params["segments"] = [_segment_params(vni, seg) for vni, seg in segments]
        out.append(params)
    return out


def _segment_params(vni, seg):
    out = {"vni": int(vni), "bridge": seg["bridge"]}
    if "mtu" in seg:
        out["mtu"] = seg["mtu"]
    return out


def _holder(address, facts):
    for entry in facts.addrs:
        if any(a.get("local") == address for a in entry.get("addr_info", [])):
            return entry["ifname"]
    raise host.ModuleError("no interface holds the VTEP address %s" % address)


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
