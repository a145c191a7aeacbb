"""vxlan_mesh's Open vSwitch dataplane: each peer is a VXLAN port (remote_ip, key = VNI)
on the segment's OVS bridge, every change in one ovsdb transaction.

Ports per peer rather than one flow-based port: OVS's NORMAL action floods unknown and
broadcast frames to every tunnel port, which is head-end replication, and MAC learning
works per port, with no OpenFlow rules to own or to check for drift. The ports are
`protected` (OVS 2.10+): frames never go from one tunnel port to another, the split
horizon without which three or more hosts would loop broadcasts forever. The mesh owns
the ports whose external_ids name it.

Runs on the managed host: Python 3.9+, standard library only.
"""

import zlib

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core

step = vnet_core.step


def port_name(vni, peer):
    """Stable per (VNI, peer) and within 15 characters: vx<VNI>-<16-bit hash of peer>."""
    return "vx%d-%04x" % (vni, zlib.crc32(peer.encode()) & 0xFFFF)


def owned_ports(name, facts):
    interfaces = (facts.ovs or {}).get("interfaces", {})
    return {
        port: iface
        for port, iface in interfaces.items()
        if iface["external_ids"].get("vnetctl-mesh") == name
    }


def bridge_exists(bridge, facts):
    return bridge in ((facts.ovs or {}).get("bridges") or {})


def read(name, facts):
    bridge_of = {
        p: b for b, ports in ((facts.ovs or {}).get("bridges") or {}).items() for p in ports
    }
    segments = {}
    for port, iface in sorted(owned_ports(name, facts).items()):
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


def check(name, vni, seg, peers, facts):
    if facts.ovs is None:
        raise vnet_core.ModuleError("Open vSwitch is not running on this host (mesh %s)" % name)
    kind = facts.kind(seg["bridge"])
    if not bridge_exists(seg["bridge"], facts) and kind not in (None, "openvswitch"):
        raise vnet_core.ModuleError(
            "mesh %s VNI %d: %s is a %s, not an Open vSwitch bridge"
            % (name, vni, seg["bridge"], kind)
        )
    names = [port_name(vni, p) for p in peers]
    if len(set(names)) != len(names):
        raise vnet_core.ModuleError("mesh %s VNI %d: two peers hash to one port name" % (name, vni))


def steps(current, desired, facts):
    out = []
    have = current.get("segments", {})
    wanted = desired["segments"] if desired["state"] == "present" else {}
    owned = owned_ports(desired["name"], facts)
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
            step("ovs-vsctl", "--if-exists", "del-port", p)
            for p in sorted(owned)
            if owned[p]["external_ids"].get("vnetctl-vni") == vni
            and (not keep or owned[p]["options"].get("remote_ip") not in new)
        ]
        if want["state"] == "absent":
            continue
        out += _segment_steps(vni, now, want, old, new, owned, desired["name"], facts)
    # a rollback target records which segment bridges did not exist: those go again
    for bridge, state in sorted((desired.get("bridges") or {}).items()):
        if state == "absent" and bridge_exists(bridge, facts):
            out.append(step("ovs-vsctl", "--if-exists", "del-br", bridge))
    return out


def _segment_steps(vni, now, want, old, new, owned, mesh, facts):
    out = []
    bridge = want["bridge"]
    if not bridge_exists(bridge, facts):
        out.append(step("ovs-vsctl", "--may-exist", "add-br", bridge))
    if now.get("datapath") != want["datapath"]:
        out.append(step("ovs-vsctl", "set", "bridge", bridge, "datapath_type=" + want["datapath"]))
    protected = facts.ovs.get("protected") or ()
    out += [
        step("ovs-vsctl", "set", "port", p, "protected=true")
        for p in sorted(owned)
        if p not in protected
        and owned[p]["external_ids"].get("vnetctl-vni") == vni
        and owned[p]["options"].get("remote_ip") in new & old
    ]
    for peer in sorted(new - old):
        port = port_name(int(vni), peer)
        out.append(step("ovs-vsctl", "add-port", bridge, port))
        out.append(step("ovs-vsctl", "set", "port", port, "protected=true"))
        out.append(
            step(
                "ovs-vsctl",
                "set",
                "interface",
                port,
                "type=vxlan",
                "options:remote_ip=%s" % peer,
                "options:key=%s" % vni,
                "options:local_ip=%s" % want["local"],
                "options:dst_port=%d" % want["port"],
                "external_ids:vnetctl-mesh=%s" % mesh,
                "external_ids:vnetctl-vni=%s" % vni,
            )
        )
    return out
