"""Port security on an Open vSwitch bridge (ovs_port_group): the OpenFlow rules of a
guarded VM port, and the bridge's gate, in table 0 under vnetctl's cookies.

A guarded port's rules (in_port=PORT, the group's cookie): everything from the port is
dropped (priority 100) but what its guest may send: its MAC as Ethernet source, as ARP
sender and in the neighbour-discovery options (NS source, NA target link-layer address);
with `ips`, only its addresses (IPv4 and ARP sender, 0.0.0.0 only for a DHCP request or
an ARP probe; IPv6 source; the target of its NAs and of its duplicate address detection
NSs), link-local sources and targets included (any fe80::/10, or the declared fe80::
addresses), and `::` only for DAD and MLD reports and router solicitations. Frames with
more VLAN tags than the switch parses (Open_vSwitch other_config:vlan-limit, 1 unless
set) are dropped: their insides cannot be checked. OVS reads no router solicitation's
options, so their link-layer option is not checked here.

OpenFlow knows a port by its number, which a port gets anew when it is made again (a VM
restarted: libvirt deletes the port and adds it). Rules keyed on the old number then
match nothing, so every bridge with port security has a gate (cookie GATE): priority 1
drops everything, priority 2 lets through each interface vnetctl knows. A VM port that
is made again, or a new one, sends nothing until the next run gives it its rules (or,
for a group without port security, its gate entry): it is never unprotected. VM ports
are those libvirt marks (external_ids attached-mac, iface-id, vm-id) or a group claims
(vnetctl-port-group); uplinks, tunnels and the bridge's own port pass the gate as they
appear in a run of any group on the bridge. Rules of a port number that no longer
exists are removed by the next run.

Runs on the managed host: Python 3.9+, standard library only.
"""

import ipaddress

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_hostnet, vnet_ovs_config
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_hostnet
    import vnet_ovs_config

ref = vnet_ovs_config.in_port
GATE = vnet_ovs_config.COOKIE_OWNER | 0x67617465  # "gate", in no group's bits
GATE_DROP, GATE_ALLOW = 1, 2
DROP, ALLOW, ND_DROP, ND_ALLOW, TAGS = 100, 110, 120, 121, 130
NO_MAC = "00:00:00:00:00:00"
VM_MARKS = vnet_hostnet.LIBVIRT_MARKS + (vnet_hostnet.GROUP_MARK,)  # the model's
LINK_LOCAL = ipaddress.ip_network("fe80::/10")


def port_rules(mac, ips):
    """A guarded port's rules, as (priority, protocol or None, {field: value}, actions).
    `ips`: None (MAC only) or the guest's addresses (ipaddress objects)."""
    rules = [(DROP, None, {}, "drop")]
    rules += [(TAGS, None, {"dl_type": t}, "drop") for t in ("0x8100", "0x88a8")]
    rules += [(ND_DROP, "arp", {}, "drop")] + [(ND_DROP, "icmp6", {"icmp_type": str(t)}, "drop")
                                               for t in (135, 136)]  # fmt: skip
    own = {"dl_src": mac}
    if ips is None:
        rules += [(ALLOW, None, own, "NORMAL"),
                  (ND_ALLOW, "arp", dict(own, arp_sha=mac), "NORMAL")]  # fmt: skip
        return rules + _nd(own, mac, [None], [None])
    v4 = ["0.0.0.0"] + [str(i) for i in ips if i.version == 4]  # 0.0.0.0: an ARP probe
    rules.append((ALLOW, "udp", dict(own, nw_src="0.0.0.0", tp_src="68", tp_dst="67"), "NORMAL"))
    rules += [(ALLOW, "ip", dict(own, nw_src=a), "NORMAL") for a in v4[1:]]
    rules += [(ND_ALLOW, "arp", dict(own, arp_sha=mac, arp_spa=a), "NORMAL") for a in v4]
    declared = [i for i in ips if i.version == 6 and i in LINK_LOCAL]
    v6 = [str(i) for i in ips if i.version == 6 and i not in LINK_LOCAL]
    v6 += [str(i) for i in declared] or [str(LINK_LOCAL)]
    rules += [(ALLOW, "ipv6", dict(own, ipv6_src=a), "NORMAL") for a in v6]
    rules += [(ALLOW, "icmp6", dict(own, ipv6_src="::", icmp_type=str(t)), "NORMAL")
              for t in (131, 132, 133, 143)]  # MLD reports and done, RS  # fmt: skip
    dad = [(ND_ALLOW, "icmp6", dict(own, ipv6_src="::", icmp_type="135", nd_sll=NO_MAC,
                                    nd_target=t), "NORMAL") for t in v6]  # fmt: skip
    return rules + dad + _nd(own, mac, v6, v6)


