#!/usr/bin/python3
# WANT_JSON
"""A port group on a Linux bridge: a named policy its VM ports get (by name or shell
pattern, `vnet*`): an access VLAN and tagged VLANs, security as vSphere's distributed
switch has it (vnet_secpolicy: forged transmits, MAC address changes, promiscuous mode,
each reject or accept, reject when unset), isolation and ARP/ND suppression. Declared
ports that do not exist yet (their guest is off) are left for then; a VM libvirt starts
later gets the policy when its tap is attached, before it runs, from vnetctl's libvirt
hook (vnet_vm_attach), and any port at the next run.

Forged transmits and MAC changes use nftables' bridge family, in one table vnetctl owns
(`bridge vnetctl`; no other table is read for changes or touched; what is checked:
vnet_nft_portsec): frames entering the bridge from a port whose forged transmits are
rejected must come from its MAC (Ethernet source, ARP sender, neighbour discovery's
link-layer options), and, when the port's IPs are declared, from those IPs (IPv4, ARP,
IPv6, NA and DAD targets), untagged or in one VLAN tag; a second tag is dropped. With
MAC changes rejected, unicast frames to the port for another MAC are dropped. A port's
MAC is its guest's: declared in `guests`, else the one libvirt gave it (recorded by the
hook), else the port device's own. The rules name the port, so a port made again under
its name is guarded from its first frame. The table (sets, chains, rules) is rebuilt
whole, with every guarded port's elements, in one nft transaction when a rule is
missing, changed or of an earlier vnetctl; a guarded port is an element of its sets,
added and removed one by one. Elements of interfaces that no longer exist are removed.

Promiscuous accept: the port gets a copy of the frames that enter the bridge from its
other ports (vnet_nft_taps, table `netdev vnetctl`); on a bridge that filters VLANs,
from the ports whose PVID is the port's own (untagged frames of its VLAN: a tagged
frame of a trunk is not copied, nftables cannot take its tag off).

`isolated` ports do not forward to one another (only to non-isolated ports);
`neigh_suppress` answers ARP/ND from the bridge's neighbour entries. `state: absent`
removes the group's security and copies and clears its flags; VLANs stay as they are.
"""

import fnmatch
import ipaddress
import re
import sys

try:  # under ansible-playbook (and Mitogen), module_utils/vnet_host.py travels along
    from ansible.module_utils import vnet_hostnet
    from ansible.module_utils import vnet_nft_portsec as nftsec
    from ansible.module_utils import vnet_nft_taps as taps
    from ansible.module_utils import vnet_secpolicy as secpolicy
    from ansible.module_utils import vnet_vlans as vlans
    from ansible.module_utils import vnet_vm_attach as attach
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads vnet_host
    import vnet_host as host
    import vnet_hostnet
    import vnet_nft_portsec as nftsec
    import vnet_nft_taps as taps
    import vnet_secpolicy as secpolicy
    import vnet_vlans as vlans
    import vnet_vm_attach as attach

MODULE = "port_group"  # its file: what its libvirt hook runs (vnet_vm_attach)
RESOURCE = "port_group"
NOT_PERSISTED = (  # no boot configuration: why
    "it applies to VM ports, which libvirt makes as each guest starts: vnetctl's libvirt "
    "hook applies it then (and the next run)"
)
GUEST = {"port": {"type": "ifname", "required": True}, "mac": {"type": "str"},
         "ips": {"type": "list", "elements": "str"}}  # fmt: skip
