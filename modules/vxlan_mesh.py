#!/usr/bin/python3
# WANT_JSON
"""A host's part of a VXLAN mesh: one VXLAN device per VNI, learning off, attached to the
segment's bridge, with static head-end replication to every other member (all-zero MAC
fdb entries `dst PEER`).

vnetctl fills `local` (this host's VTEP) and `peers` from the inventory (`members`,
`vtep`); under Ansible, give them directly. The mesh owns the devices it made (marked
with the alias "vnetctl-mesh:NAME"; devices marked "vnetctl mesh NAME" by earlier
versions are owned too, and re-marked) and their fdb entries: declared segments and
peers are added, others removed. A peer-list change only touches fdb entries.

With `dataplane: ovs` the segment bridge is an Open vSwitch bridge and each peer is a
VXLAN port on it (module_utils/vnet_mesh_ovs.py).

Rollback target: read() also finds a declared VNI's device `vxlanVNI` that carries no
alias (made, but not yet marked, when a batch failed), and records whether each
declared segment bridge existed (`bridges`): a rollback deletes those it created.
"""

import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_mesh_ovs as ovs
    from ansible.module_utils import vnet_persist as bootcfg
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_mesh_ovs as ovs
    import vnet_persist as bootcfg

RESOURCE = "mesh"
MAX_VNI = 16777215  # 24 bits
SEGMENT_SPEC = {
    "vni": {"type": "int", "required": True, "range": [1, MAX_VNI]},
    "bridge": {"type": "ifname", "required": True},
    "mtu": {"type": "int", "range": [68, 65535]},
}
ARGUMENT_SPEC = {
    "name": {"type": "meshname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "segments": {"type": "list", "elements": "dict", "options": SEGMENT_SPEC},
    "port": {"type": "int", "default": 4789, "range": [1, 65535]},  # UDP
    "dataplane": {"type": "str", "choices": ["linux", "ovs"], "default": "linux"},
    # netdev: userspace datapath
    "ovs_datapath": {"type": "str", "choices": ["system", "netdev"], "default": "system"},
    "local": {"type": "str"},
    "peers": {"type": "list", "elements": "str"},
    # read by vnetctl on the controller to fill local/peers, and stripped there
    "members": {"type": "str", "controller": True},  # host pattern; default: the play's
    "vtep": {"type": "str", "controller": True},  # this host's VTEP address (a template)
    "vtep_interface": {"type": "ifname", "controller": True},  # ...or this interface's
}

ZERO_MAC = "00:00:00:00:00:00"
# outer Ethernet 14 + IP 20/40 + UDP 8 + VXLAN 8
OVERHEAD = {4: 50, 6: 70}
# fields the kernel cannot change on a live VXLAN device: a change means delete + add
IMMUTABLE = ("local", "port", "underlay")
ABSENT = {"state": "absent"}
MARKER = "vnetctl-mesh:"  # one token: `ip link set dev D alias vnetctl-mesh:NAME`
LEGACY_MARKER = "vnetctl mesh "  # written quoted by earlier versions


def alias(name):
    return MARKER + name


def mesh_of(ifalias):
    """The mesh a device's alias marks it for (either form), or None."""
    for marker in (MARKER, LEGACY_MARKER):
        if (ifalias or "").startswith(marker):
            return ifalias[len(marker) :]
    return None


def device(vni):
    return "vxlan%d" % vni


def peer_devices(params):
    """{device: [peer VTEPs]} the task declares (its `peers` filled in): a Linux
    segment's VXLAN device with every peer, an OVS segment's port per peer."""
    peers = sorted(params.get("peers") or [])
    out = {}
    for seg in params.get("segments") or []:
        if params.get("dataplane") == "ovs":
            out.update({ovs.port_name(seg["vni"], p): [p] for p in peers})
        else:
            out[device(seg["vni"])] = peers
    return out


def _declared(params):
    """Declared segments well-formed enough to name a device and a bridge."""
    return [
        seg
        for seg in params.get("segments") or []
        if isinstance(seg, dict) and isinstance(seg.get("vni"), int) and seg.get("bridge")
    ]


def read(params, facts):
    name = params["name"]
    if params.get("dataplane") == "ovs":
        current = ovs.read(name, facts)
        exists = ovs.bridge_exists
    else:
        current = _read_linux(name, params, facts)
        exists = _bridge_exists
    bridges = {
        seg["bridge"]: "present" if exists(seg["bridge"], facts) else "absent"
        for seg in _declared(params)
    }
    if bridges:
        current["bridges"] = bridges
    return current


def _bridge_exists(bridge, facts):
    return facts.link(bridge) is not None


def _read_linux(name, params, facts):
    declared = {device(seg["vni"]) for seg in _declared(params)}
    segments, owned = {}, False
    for link in facts.links.values():
        if facts.kind(link["ifname"]) != "vxlan":
            continue
        mine = mesh_of(link.get("ifalias")) == name
        if mine or (link["ifname"] in declared and not link.get("ifalias")):
            segments[str(link["linkinfo"]["info_data"]["id"])] = _segment_state(link, facts)
            owned = owned or mine
    return {"name": name, "state": "present" if owned else "absent", "segments": segments}


def _segment_state(link, facts):
    info = link["linkinfo"]["info_data"]
    name = link["ifname"]
    return {
        "state": "present",
        "alias": link.get("ifalias"),
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
        return _desired_absent(name, current)
    local = _address(name, "local", params.get("local"))
    underlay, underlay_mtu = _underlay(local, facts)
    overhead = OVERHEAD[6 if ":" in local else 4]
    peers = sorted({_address(name, "peer", p) for p in params.get("peers") or []} - {local})
    want = {}
    segments = params.get("segments") or []
    _check_unique(name, segments)
    for seg in segments:
        vni = seg["vni"]  # 1..MAX_VNI: ARGUMENT_SPEC
        mtu = seg.get("mtu")
        if mtu is not None and mtu + overhead > underlay_mtu:
            ip_version = 6 if overhead == 70 else 4
            raise host.ModuleError(
                "mesh %s VNI %d: overlay mtu %d + %d (VXLAN over IPv%d) = %d exceeds the "
                "underlay %s mtu %d"
                % (name, vni, mtu, overhead, ip_version, mtu + overhead, underlay, underlay_mtu)
            )
        segment = {
            "state": "present",
            "bridge": seg["bridge"],
            "local": local,
            "port": params["port"],
            "peers": peers,
        }
        if params["dataplane"] == "ovs":
            ovs.check(name, vni, seg, peers, facts)
            segment["datapath"] = params["ovs_datapath"]
            segment["split_horizon"] = True
        else:
            _check_device_free(name, vni, facts)
            _check_bridge(name, vni, seg, facts)
            segment.update(alias=alias(name), underlay=underlay, learning=False, up=True)
            if mtu is not None:
                segment["mtu"] = mtu
        want[str(vni)] = segment
    for vni in current.get("segments", {}):
        want.setdefault(vni, dict(ABSENT))
    desired = {"name": name, "state": "present", "segments": want}
    if segments:
        desired["bridges"] = {seg["bridge"]: "present" for seg in segments}
    if params["dataplane"] == "ovs":
        desired["dataplane"] = "ovs"
    return desired


def _desired_absent(name, current):
    """Every device or port the mesh owns goes; a declared VNI's unmarked device found by
    read() is not the mesh's to delete, and is left as it is."""
    segments = {
        vni: dict(ABSENT) if "alias" not in seg or mesh_of(seg["alias"]) == name else seg
        for vni, seg in current.get("segments", {}).items()
    }
    desired = {"name": name, "state": "absent", "segments": segments}
    if current.get("dataplane") == "ovs":
        desired["dataplane"] = "ovs"
    return desired


def _address(name, what, value):
    if not value and what == "local":
        raise host.ModuleError("mesh %s: no VTEP address for this host (local)" % name)
    try:
        import ipaddress  # noqa: PLC0415 (only where the mesh runs: ~1 ms)

        return str(host.ip_value(ipaddress.ip_address, value))
    except ValueError:
        message = "mesh %s: %s %r is not an IP address" % (name, what, value)
        raise host.ModuleError(message) from None


def _check_unique(name, segments):
    for key in ("vni", "bridge"):
        values = [seg.get(key) for seg in segments]
        twice = sorted({str(v) for v in values if values.count(v) > 1})
        if twice:
            raise host.ModuleError(
                "mesh %s: %s used by more than one segment: %s" % (name, key, ", ".join(twice))
            )


def _underlay(local, facts):
    device = facts.net.addressed_device(facts.net.holder(local))  # planned ones too
    if device is None:
        raise host.ModuleError("VTEP address %s is not configured on any interface" % local)
    return device.name, device.mtu


def _check_device_free(name, vni, facts):
    link = facts.link(device(vni))
    if link is not None and mesh_of(link.get("ifalias")) != name:
        owner = mesh_of(link.get("ifalias"))
        owner = "mesh %s" % owner if owner else link.get("ifalias") or "nothing managed by vnetctl"
        raise host.ModuleError(
            "%s exists and belongs to %s, not to mesh %s" % (device(vni), owner, name)
        )


def _check_bridge(name, vni, seg, facts):
    kind = facts.kind(seg["bridge"])
    if facts.link(seg["bridge"]) is not None and kind not in ("bridge", "openvswitch"):
        raise host.ModuleError(
            "mesh %s VNI %d: %s is a %s, not a bridge"
            % (name, vni, seg["bridge"], kind or "network interface")
        )


def steps(current, desired, facts):
    """Devices with `ip` (one batch), then every fdb change with `bridge` (one batch);
    on Open vSwitch, every change in one ovs-vsctl transaction."""
    if (desired.get("dataplane") or current.get("dataplane")) == "ovs":
        return ovs.steps(current, desired, facts)
    links, fdb = [], []
    have = current.get("segments", {})
    wanted = desired.get("segments", {})
    present = desired["state"] == "present"
    for vni in sorted(set(have) | set(wanted)):
        now, want = have.get(vni, ABSENT), wanted.get(vni, ABSENT)
        dev = device(int(vni))
        if want["state"] == "absent" or not present:  # absent: only deletions
            if want["state"] == "absent" and now["state"] == "present":
                links.append(host.step("ip", "link", "del", "dev", dev))
            continue
        if now["state"] == "present" and any(now[k] != want[k] for k in IMMUTABLE):
            links.append(host.step("ip", "link", "del", "dev", dev))
            now = ABSENT
        links += _device_steps(dev, int(vni), now, want, facts)
        old, new = set(now.get("peers", [])), set(want["peers"])
        fdb += [_fdb("del", dev, p) for p in sorted(old - new)]
        fdb += [_fdb("append", dev, p) for p in sorted(new - old)]
    # a rollback target records which segment bridges did not exist: those go again
    for bridge, state in sorted((desired.get("bridges") or {}).items()):
        if state == "absent" and facts.kind(bridge) == "bridge":
            links.append(host.step("ip", "link", "del", "dev", bridge))
    return links + fdb


def _fdb(action, dev, peer):
    return host.step("bridge", "fdb", action, ZERO_MAC, "dev", dev, "dst", peer)


def _device_steps(dev, vni, now, want, facts):
    out = []
    if now["state"] == "absent":
        add = ["link", "add", "name", dev, "type", "vxlan", "id", vni, "local", want["local"]]
        add += ["dstport", want["port"], "dev", want["underlay"], "nolearning"]
        out.append(host.step("ip", *add))
    if now.get("alias") != want["alias"]:  # new, or marked by an earlier version
        out.append(host.step("ip", "link", "set", "dev", dev, "alias", want["alias"]))
    bridge = want["bridge"]
    if facts.link(bridge) is None:  # segment bridges are unique per mesh (desired checks)
        out.append(host.step("ip", "link", "add", "name", bridge, "type", "bridge"))
        out.append(host.step("ip", "link", "set", "dev", bridge, "up"))
    if "mtu" in want and want["mtu"] != now.get("mtu"):
        out.append(host.step("ip", "link", "set", "dev", dev, "mtu", want["mtu"]))
    if now.get("bridge") != bridge:
        out.append(host.step("ip", "link", "set", "dev", dev, "master", bridge))
    if not now.get("up"):
        out.append(host.step("ip", "link", "set", "dev", dev, "up"))
    return out


def persist(params, desired, facts, units):
    """Linux dataplane (OVS keeps its own configuration): per segment the VXLAN device
    (networkd makes it from its underlay's VXLAN=), its alias (a .link file: the mark
    the mesh owns it by), its bridge and its fdb peers ([BridgeFDB]); the segment bridge
    too, unless a linux_bridge task declares it (see vnet_persist)."""
    if desired["state"] != "present" or desired.get("dataplane") == "ovs":
        return
    for vni, seg in sorted(desired["segments"].items(), key=lambda item: int(item[0])):
        if seg["state"] != "present":
            continue
        dev = device(int(vni))
        vxlan = [("VNI", int(vni)), ("Local", seg["local"]), ("DestinationPort", seg["port"]),
                 ("MacLearning", seg["learning"])]  # fmt: skip
        units.netdev(dev, "vxlan", [("VXLAN", vxlan)], mtu=seg.get("mtu"))
        units.link(dev, [("Alias", seg["alias"])])
        units.network(seg["underlay"], [("Network", [("VXLAN", dev)])])
        fdb = [("BridgeFDB", [("MACAddress", ZERO_MAC), ("Destination", peer)])
               for peer in seg["peers"]]  # fmt: skip
        units.network(dev, [("Network", [("Bridge", seg["bridge"])])] + fdb)
        units.netdev(seg["bridge"], "bridge", weak=True)
        units.network(seg["bridge"], bootcfg.link_section([("ActivationPolicy", "up")]))


SNAPSHOT_ORDER = 10  # the mesh makes its segment bridges; a bridge snapshot comes after


def snapshot(facts):
    """Each mesh found here (by its owned devices or ports), its VTEP as the interface that
    holds the local address. `members` is left to the caller: it is fleet knowledge."""
    names = {
        mesh_of(link.get("ifalias"))
        for link in facts.links.values()
        if mesh_of(link.get("ifalias")) and facts.kind(link["ifname"]) == "vxlan"
    }
    ovs_names = {
        iface["external_ids"]["vnetctl-mesh"]
        for iface in ((facts.ovs or {}).get("interfaces") or {}).values()
        if "vnetctl-mesh" in iface["external_ids"]
    }
    out = []
    for name in sorted(names | ovs_names):
        ovs_mesh = name in ovs_names
        current = read({"name": name, "dataplane": "ovs" if ovs_mesh else "linux"}, facts)
        segments = sorted(current["segments"].items(), key=lambda item: int(item[0]))
        first = segments[0][1]
        params = {
            "name": name,
            "port": first["port"],
            "vtep_interface": _holder(first["local"], facts),
        }
        if ovs_mesh:
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
    holder = facts.net.holder(address)
    if holder is None:
        raise host.ModuleError("no interface holds the VTEP address %s" % address)
    return holder


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
