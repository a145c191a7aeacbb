#!/usr/bin/python3
# WANT_JSON
"""A port group on an Open vSwitch bridge: a named policy (VLAN access tag or trunks,
MTU, port security) that VM ports take by belonging to it. A port belongs to the group
when its name matches one of `ports` (names or shell patterns: `vnet*`) or when its
interface's external_ids name the group (`vnetctl-port-group=NAME`, for whatever creates
VM ports); a VM port that joins the bridge later takes the policy at the next run.

Port security: only the VM's own MAC (Ethernet source, ARP sender, NS/NA link-layer
options) and, with `ips`, its addresses (IPv4 with ARP and DHCP, IPv6 with its
link-local traffic, NA and DAD targets) may leave the port (vnet_ovs_portsec). The MAC
is the one declared in `addresses`, else the interface's external_ids:attached-mac,
which libvirt sets. It is done with OpenFlow rules in table 0 with the group's cookie
(vnet_ovs_config): vnetctl reads, changes and deletes only rules with its own cookies,
so rules anyone else wrote are left alone. A bridge with port security has a gate that
drops what comes from a port vnetctl has not seen, so a VM port made again (a new port
number) sends nothing until the next run gives it its rules; rules of port numbers
that are gone are removed. Each bridge's rules change in one atomic bundle. `state:
absent` removes the group's rules; VLAN settings stay. `port_security: false` or
`state: absent` also opens the gate when no other group's rules are left on the bridge;
leaving `port_security` unset leaves the gate as it is.

Shaping classes belong to the shaping module, which is not part of this dataplane yet.
"""

import fnmatch
import ipaddress
import re
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_ovs_config as ovs
    from ansible.module_utils import vnet_ovs_portsec as portsec
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_ovs_config as ovs
    import vnet_ovs_portsec as portsec