ARGUMENT_SPEC = dict({
    "name": {"type": "objname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "bridge": {"type": "ifname", "required": True},
    "ports": {"type": "list", "elements": "str"},  # names or patterns: vnet*, tap[0-9]
    "vlan": {"type": "int", "range": [1, 4094]},  # access VLAN: PVID, untagged
    "tagged": vlans.VLAN_SET,  # and these, tagged
    "guests": {"type": "list", "elements": "dict", "options": GUEST},
    "isolated": {"type": "bool"},
    "neigh_suppress": {"type": "bool"},
}, **secpolicy.SPEC)  # fmt: skip
# the host's model reads the same ruleset for the ports a group guards (VM ports)
FACTS = dict(vlans.FACTS, nft_bridge=vnet_hostnet.NFT_BRIDGE,
             nft_netdev=taps.SOURCE,
             **attach.FACTS)  # fmt: skip
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
FLAGS = ("isolated", "neigh_suppress")
NOTHING = {"forged_transmits": "accept", "mac_changes": "accept", "promiscuous": "reject"}


def _effective(params):
    """`state: absent` clears what a group sets: flags off, no filter and no copy."""
    if params["state"] == "present":
        return params
    return dict(params, isolated=False, neigh_suppress=False, port_security=None, **NOTHING)


def read(params, facts):
    params = _effective(params)
    bridge, name = params["bridge"], params["name"]
    if facts.link(bridge) is None or facts.kind(bridge) != "bridge":
        msg = "port group %s: bridge %s does not exist on this host" % (name, bridge)
        raise host.ModuleError(msg)
    members = _members(params, facts)
    current = {"name": name, "bridge": bridge, "members": members, "ports": {}}
    try:
        table = _table(facts)
    except host.vnet_facts.Missing:  # facts recorded without it: as a host without nft
        table = None
    memberships = vlans.memberships(facts) if _vlans_declared(params) else {}
    for port in members:
        data = facts.link(port)["linkinfo"].get("info_slave_data") or {}
        state = {flag: bool(data.get(flag)) for flag in FLAGS if params.get(flag) is not None}
        if _vlans_declared(params):
            state["vlans"] = memberships.get(port, vlans.membership())
        if table is not None:
            state.update(nftsec.guard_of(table["elements"], port))
        current["ports"][port] = state
    if table is not None:
        ports = {e.split(" . ")[0] for items in table["elements"].values() for e in items}
        stale = sorted("%s:%s" % (s, e) for s, items in table["elements"].items() for e in items
                       if facts.link(e.split(" . ")[0]) is None)  # fmt: skip
        # the other guarded ports' guards: a rebuilt table keeps them (their MACs in
        # `lla` too, which a table of an earlier vnetctl lacks)
        others = {p: nftsec.guard_of(table["elements"], p) for p in sorted(ports)
                  if p not in members and facts.link(p) is not None}  # fmt: skip
        others = {p: dict(g, lla=g["macs"]) if g["lla"] is not None else g
                  for p, g in others.items()}  # fmt: skip
        current["nft"] = {"rules": table["rules"], "stale": stale, "others": others}
    copies = taps.read(facts)
    if copies is not None:
        current["copies"] = taps.lines({n: c for n, c in copies.items()
                                        if _ours(n, members, facts, bridge)})  # fmt: skip
    if "_attach" not in params:  # the hook's own runs leave its files alone
        current["attach"] = attach.read(MODULE, params, facts)
    return current


def _ours(chain, members, facts, bridge):
    """A copy chain this group answers for: one serving a member, one of a port gone,
    or one copying from this bridge to a port no longer on it."""
    to, device = taps.ports_of(chain)
    if to is None or not chain.startswith("copy/"):
        return False
    if to in members or facts.link(to) is None or facts.link(device) is None:
        return True
    return attached_to(device, facts) == bridge != attached_to(to, facts)


def _vlans_declared(params):
    return params.get("vlan") is not None or params.get("tagged") is not None


def _members(params, facts):
    """The bridge's ports that the group's names or patterns, or its guests, select."""
    return [p for p in facts.ports_of(params["bridge"]) if claims(params, p, facts)]


def claims(params, port, facts):
    """Whether the group's `ports` or `guests` select `port` (the hook asks too)."""
    patterns = list(params.get("ports") or []) + [g["port"] for g in params.get("guests") or []]
    return any(fnmatch.fnmatchcase(port, pattern) for pattern in patterns)


def _table(facts):
    """vnetctl's table (vnet_nft_portsec.table()); None when nft cannot be run (not
    installed, or no nf_tables)."""
    return nftsec.table(facts.get("nft_bridge"))


def desired(params, current, facts):
    params = _effective(params)
    settings = secpolicy.effective(params)
    forged, inbound = (secpolicy.rejects(settings, s) for s in secpolicy.SHORTHAND)
    want = {k: v for k, v in current.items() if k != "ports"}
    present = params["state"] == "present"
    guests = {g["port"]: g for g in params.get("guests") or []}
    for guest in guests.values() if present else ():
        secpolicy.check_ips(settings, guest.get("ips"), "guests: port " + guest["port"])
    if _vlans_declared(params) and present:
        vlans.require(facts, "port group %s" % params["name"])
    if (forged or inbound) and "nft" not in current:
        raise host.ModuleError("port group %s: its security needs nftables (`nft`, with "
                               "the kernel's nf_tables)" % params["name"])  # fmt: skip
    if "nft" in current:  # whole when anything is rejected; stale elements go either way
        rules = nftsec.NAMES if forged or inbound else current["nft"]["rules"]
        want["nft"] = dict(current["nft"], rules=rules, stale=[])
    for pattern in params.get("ports") or []:
        if not re.match(r"[A-Za-z0-9_.*?\[\]-]+\Z", pattern):
            raise host.ModuleError("ports: %r is not an interface name or pattern" % pattern)
    want["ports"] = {}
    for port, state in current["ports"].items():
        new = dict(state)
        for flag in FLAGS:
            if params.get(flag) is not None:
                new[flag] = params[flag] and present
        if _vlans_declared(params) and present:
            new["vlans"] = _membership(params)
        if "nft" in current:
            new.update(_guard(port, guests.get(port), facts, forged, inbound))
        want["ports"][port] = new
    if "copies" in current:
        promiscuous = settings["promiscuous"] == "accept"
        want["copies"] = taps.lines(_copies(params, want, facts) if promiscuous else {})
    if "attach" in current:
        want["attach"] = attach.desired(MODULE, params, current["attach"], facts)
    return want


def _membership(params):
    vid = params.get("vlan")
    tagged = vlans.vids(params.get("tagged"), "tagged")
    return vlans.membership(tagged | ({vid} if vid else set()), vid, {vid} if vid else set())


def _mac(port, guest, facts):
    """The port's vNIC MAC: its guest's as declared, as libvirt gave it, or its own."""
    mac = (guest or {}).get("mac") or attach.guest_mac(facts, port) or \
        facts.link(port).get("address", "")  # fmt: skip
    if not MAC.match(mac.lower()):
        raise host.ModuleError("guests: %r of port %s is not a MAC address" % (mac, port))
    return mac.lower()


def _guard(port, guest, facts, forged, inbound):
    if not forged and not inbound:
        return nftsec.UNGUARDED
    mac = _mac(port, guest, facts)
    if port[0].isdigit():
        raise host.ModuleError("port security: nft cannot name port %s (it starts with a digit)"
                               % port)  # fmt: skip
    ips = (guest or {}).get("ips")
    for ip in ips or []:
        try:
            host.ip_value(ipaddress.ip_address, ip)
        except ValueError:
            msg = "guests: %r of port %s is not an IP address" % (ip, port)
            raise host.ModuleError(msg) from None
    return nftsec.guard(mac, ips, forged, inbound)


def _copies(params, want, facts):
    """The copy chains of the group's members (promiscuous accept): from every other
    port of the bridge, or, where the bridge filters VLANs, those with the member's PVID."""
    bridge = params["bridge"]
    filtering = (facts.link(bridge)["linkinfo"].get("info_data") or {}).get("vlan_filtering")
    pvids = {p: m["pvid"] for p, m in vlans.memberships(facts).items()} if filtering else {}
    pvids.update({p: s["vlans"]["pvid"] for p, s in want["ports"].items() if "vlans" in s})
    guests = {g["port"]: g for g in params.get("guests") or []}
    known = dict(want.get("nft", {}).get("others", {}), **want["ports"])
    out = {}
    for to in want["members"]:
        dst = _mac(to, guests.get(to), facts)
        for device in facts.ports_of(bridge):
            if device != to and (not filtering or pvids.get(device) == pvids.get(to)):
                lla = (known.get(device) or {}).get("lla")
                out[taps.copy_chain(to, device)] = taps.copy(
                    to, device, dst, lla[0] if lla else None
                )
    return out


def steps(current, desired, facts):
    out = []
    for port, want in sorted(desired["ports"].items()):
        have = current["ports"].get(port, {})
        if "vlans" in want and want["vlans"] != have.get("vlans"):
            out += vlans.steps(port, have.get("vlans") or vlans.membership(), want["vlans"])
        flags = []
        for flag in FLAGS:
            if flag in want and want[flag] != have.get(flag):
                flags += [flag, "on" if want[flag] else "off"]
        if flags:
            out.append(host.step("bridge", "link", "set", "dev", port, *flags))
    out += _nft_steps(current, desired)
    if "copies" in desired:
        out += taps.steps(current.get("copies") or [], desired["copies"])
    return out + attach.steps(MODULE, desired, current.get("attach"), desired.get("attach"))


def _nft_steps(current, desired):
    if "nft" not in desired:
        return []
    have, want = set(), set()
    for port in sorted(set(current["ports"]) | set(desired["ports"])):
        have |= nftsec.elements(port, current["ports"].get(port, {}))
        want |= nftsec.elements(port, desired["ports"].get(port, {}))
    if current["nft"]["rules"] != desired["nft"]["rules"]:  # the table again, whole
        for port, guard in desired["nft"]["others"].items():
            want |= nftsec.elements(port, guard)
        if not desired["nft"]["rules"] and not want:  # no table was there (a rollback)
            return nftsec.drop_steps()
        return nftsec.rebuild_steps(want)
    dels = sorted(have - want) + [tuple(s.split(":", 1)) for s in current["nft"]["stale"]]
    return nftsec.element_steps("add", want - have) + nftsec.element_steps("delete", dels)


def _guest(port, guard):
    guest = {"port": port, "mac": guard["macs"][0]}
    if guard["ips"] is not None:
        guest["ips"] = guard["ips"]
    return guest


SNAPSHOT_ORDER = 25  # after the bridges whose ports they are


def snapshot(facts):
    """One group per bridge and policy (isolated, neigh_suppress, the three settings, IPs
    guarded), its ports by name, guarded ports' guests as vnetctl's table has them:
    forged transmits and MAC changes as its elements say (a table broken by hand, or of
    an earlier vnetctl, is rebuilt when the snapshot is applied), promiscuous from the
    copies a port gets. VLANs are the bridge's `port_vlans`."""
    try:
        table = _table(facts)
        copies = taps.read(facts) or {}
    except host.ModuleError:  # facts recorded before port groups existed: no table
        table, copies = None, {}
    promiscuous = {taps.ports_of(n)[0] for n, c in copies.items() if c != taps.OTHER}
    groups = {}
    for bridge in sorted(n for n in facts.links if facts.kind(n) == "bridge"):
        for port in facts.ports_of(bridge):
            data = facts.link(port)["linkinfo"].get("info_slave_data") or {}
            guard = nftsec.guard_of(table["elements"], port) if table else nftsec.UNGUARDED
            key = (bridge, bool(data.get("isolated")), bool(data.get("neigh_suppress")),
                   guard["lla"] is not None, guard["inbound"], port in promiscuous,
                   guard["ips"] is not None)  # fmt: skip
            if any(key[1:]):
                groups.setdefault(key, []).append((port, guard))
    out = []
    for n, (key, members) in enumerate(sorted(groups.items()), start=1):
        bridge, isolated, suppress, forged, inbound, copied, _ = key
        params = {"name": "%s-%d" % (bridge, n), "bridge": bridge,
                  "ports": [p for p, _ in members], "isolated": isolated,
                  "neigh_suppress": suppress, "promiscuous": secpolicy.word(not copied),
                  "forged_transmits": secpolicy.word(forged),
                  "mac_changes": secpolicy.word(inbound)}  # fmt: skip
        if forged or inbound:
            params["guests"] = [_guest(p, g) for p, g in members if g["macs"]]
        out.append(params)
    return out


# the group's three settings as its arguments give them: what the fleet compares
security = secpolicy.effective


# ---- the attach-time hook (vnet_vm_hook) asks ------------------------------------------


def attached_to(port, facts):
    """The Linux bridge `port` is a port of, or None."""
    link = facts.link(port)
    master = (link or {}).get("master")
    return master if master and facts.kind(master) == "bridge" else None


def members_of(params, facts):
    return _members(params, facts)


def scoped(declared, ports, mac):
    """A group's arguments for the hook: its policy on `ports` only (the others are left
    as they are); `mac`: the guest's, for a single port the group declares no guest for."""
    guests = [g for g in declared.get("guests") or [] if g["port"] in ports]
    if mac and len(ports) == 1 and not guests:
        guests = [{"port": ports[0], "mac": mac}]
    params = host.normalize_params(ARGUMENT_SPEC, dict(declared, ports=list(ports),
                                                       guests=guests or None))  # fmt: skip
    return type(params)(params, _attach=list(ports))


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
