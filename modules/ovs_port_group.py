#!/usr/bin/python3
# WANT_JSON
"""A port group on an Open vSwitch bridge: a named policy (VLAN access tag or trunks,
MTU, and security as vSphere's distributed switch has it: vnet_secpolicy's forged
transmits, MAC address changes and promiscuous mode, each reject or accept, reject when
unset) that VM ports take by belonging to it. A port belongs to the group when its name
matches one of `ports` (names or shell patterns: `vnet*`) or when its interface's
external_ids name the group (`vnetctl-port-group=NAME`, for whatever creates VM ports);
a VM libvirt starts later takes the policy when its port is added, before it runs, from
vnetctl's libvirt hook (vnet_vm_attach), and any port at the next run.

MAC changes rejected: unicast frames to the port for another MAC than its VM's are
dropped on their way out of the port (an nftables egress chain, vnet_nft_taps: OpenFlow's
NORMAL action leaves no step after its decision). Promiscuous accept: the port gets a
copy of what enters the bridge from its other ports with its own VLAN tag (none: the
untagged ones), the bridge's internal ports aside (vnet_nft_taps; an OVS mirror would
take the port for itself). A promiscuous port's MAC changes are not filtered.

Forged transmits rejected (port security): only the VM's own MAC (Ethernet source, ARP
sender, NS/NA link-layer options) and, with `ips`, its addresses (IPv4 with ARP and
DHCP, IPv6 with its link-local traffic, NA and DAD targets) may leave the port
(vnet_ovs_portsec). The MAC is the one declared in `addresses`, else the interface's
external_ids:attached-mac, which libvirt sets. It is done with OpenFlow rules in table 0
with the group's cookie (vnet_ovs_config): vnetctl reads, changes and deletes only rules
with its own cookies, so rules anyone else wrote are left alone. A bridge with port
security has a gate that drops what comes from a port vnetctl has not seen, so a VM port
made again (a new port number) sends nothing until the hook or the next run gives it its
rules; rules of port numbers that are gone are removed. Each bridge's rules change in
one atomic bundle. `state: absent` removes the group's rules and chains; VLAN settings
stay. Forged transmits accepted or `state: absent` also opens the gate when no other
group's rules are left on the bridge.

Shaping classes belong to the shaping module, which is not part of this dataplane yet.
"""

import fnmatch
import ipaddress
import re
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_hostnet
    from ansible.module_utils import vnet_nft_taps as taps
    from ansible.module_utils import vnet_ovs_config as ovs
    from ansible.module_utils import vnet_ovs_portsec as portsec
    from ansible.module_utils import vnet_secpolicy as secpolicy
    from ansible.module_utils import vnet_vm_attach as attach
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_hostnet
    import vnet_nft_taps as taps
    import vnet_ovs_config as ovs
    import vnet_ovs_portsec as portsec
    import vnet_secpolicy as secpolicy
    import vnet_vm_attach as attach

MODULE = "ovs_port_group"  # its file: what its libvirt hook runs (vnet_vm_attach)
RESOURCE = "port group"
NOT_PERSISTED = (  # no boot configuration: why
    "Open vSwitch keeps its configuration (VLANs, OpenFlow rules) in its own database"
)
ADDRESS_SPEC = {
    "port": {"type": "ifname", "required": True},
    "mac": {"type": "str"},
    "ips": {"type": "list", "elements": "str"},
}
ARGUMENT_SPEC = dict({
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
    "addresses": {"type": "list", "elements": "dict", "options": ADDRESS_SPEC},
}, **secpolicy.SPEC)  # fmt: skip
FACTS = dict({"ovs_config": ovs.CONFIG, "ovs_flows": ovs.FLOWS,
              "nft_netdev": taps.SOURCE}, **attach.FACTS)  # fmt: skip
MEMBER_MARK = vnet_hostnet.GROUP_MARK  # a VM port for the host's model too
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
    scope = params.get("_attach")  # the hook's run: these ports only
    members = [p for p in _members(params, bridge, cfg) if scope is None or p in scope]
    current["members"] = members
    current["ports"] = {
        p: dict({k: cfg["ports"][p][k] for k in ovs.VLAN_FIELDS},
                mtu=cfg["interfaces"].get(p, {}).get("mtu_request"))
        for p in members
    }  # fmt: skip
    flows = facts.get("ovs_flows", bridge) or []
    names = portsec.interfaces(bridge, cfg)
    rules = portsec.flows_by_port(ovs.group_cookie(name), flows)
    if scope is not None:  # and the rules of ports gone, which any run removes
        rules = {p: r for p, r in rules.items() if p in scope or p not in names}
    current["secured"] = sorted(rules)
    current["security"] = rules
    current["gate"] = portsec.gate_of(flows)
    chains = taps.read(facts)
    if chains is not None:
        current["taps"] = taps.lines({n: c for n, c in chains.items()
                                      if _ours(n, members, names, facts)})  # fmt: skip
    if scope is None:  # the hook's own runs leave its files alone
        current["attach"] = attach.read(MODULE, params, facts)
    return current