def _nd(own, mac, sources, targets):
    """NS from the guest's sources and NAs of its targets, with its MAC or none as
    link-layer option; a None source or target: any."""
    out = []
    for src in sources:
        match = dict(own, **({"ipv6_src": src} if src else {}))
        out += [(ND_ALLOW, "icmp6", dict(match, icmp_type="135", nd_sll=lla), "NORMAL")
                for lla in (mac, NO_MAC)]  # fmt: skip
        for target in targets:
            na = dict(match, icmp_type="136", **({"nd_target": target} if target else {}))
            out += [(ND_ALLOW, "icmp6", dict(na, nd_tll=lla), "NORMAL") for lla in (mac, NO_MAC)]
    return out


def rule_text(priority, protocols, match, actions):
    """A rule as compared: priority, protocols, sorted fields, lower-case actions; the
    same text from a dumped flow (flows_by_port) and from port_rules()."""
    words = [str(priority)] + sorted(protocols)
    words += ["%s=%s" % (k, match[k]) for k in sorted(match)]
    return ",".join(words) + " actions=" + actions.lower()


def texts(rules):
    return sorted(rule_text(p, [proto] if proto else [], m, a) for p, proto, m, a in rules)


def flow(cookie, port, text, cfg=None):
    """A rule text as an ovs-ofctl flow, for `port` (None: any port; named as
    vnet_ovs_config.in_port says, from the OVS configuration `cfg`)."""
    head, _, actions = text.partition(" actions=")
    words = head.split(",")
    match = ["cookie=%#x" % cookie, "table=0", "priority=" + words[0]]
    match += [w for w in words[1:] if "=" not in w]
    match += ["in_port=" + ref(port, cfg)] if port else []
    match += [w for w in words[1:] if "=" in w]
    return ",".join(match) + ",actions=" + actions


def flows_by_port(cookie, flows):
    """{in_port: [rule text]} of the rules with exactly `cookie` (a port gone: its number;
    a rule of no port: "")."""
    out = {}
    for f in flows:
        if f["cookie"] != cookie:
            continue
        match = {
            k: v
            for k, v in f.items()
            if k not in ("cookie", "table", "protocols", "actions", "in_port", "priority")
        }
        text = rule_text(int(f.get("priority", 32768)), f["protocols"], match, f["actions"])
        out.setdefault(f.get("in_port", ""), []).append(text)  # fmt: skip
    return {p: sorted(r) for p, r in out.items()}


# ---- the gate -------------------------------------------------------------------------

GATE_DROP_TEXT = rule_text(GATE_DROP, [], {}, "drop")
GATE_ALLOW_TEXT = rule_text(GATE_ALLOW, [], {}, "NORMAL")


def gate_of(flows):
    """The bridge's gate: {"closed": its drop rule is there, "allowed": [in_port names or
    numbers it lets through]}."""
    rules = flows_by_port(GATE, flows)
    allowed = sorted(p for p, r in rules.items() if p and r == [GATE_ALLOW_TEXT])
    return {"closed": rules.get("") == [GATE_DROP_TEXT], "allowed": allowed}


def interfaces(bridge, cfg):
    """{in_port name: a VM port?} of the bridge's interfaces (its own port is LOCAL)."""
    out = {}
    for port in cfg["bridges"][bridge]["ports"]:
        for iface in cfg["ports"].get(port, {}).get("interfaces", [port]):
            ids = cfg["interfaces"].get(iface, {}).get("external_ids") or {}
            out["LOCAL" if iface == bridge else iface] = any(k in ids for k in VM_MARKS)
    return out


def gate_steps(bridge, have, want, cfg=None):
    """ovs-ofctl lines from one gate to another (an allow before the drop goes in, the
    drop out before the allows)."""
    out = []
    drop = ["%s delete_strict %s" % (bridge, _exact(GATE, "priority=%d" % GATE_DROP))]
    for port in sorted(set(want["allowed"]) - set(have["allowed"])):
        out.append("%s add %s" % (bridge, flow(GATE, port, GATE_ALLOW_TEXT, cfg)))
    if want["closed"] and not have["closed"]:
        out.append("%s add %s" % (bridge, flow(GATE, None, GATE_DROP_TEXT)))
    if have["closed"] and not want["closed"]:
        out = drop + out
    for port in sorted(set(have["allowed"]) - set(want["allowed"])):
        out.append(delete_port_rules(bridge, GATE, port, cfg))
    return out


def _exact(cookie, match):
    return "%s,%s" % (vnet_ovs_config.cookie_match(cookie, (1 << 64) - 1), match)


def delete_port_rules(bridge, cookie, port, cfg=None):
    return "%s delete %s" % (bridge, _exact(cookie, "in_port=" + ref(port, cfg)))
