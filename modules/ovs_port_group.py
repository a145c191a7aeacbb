#!/usr/bin/python3
# WANT_JSON
"""A port group on an Open vSwitch bridge: a named policy (VLAN access tag or trunks,
MTU, port security) that VM ports take by belonging to it. A port belongs to the group
when its name matches one of `ports` (names or shell patterns: `vnet*`) or when its
interface's external_ids name the group (`vnetctl-port-group=NAME`, for whatever creates
VM ports); a VM port that joins the bridge later takes the policy at the next run.

Port security: only the VM's own MAC (and, with `ips`, its addresses: IPv4 with ARP and
DHCP, or IPv6) may leave the port. The MAC is the one declared in `addresses`, else the
interface's external_ids:attached-mac, which libvirt sets. It is done with OpenFlow rules
in table 0 (priority 110 allows, 100 drops the rest of the port's traffic), with the
group's cookie (vnet_ovs_config): vnetctl reads, changes and deletes only rules with its
own cookies, so rules anyone else wrote are left alone. A port's rules are replaced in
one atomic bundle. `state: absent` removes the group's rules; VLAN settings stay.

Shaping classes belong to the shaping module, which is not part of this dataplane yet.
"""

import fnmatch
import ipaddress
import re
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_ovs_config as ovs
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_ovs_config as ovs

RESOURCE = "port group"
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
    "port_security": {"type": "bool", "default": False},
    "addresses": {"type": "list", "elements": "dict", "options": ADDRESS_SPEC},
}
FACTS = {"ovs_config": ovs.CONFIG, "ovs_flows": ovs.FLOWS}
MEMBER_MARK = "vnetctl-port-group"
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
PATTERN = re.compile(r"[A-Za-z0-9_.\-*?\[\]!]{1,64}\Z")
ALLOW, DROP = 110, 100


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
    rules = _rules_by_port(name, facts.get("ovs_flows", bridge) or [])
    current["secured"] = sorted(rules)
    current["security"] = rules
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


def _rules_by_port(group, flows):
    """{port: [rule text]} of the group's rules (its cookie), comparable with _rules()."""
    cookie = ovs.group_cookie(group)
    out = {}
    for flow in flows:
        if flow["cookie"] & ovs.GROUP_MASK != cookie:
            continue
        port = flow.get("in_port")
        match = {
            k: v
            for k, v in flow.items()
            if k not in ("cookie", "table", "protocols", "actions", "in_port", "priority")
        }
        rule = _rule_text(int(flow.get("priority", 32768)), flow["protocols"], match,
                          flow["actions"])  # fmt: skip
        out.setdefault(port, []).append(rule)
    return {p: sorted(r) for p, r in out.items()}


def _rule_text(priority, protocols, match, actions):
    words = [str(priority)] + sorted(protocols)
    words += ["%s=%s" % (k, match[k]) for k in sorted(match)]
    return ",".join(words) + " actions=" + actions.lower()


def _rules(mac, ips):
    """The rules for one port, as (priority, protocol, {field: value}, actions)."""
    rules = [(DROP, None, {}, "drop")]
    if not ips:
        return rules + [(ALLOW, None, {"dl_src": mac}, "NORMAL")]
    if any(ip.version == 4 for ip in ips):  # DHCP before the VM has its address
        dhcp = {"dl_src": mac, "nw_src": "0.0.0.0", "tp_src": "68", "tp_dst": "67"}
        rules.append((ALLOW, "udp", dhcp, "NORMAL"))
    for ip in ips:
        if ip.version == 4:
            rules.append((ALLOW, "ip", {"dl_src": mac, "nw_src": str(ip)}, "NORMAL"))
            arp = {"dl_src": mac, "arp_spa": str(ip), "arp_sha": mac}
            rules.append((ALLOW, "arp", arp, "NORMAL"))
        else:
            rules.append((ALLOW, "ipv6", {"dl_src": mac, "ipv6_src": str(ip)}, "NORMAL"))
    return rules


def desired(params, current, facts):
    want = {k: v for k, v in current.items()}
    if params["state"] == "absent" or current["bridge"] not in facts.get("ovs_config")["bridges"]:
        want.update(secured=[], security={})
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
        cfg = facts.get("ovs_config")
        given = {a["port"]: a for a in params.get("addresses") or []}
        for port in current["members"]:
            mac, ips = _address_of(port, given.get(port, {}), cfg)
            security[port] = sorted(_rule_text(*r) for r in _spec(_rules(mac, ips)))
    want["security"], want["secured"] = security, sorted(security)
    return want


def _spec(rules):
    return [(p, [proto] if proto else [], match, actions) for p, proto, match, actions in rules]


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
    try:
        ips = sorted({host.ip_value(ipaddress.ip_address, i) for i in given.get("ips") or []},
                     key=str)  # fmt: skip
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
    for port in sorted(set(have) | set(want)):
        if have.get(port) == want.get(port):
            continue
        if port in have:
            match = "%s,in_port=%s" % (ovs.cookie_match(cookie), port)
            out.append(host.step("ovs-ofctl", bridge, "delete", match))
        for rule in want.get(port, []):
            out.append(host.step("ovs-ofctl", bridge, "add", _flow(cookie, port, rule)))
    return out


def _flow(cookie, port, rule):
    """A rule text (see _rule_text) as an ovs-ofctl flow for `port`."""
    head, _, actions = rule.partition(" actions=")
    words = head.split(",")
    match = ["cookie=%#x" % cookie, "table=0", "priority=" + words[0]]
    match += [w for w in words[1:] if "=" not in w] + ["in_port=" + port]
    match += [w for w in words[1:] if "=" in w]
    return ",".join(match) + ",actions=" + actions


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