def _ours(chain, members, names, facts):
    """A chain this group answers for: one serving a member, one of a port gone, or one
    copying from this bridge to a port no longer on it."""
    to, device = taps.ports_of(chain)
    if to is None:
        return False
    if to in members or facts.link(to) is None or facts.link(device) is None:
        return True
    return device in names and to not in names


def _members(params, bridge, cfg):
    return sorted(p for p in cfg["bridges"][bridge]["ports"] if _claims(params, p, cfg))


def _claims(params, port, cfg):
    info = cfg["ports"].get(port, {})
    if port == params["bridge"] or len(info.get("interfaces", [])) != 1:
        return False  # the bridge's own port and bonds are uplinks, not VM ports
    marked = cfg["interfaces"].get(port, {}).get("external_ids", {}).get(MEMBER_MARK)
    patterns = params.get("ports") or []
    return marked == params["name"] or any(fnmatch.fnmatchcase(port, p) for p in patterns)


def desired(params, current, facts):
    want = {k: v for k, v in current.items()}
    cfg = facts.get("ovs_config")
    if current["bridge"] not in cfg["bridges"]:
        return want
    settings = secpolicy.effective(params)
    if params["state"] == "absent":
        want.update(secured=[], security={}, gate=_gate(params, current, facts, False))
        want.update({"taps": []} if "taps" in current else {})
        if "attach" in current:
            want["attach"] = attach.desired(MODULE, params, current["attach"], facts)
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
    forged = secpolicy.rejects(settings, "forged_transmits")
    given = {a["port"]: a for a in params.get("addresses") or []}
    for address in given.values():
        secpolicy.check_ips(settings, address.get("ips"), "addresses: port " + address["port"])
    macs = {p: _address_of(p, given.get(p, {}), cfg) for p in current["members"]
            if forged or settings["mac_changes"] == "reject" or
            settings["promiscuous"] == "accept"}  # fmt: skip
    security = {p: portsec.texts(portsec.port_rules(*macs[p])) for p in macs} if forged else {}
    want["security"], want["secured"] = security, sorted(security)
    want["gate"] = _gate(params, current, facts, secured=forged)
    if "taps" in current:
        want["taps"] = taps.lines(_taps(settings, want, {p: m for p, (m, _) in macs.items()},
                                        facts))  # fmt: skip
    elif settings["mac_changes"] == "reject" or settings["promiscuous"] == "accept":
        raise host.ModuleError("port group %s: mac_changes reject and promiscuous accept need "
                               "nftables (`nft`)" % params["name"])  # fmt: skip
    if "attach" in current:
        want["attach"] = attach.desired(MODULE, params, current["attach"], facts)
    return want


def _taps(settings, want, macs, facts):
    """The members' chains: an inbound filter (mac_changes reject, not promiscuous), or
    the copies from the bridge's other interfaces of its VLAN (promiscuous accept)."""
    cfg, bridge = facts.get("ovs_config"), want["bridge"]
    if settings["promiscuous"] != "accept":
        reject = settings["mac_changes"] == "reject"
        return {taps.inbound_chain(p): taps.inbound(p, macs[p]) for p in want["members"]
                if reject}  # fmt: skip
    flows = facts.get("ovs_flows", bridge) or []
    out = {}
    for to in want["members"]:
        tag = want["ports"][to].get("tag")
        for port in cfg["bridges"][bridge]["ports"]:
            info = want["ports"].get(port) or cfg["ports"].get(port, {})
            if port in (to, bridge) or info.get("tag") != tag:
                continue
            for device in cfg["ports"].get(port, {}).get("interfaces", []):
                if cfg["interfaces"].get(device, {}).get("type") in ("", "system", "tap"):
                    src = macs.get(device) if device in want["security"] else \
                        _guarded(device, flows)  # fmt: skip
                    out[taps.copy_chain(to, device)] = taps.copy(to, device, macs[to], src)
    return out


def _guarded(port, flows):
    """The MAC another group's port security lets `port` send from, or None."""
    for flow in flows:
        if flow.get("in_port") == port and "dl_src" in flow \
                and flow["cookie"] & ~ovs.GROUP_MASK == 0:  # fmt: skip
            return flow["dl_src"]
    return None


def _gate(params, current, facts, secured):
    """The bridge's gate after this task (vnet_ovs_portsec): closed while any group on it
    has port security; closing it lets through every interface there is, and each run
    then the new uplinks and this group's members (a VM port another group claims waits
    for that group's run). Forged transmits accepted or `state: absent` opens it when no
    other group's rules are left, nor another group declared to guard (one without
    members yet has no rules)."""
    bridge = current["bridge"]
    names = portsec.interfaces(bridge, facts.get("ovs_config"))
    have = current["gate"]
    kept = {p for p in have["allowed"] if p in names}
    removing = params["state"] == "absent" or not secured
    cookie = ovs.group_cookie(params["name"])
    # another group's rules, also those of a port made again that awaits that group
    others = any(
        f["cookie"] & ~ovs.GROUP_MASK == 0 and f["cookie"] != cookie and f.get("in_port")
        for f in facts.get("ovs_flows", bridge) or []
    ) or _others_guard(params["name"], bridge, facts)
    if secured or others or (have["closed"] and not removing):
        # a gate that let VM ports (or ports gone since) through is mended, not made anew
        mended = have["closed"] or any(names.get(p, True) for p in have["allowed"])
        if not mended:  # made now: every port there is passes
            return {"closed": True, "allowed": sorted(names)}
        kept |= {n for n, vm in names.items() if not vm} | set(current["members"])
        return {"closed": True, "allowed": sorted(kept)}
    return {"closed": False, "allowed": [] if removing else sorted(kept)}