RESOURCE = "port group"
NOT_PERSISTED = (  # no boot configuration: why
    "Open vSwitch keeps its configuration (VLANs, OpenFlow rules) in its own database"
)
ADDRESS_SPEC = {
    "port": {"type": "ifname", "required": True},
    "mac": {"type": "str"},
    "ips": {"type": "list", "elements": "str"},
}
ARGUMENT_SPEC = {
    "name": {"type": "meshname", "required": True},
    "bridge": {"type": "ifname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "ports": {"type": "list", "elements": "str"},  # names or patterns
    "vlan": {"type": "int", "range": [0, 4095]},  # access tag
    "trunks": {"type": "list", "elements": "int", "range": [0, 4095]},
    "vlan_mode": {
        "type": "str",
        "choices": ["access", "trunk", "native-tagged", "native-untagged"],
    },  # fmt: skip
    "mtu": {"type": "int", "range": [68, 65535]},
    "port_security": {"type": "bool"},  # unset: the gate is left as it is
    "addresses": {"type": "list", "elements": "dict", "options": ADDRESS_SPEC},
}
FACTS = {"ovs_config": ovs.CONFIG, "ovs_flows": ovs.FLOWS}
MEMBER_MARK = "vnetctl-port-group"
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
PATTERN = re.compile(r"[A-Za-z0-9_.\-*?\[\]!]{1,64}\Z")


def read(params, facts):
    name, bridge = params["name"], params["bridge"]
    cfg = facts.get("ovs_config")
    if cfg is None:
        raise host.ModuleError("Open vSwitch is not running on this host (no ovs-vsctl answer)")
    current = {"name": name, "bridge": bridge}  # a policy: no state of its own to compare
    if bridge not in cfg["bridges"]:
        current.update(members=[], secured=[])
        return current
    members = _members(params, bridge, cfg)
    current["members"] = members
    current["ports"] = {
        p: dict({k: cfg["ports"][p][k] for k in ovs.VLAN_FIELDS},
                mtu=cfg["interfaces"].get(p, {}).get("mtu_request"))
        for p in members
    }  # fmt: skip
    flows = facts.get("ovs_flows", bridge) or []
    cookie = ovs.group_cookie(name)
    rules = portsec.flows_by_port(cookie, flows)
    current["secured"] = sorted(rules)
    current["security"] = rules
    current["gate"] = portsec.gate_of(flows)
    return current


def _members(params, bridge, cfg):
    patterns = params.get("ports") or []
    out = []
    for port in cfg["bridges"][bridge]["ports"]:
        info = cfg["ports"].get(port, {})
        if port == bridge or len(info.get("interfaces", [])) != 1:
            continue  # the bridge's own port and bonds are uplinks, not VM ports
        marked = cfg["interfaces"].get(port, {}).get("external_ids", {}).get(MEMBER_MARK)
        if marked == params["name"] or any(fnmatch.fnmatchcase(port, p) for p in patterns):
            out.append(port)
    return sorted(out)


def desired(params, current, facts):
    want = {k: v for k, v in current.items()}
    cfg = facts.get("ovs_config")
    if current["bridge"] not in cfg["bridges"]:
        return want
    if params["state"] == "absent":
        want.update(secured=[], security={}, gate=_gate(params, current, facts, secured=False))
        return want
    for pattern in params.get("ports") or []:
        if not PATTERN.match(pattern):
            raise host.ModuleError("ports: %r is not an interface name or pattern" % pattern)
    declared = {
        "tag": params.get("vlan"),
        "trunks": params.get("trunks"),
        "vlan_mode": params.get("vlan_mode"),
        "mtu": params.get("mtu"),
    }
    want["ports"] = {
        p: dict(now, **{k: v for k, v in declared.items() if v is not None})
        for p, now in current["ports"].items()
    }
    security = {}
    if params["port_security"]:
        given = {a["port"]: a for a in params.get("addresses") or []}
        for port in current["members"]:
            mac, ips = _address_of(port, given.get(port, {}), cfg)
            security[port] = portsec.texts(portsec.port_rules(mac, ips))
    want["security"], want["secured"] = security, sorted(security)
    want["gate"] = _gate(params, current, facts, secured=bool(params["port_security"]))
    return want


def _gate(params, current, facts, secured):
    """The bridge's gate after this task (vnet_ovs_portsec): closed while any group on it
    has port security; closing it lets through every interface there is, and each run
    then the new uplinks and this group's members (a VM port another group claims waits
    for that group's run). `port_security: false` or `state: absent` opens it when no
    other group's rules are left; unset leaves it as it is."""
    bridge = current["bridge"]
    names = portsec.interfaces(bridge, facts.get("ovs_config"))
    have = current["gate"]
    kept = {p for p in have["allowed"] if p in names}
    removing = params["state"] == "absent" or params["port_security"] is False
    cookie = ovs.group_cookie(params["name"])
    others = any(
        f["cookie"] & ~ovs.GROUP_MASK == 0 and f["cookie"] != cookie and f.get("in_port") in names
        for f in facts.get("ovs_flows", bridge) or []
    )
    if secured or others or (have["closed"] and not removing):
        # a gate that let VM ports (or ports gone since) through is mended, not made anew
        mended = have["closed"] or any(names.get(p, True) for p in have["allowed"])
        if not mended:  # made now: every port there is passes
            return {"closed": True, "allowed": sorted(names)}
        kept |= {n for n, vm in names.items() if not vm} | set(current["members"])
        return {"closed": True, "allowed": sorted(kept)}
    return {"closed": False, "allowed": [] if removing else sorted(kept)}


def _address_of(port, given, cfg):
    mac = given.get("mac") or cfg["interfaces"].get(port, {}).get("external_ids", {}).get(
        "attached-mac"
    )
    if not mac:
        raise host.ModuleError(
            "port security on %s: no MAC (declare it in addresses, or set the interface's "
            "external_ids:attached-mac, as libvirt does)" % port
        )
    mac = mac.lower()
    if not MAC.match(mac):
        raise host.ModuleError("port security on %s: %r is not a MAC address" % (port, mac))
    if given.get("ips") is None:
        return mac, None  # its MAC only
    try:
        ips = sorted({host.ip_value(ipaddress.ip_address, i) for i in given["ips"]}, key=str)
    except ValueError as exc:
        raise host.ModuleError("port security on %s: %s" % (port, exc)) from None
    return mac, ips


def steps(current, desired, facts):
    bridge = desired["bridge"]
    out = []
    for port in sorted(desired.get("ports", {})):
        now, want = current.get("ports", {}).get(port, {}), desired["ports"][port]
        out += ovs.port_vlan_steps(port, now, want)
        out += ovs.mtu_steps(port, now.get("mtu"), want.get("mtu"))
    cookie = ovs.group_cookie(desired["name"])
    have, want = current.get("security", {}), desired.get("security", {})
    lines = []
    for port in sorted(set(have) | set(want)):  # a port gone: its number, its rules go
        if have.get(port) == want.get(port):
            continue
        if port in have:
            lines.append(portsec.delete_port_rules(bridge, cookie, port))
        lines += ["%s add %s" % (bridge, portsec.flow(cookie, port, r)) for r in want.get(port, [])]
    if "gate" in desired and desired["gate"] != current.get("gate"):
        lines += portsec.gate_steps(bridge, current["gate"], desired["gate"])
    return out + [host.step("ovs-ofctl", *line.split(" ")) for line in lines]


SNAPSHOT_ORDER = 25  # after the bridges whose ports it configures


def snapshot(facts):
    """Groups marked on interfaces (external_ids), with the VLAN their ports share."""
    cfg = ovs.recorded(facts)
    if cfg is None:
        return []
    groups = {}
    for port, info in sorted(cfg["ports"].items()):
        group = cfg["interfaces"].get(port, {}).get("external_ids", {}).get(MEMBER_MARK)
        if group:
            groups.setdefault((group, info["bridge"]), []).append(info)
    out = []
    for (group, bridge), infos in sorted(groups.items()):
        params = {"name": group, "bridge": bridge}
        tags = {i["tag"] for i in infos}
        if len(tags) == 1 and None not in tags:
            params["vlan"] = tags.pop()
        out.append(params)
    return out


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