def _others_guard(name, bridge, facts):
    """Whether another group on the bridge rejects forged transmits, as the declarations
    the hook reads say (vnet_vm_attach; none where nothing is written)."""
    for group, declared in attach.declared(MODULE, bridge, facts).items():
        if group == name:
            continue
        try:
            settings = secpolicy.effective(declared if isinstance(declared, dict) else {})
        except host.ModuleError:
            return True  # a declaration edited by hand: keep the gate closed until repaired
        if secpolicy.rejects(settings, "forged_transmits"):
            return True
    return False


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
    cookie, cfg = ovs.group_cookie(desired["name"]), facts.get("ovs_config")
    have, want = current.get("security", {}), desired.get("security", {})
    lines = []
    for port in sorted(set(have) | set(want)):  # a port gone: its number, its rules go
        if have.get(port) == want.get(port):
            continue
        if port in have:
            lines.append(portsec.delete_port_rules(bridge, cookie, port, cfg))
        lines += ["%s add %s" % (bridge, portsec.flow(cookie, port, r, cfg))
                  for r in want.get(port, [])]  # fmt: skip
    if "gate" in desired and desired["gate"] != current.get("gate"):
        lines += portsec.gate_steps(bridge, current["gate"], desired["gate"], cfg)
    out += [host.step("ovs-ofctl", *line.split(" ")) for line in lines]
    if "taps" in desired:
        out += taps.steps(current.get("taps") or [], desired["taps"])
    return out + attach.steps(MODULE, desired, current.get("attach"), desired.get("attach"))


SNAPSHOT_ORDER = 25  # after the bridges whose ports it configures


def snapshot(facts):
    """Groups marked on interfaces (external_ids), with the VLAN their ports share and
    their security as the host has it: forged transmits rejected where the group's
    rules guard its ports, MAC changes where inbound chains filter them, promiscuous
    where they get copies."""
    cfg = ovs.recorded(facts)
    if cfg is None:
        return []
    try:
        chains = taps.read(facts) or {}
    except host.ModuleError:  # facts recorded before the netdev table existed
        chains = {}
    served = {kind: {taps.ports_of(n)[0] for n in chains if n.startswith(kind + "/")}
              for kind in ("copy", "inbound")}  # fmt: skip
    groups = {}
    for port, info in sorted(cfg["ports"].items()):
        group = cfg["interfaces"].get(port, {}).get("external_ids", {}).get(MEMBER_MARK)
        if group:
            groups.setdefault((group, info["bridge"]), []).append((port, info))
    out = []
    for (group, bridge), members in sorted(groups.items()):
        params = {"name": group, "bridge": bridge}
        tags = {i["tag"] for _, i in members}
        if len(tags) == 1 and None not in tags:
            params["vlan"] = tags.pop()
        rules = portsec.flows_by_port(ovs.group_cookie(group), facts.get("ovs_flows", bridge) or [])
        ports = [p for p, _ in members]
        params.update(forged_transmits=secpolicy.word(all(p in rules for p in ports)),
                      promiscuous=secpolicy.word(not any(p in served["copy"] for p in ports)),
                      mac_changes=secpolicy.word(all(p in served["inbound"] | served["copy"]
                                            for p in ports)))  # fmt: skip
        out.append(params)
    return out


# the group's three settings as its arguments give them: what the fleet compares
security = secpolicy.effective


# ---- the attach-time hook (vnet_vm_hook) asks ------------------------------------------


def attached_to(port, facts):
    """The Open vSwitch bridge `port` is a port of, or None."""
    cfg = facts.get("ovs_config") or {"ports": {}}
    return cfg["ports"].get(port, {}).get("bridge")


def claims(params, port, facts):
    return _claims(params, port, facts.get("ovs_config"))


def members_of(params, facts):
    cfg = facts.get("ovs_config")
    return _members(params, params["bridge"], cfg) if params["bridge"] in cfg["bridges"] else []


def scoped(declared, ports, mac):
    """A group's arguments for the hook: its policy on `ports` only (the other members
    are left as they are); `mac`: the VM's, for a single port the group declares no
    address for (libvirt's attached-mac says the same)."""
    given = [a for a in declared.get("addresses") or [] if a["port"] in ports]
    if mac and len(ports) == 1 and not given:
        given = [{"port": ports[0], "mac": mac}]
    params = host.normalize_params(ARGUMENT_SPEC, dict(declared, ports=list(ports),
                                                       addresses=given or None))  # fmt: skip
    return type(params)(params, _attach=list(ports))


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
