#!/usr/bin/python3
# WANT_JSON
"""NIOC-like traffic shaping of one device (an uplink, or a VM's port) with tc.

Egress: an HTB root (1:, default 2), a parent class 1:1 at the link's speed (or
`egress_limit`), and per traffic class a class under it: rate = reservation (else a
floor of speed/1000), ceil = limit (else the speed), prio 0, quantum = shares x a
quarter of the GSO packet, burst and cburst long enough for a round of the others plus
the GSO packet (vnet_tc_policy.sizing(): the state's `sizing` says the numbers and why),
a leaf qdisc (fq_codel where the kernel has it, else pfifo), and u32 filters (flower or
cls_bpf for vlan, fw for fwmark) in the order the classes are declared; the state says
reservation, limit and shares (NIOC's words); the class without `match`
(or an implicit `default`) is 1:2 and takes the rest. Ingress (`ingress_limit`): a
mirred redirect to an IFB device `ifbNAME`, shaped there the same way. The task owns
the device: what it does not declare is `extra` and goes. Class ids come from class
names, so a moved number is one `tc class change`, and the root stays. `ovs: true`:
`name` is an Open vSwitch port (a bond): each member gets the whole policy, the state is
by member, and the port's QoS is linux-noop so OVS leaves the qdiscs (vnet_tc_ovs).
"""

import sys
import zlib

try:  # under ansible-playbook (and Mitogen), module_utils travel along
    from ansible.module_utils import vnet_persist as bootcfg
    from ansible.module_utils import vnet_tc as tc
    from ansible.module_utils import vnet_tc_ovs as tc_ovs
    from ansible.module_utils import vnet_tc_plan as tc_plan
    from ansible.module_utils import vnet_tc_policy as tc_policy
    from ansible.module_utils.vnet_host import HOST_LIBRARY as host
except ImportError:  # vnetctl's runner preloads module_utils
    import vnet_host as host
    import vnet_persist as bootcfg
    import vnet_tc as tc
    import vnet_tc_ovs as tc_ovs
    import vnet_tc_plan as tc_plan
    import vnet_tc_policy as tc_policy

RESOURCE = "shaping"
MAX_MBIT = 1000000  # 1 Tbit/s
MATCH_SPEC = {
    "family": {"type": "str", "choices": ["ipv4", "ipv6"]},
    "dscp": {"type": "int", "range": [0, 63]},
    "protocol": {"type": "str"},  # a name (tcp, udp, icmp...) or 0..255
    "sport": {"type": "raw"},  # a port, or "low-high"
    "dport": {"type": "raw"},
    "src": {"type": "str"},  # a network
    "dst": {"type": "str"},
    "vlan": {"type": "int", "range": [0, 4095]},
    "fwmark": {"type": "int", "range": [1, 4294967295]},
}
CLASS_SPEC = {
    "name": {"type": "str", "required": True},
    "shares": {"type": "raw", "default": "normal"},  # low, normal, high or 1..100
    "reservation": {"type": "int", "range": [0, MAX_MBIT]},  # Mbit/s
    "limit": {"type": "int", "range": [1, MAX_MBIT]},  # Mbit/s
    "match": {"type": "list", "elements": "dict", "options": MATCH_SPEC},
    "id": {"type": "int", "range": [16, 65279]},  # the class's minor id, when pinned
}
ARGUMENT_SPEC = {
    "name": {"type": "ifname", "required": True},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "speed": {"type": "int", "range": [1, MAX_MBIT]},  # Mbit/s, where the link reports none
    "egress_limit": {"type": "int", "range": [1, MAX_MBIT]},
    "ingress_limit": {"type": "int", "range": [1, MAX_MBIT]},
    "classes": {"type": "list", "elements": "dict", "options": CLASS_SPEC},
    "leaf_qdisc": {"type": "str", "choices": ["auto", "fq_codel", "pfifo"], "default": "auto"},
    "ovs": {"type": "bool", "default": False},  # name is an Open vSwitch port (a bond)
}
FACTS = {"tc": tc.source(), "tc_kernel": tc_plan.KERNEL, "link_speeds": tc_plan.SPEEDS,
         "ovs_ports": tc_ovs.PORTS}  # fmt: skip

DEFAULT_MINOR = tc_policy.DEFAULT_MINOR
SPEED_KINDS = (None, "bond", "team", "vlan")  # a veth or tap reports a nominal speed
EMPTY_TC = {"qdiscs": {}, "classes": {}, "filters": {}, "ingress": {}}
PolicyError = tc_plan.PolicyError
mbit, kbit, policy = tc_policy.mbit, tc_policy.kbit, tc_policy.policy  # see vnet_tc_policy


def ifb_name(dev):
    name = "ifb" + dev
    return name if len(name) <= 15 else "ifb%08x" % zlib.crc32(dev.encode())


def redirect_text(dev):
    return tc.text({"pref": 1, "proto": "all", "keys": [], "redirect": ifb_name(dev)})


# ---- reading -------------------------------------------------------------------------


def read(params, facts):
    if params.get("ovs"):
        return read_ovs_port(params, facts)
    return read_device(params, params["name"], facts)


def read_ovs_port(params, facts):
    """An OVS port's QoS type and, by member, each member's state as read_device()'s."""
    port = (facts.get("ovs_ports") or {}).get(params["name"])
    if port is None:
        return {"name": params["name"], "state": "absent"}
    members = {m: read_device(params, m, facts) for m in port["interfaces"]}
    return {"name": params["name"], "ovs_qos": port["qos"], "members": members}


def read_device(params, name, facts):
    tcf = facts.get("tc") or EMPTY_TC
    names = {
        m: c for c, m in tc_policy.class_ids(params.get("classes") or [], strict=False).items()
    }
    current = {"name": name}
    sizes = link_sizes(facts.link(name))
    current.update(read_policy(name, tcf, names, sizes))
    current["ingress"] = read_ingress(name, tcf, facts)
    return current


def read_policy(dev, tcf, names, sizes=None):
    """The HTB policy on `dev` as state; `names`: {minor: class name} of the declared
    classes (the others are `extra`); `sizes` (link_sizes()): a burst within tc's
    rounding of the one sizing() gives at the rate read is read as that one."""
    qdiscs = tcf["qdiscs"].get(dev) or []
    root = next((q for q in qdiscs if q["root"]), None)
    if root is None or root["kind"] != "htb" or root["handle"] != "1:":
        return {"state": "absent", "root": root and "%s %s" % (root["kind"], root["handle"])}
    default = int(str((root.get("options") or {}).get("default", "0")), 16)
    classes = tcf["classes"].get(dev) or {}
    leaves = {q["parent"]: q["kind"] for q in qdiscs if q.get("parent")}
    parent = classes.get("1:1") or {}
    out = {"state": "present", "root": "htb default %#x" % default, "classes": {}, "extra": []}
    out["rate"], out["ceil"] = (
        mbit(parent[k]) if parent.get(k) else None for k in ("rate", "ceil")
    )
    count = len(names)  # the declared classes: an extra one changes no burst
    model = tc_policy.sizing(parent["rate"], sizes, count) if sizes and parent.get("rate") else None
    if model is not None:
        out["sizing"] = model
    out["burst"], out["cburst"] = (_burst(parent, k, model) for k in ("burst", "cburst"))
    by_id = {}
    for cid, cls in sorted(classes.items()):
        minor = int(cid.partition(":")[2] or "0", 16)
        name = names.get(minor) if cls["parent"] == "1:1" and cid.startswith("1:") else None
        info = {
            "id": cid,
            "rate": mbit(cls["rate"]),
            "ceil": mbit(cls["ceil"]),
            "prio": cls["prio"],
            "quantum": cls["quantum"],
            "burst": _burst(cls, "burst", model),
            "cburst": _burst(cls, "cburst", model),
            "leaf": leaves.get(cid),
        }
        if name is not None:
            if model is not None:  # NIOC's words for what the operator declared
                for key in ("rate", "ceil", "quantum"):
                    del info[key]
                info.update(tc_policy.nioc(cls["rate"], cls["ceil"], cls["quantum"],
                                           parent["ceil"], model))  # fmt: skip
            out["classes"][name] = by_id[cid] = dict(info, filters=[])
        elif cid != "1:1":
            out["extra"].append(_class_text(info, cls["parent"]))
    for rule in tcf["filters"].get(dev) or []:
        owner = by_id.get(rule.get("flowid"))
        if owner is not None:
            owner["filters"].append(tc.text(rule))
        else:
            flowid = " flowid " + rule["flowid"] if "flowid" in rule else ""
            out["extra"].append("filter " + tc.text(rule) + flowid)
    for info in by_id.values():
        info["filters"].sort()
    out["extra"].sort()
    return out


def _burst(cls, key, model):
    """A class's burst (or cburst, at its ceil) as read, or the planned one it rounds to."""
    read, rate = cls.get(key), cls.get("rate" if key == "burst" else "ceil")
    if model is None or not rate:
        return read
    planned = tc_policy.burst(rate, model)
    return planned if tc_policy.settled(read, planned, rate) else read


def _class_text(info, parent):
    words = ["class", info["id"], "parent", parent or "root"]
    for key in ("rate", "ceil", "prio", "quantum", "burst", "cburst", "leaf"):
        if info[key] is not None:
            words += [key, str(info[key])]
    return " ".join(words)


def read_ingress(dev, tcf, facts):
    ifb = ifb_name(dev)
    hook = [q["kind"] for q in tcf["qdiscs"].get(dev) or [] if q["kind"] in ("ingress", "clsact")]
    filters = sorted(tc.text(r) for r in tcf["ingress"].get(dev) or [])
    out = {
        "state": "present" if redirect_text(dev) in filters else "absent",
        "hook": hook[0] if hook else None,
        "filters": filters,
        "ifb": ifb,
        "device": "present" if facts.link(ifb) else "absent",
    }
    if facts.link(ifb):
        out["up"] = facts.admin_up(ifb)
        out["policy"] = read_policy(
            ifb, tcf, {DEFAULT_MINOR: "default"}, link_sizes(facts.link(dev))
        )
    return out


# ---- the declared policy -----------------------------------------------------------------


def desired(params, current, facts):
    if params.get("ovs"):
        return desired_ovs_port(params, current, facts)
    return desired_device(params, current, facts)


def desired_ovs_port(params, current, facts):
    """Every member with the whole policy (NIOC's per adapter), at its own speed (or the
    declared one), and the port's QoS linux-noop so OVS leaves their qdiscs alone."""
    name, have = params["name"], current.get("ovs_qos")
    if "members" not in current:
        if params["state"] == "absent":
            return current
        raise PolicyError("%s is not an Open vSwitch port on this host" % name, "name")
    if params["state"] == "absent":  # under another QoS type the qdiscs are OVS's
        if have not in (None, tc_ovs.NOOP):
            return current
        members = {m: _released(c) for m, c in current["members"].items()}
        return dict(current, members=members, ovs_qos=None)
    if have not in (None, tc_ovs.NOOP):
        raise PolicyError(
            "%s has Open vSwitch QoS %s: OVS shapes its members (and replaces their qdiscs);"
            " clear it (ovs-vsctl clear port %s qos) to shape here" % (name, have, name),
            "name",
        )
    if params.get("ingress_limit") is not None:
        raise PolicyError(
            "ingress_limit on an Open vSwitch port is not built: the userspace datapath"
            " reads its members' frames (AF_PACKET) before the ingress hook, where an IFB"
            " redirect would shape only a copy",
            "ingress_limit",
        )
    members = {}
    for member, state in current["members"].items():
        members[member] = desired_device(dict(params, name=member), state, facts)
    return dict(current, members=members, ovs_qos=tc_ovs.NOOP)


def desired_device(params, current, facts):
    name = params["name"]
    if params["state"] == "absent":
        return _released(current)
    link = facts.link(name)
    if link is None:
        raise PolicyError("%s does not exist on this host" % name, "name")
    features = facts.get("tc_kernel")
    leaf = _leaf(params["leaf_qdisc"], features)
    sizes = link_sizes(link)
    want = dict(current)
    if any(params.get(k) is not None for k in ("classes", "egress_limit", "speed")):
        capacity = _capacity(params, facts)
        want.update(policy(params.get("classes") or [], capacity, sizes, leaf, features))
    limit = params.get("ingress_limit")
    if limit is not None:
        tc_plan.needs(features, ["IFB", "NET_ACT_MIRRED", "NET_SCH_INGRESS"], "ingress_limit")
        hook = current["ingress"]["hook"]
        ingress = {
            "state": "present",
            "hook": hook or "ingress",
            "ifb": ifb_name(name),
            "device": "present",
            "up": True,
        }
        ingress["filters"] = [redirect_text(name)]  # any other is extra: it goes
        ingress["policy"] = policy([], kbit(limit), sizes, leaf, features)
        want["ingress"] = ingress
    return want


def _released(current):
    """`state: absent`: no HTB root, no redirect, no IFB; an ingress qdisc that holds
    nothing else goes too."""
    ingress = current.get("ingress") or {}
    filters = [t for t in ingress.get("filters") or [] if t != redirect_text(current["name"])]
    hook = None if ingress.get("hook") == "ingress" and not filters else ingress.get("hook")
    return {
        "name": current["name"],
        "state": "absent",
        "ingress": {"state": "absent", "device": "absent", "hook": hook, "filters": filters},
    }


def link_sizes(link):
    """What the device's qdisc is handed: full frames (MTU + Ethernet header) and, from
    TCP and GRO, packets up to its GSO size (`ip -d link`: gso_max_size); None for a
    device that is not there."""
    if not link:
        return None
    frame = link["mtu"] + 14
    return {"frame": frame, "packet": max(frame, link.get("gso_max_size") or 0)}


def _leaf(choice, features):
    has = features is not None and "NET_SCH_FQ_CODEL" in features
    if choice == "fq_codel" and features is not None and not has:
        raise PolicyError(
            "leaf_qdisc fq_codel: this kernel has no fq_codel "
            "(CONFIG_NET_SCH_FQ_CODEL); use auto or pfifo",
            "leaf_qdisc",
        )
    return "fq_codel" if choice == "fq_codel" or (choice == "auto" and has) else "pfifo"


def _capacity(params, facts):
    """kbit/s the parent class gets: egress_limit, else the speed (declared, or the one
    the driver reports)."""
    name, declared, cap = params["name"], params.get("speed"), params.get("egress_limit")
    reported = (
        (facts.get("link_speeds") or {}).get(name) if facts.kind(name) in SPEED_KINDS else None
    )
    if declared and reported and declared > reported:
        raise PolicyError(
            "speed %d Mbit/s is above the %d Mbit/s %s reports" % (declared, reported, name),
            "speed",
        )
    speed = declared or reported
    if cap and speed and cap > speed:
        raise PolicyError(
            "egress_limit %d Mbit/s is above %s's speed %d Mbit/s" % (cap, name, speed),
            "egress_limit",
        )
    if not (cap or speed):
        kind = " (a %s)" % facts.kind(name) if facts.kind(name) else ""
        raise PolicyError(
            "%s%s reports no usable speed: declare speed (Mbit/s)" % (name, kind), "speed"
        )
    return kbit(cap or speed)


# ---- steps (vnet_tc_plan); snapshots are written on the controller (vnetctl/fleet/shaping)


def steps(current, desired, facts=None):
    """A device's steps (vnet_tc_plan); an OVS port's: its QoS linux-noop before any tc
    step, each member's tc steps, and the QoS cleared only after the last (clearing it
    first would let OVS delete the qdiscs the tc steps then fail to)."""
    if "members" not in desired:
        return tc_plan.steps(current, desired)
    out = []
    for member, want in sorted(desired["members"].items()):
        have = (current.get("members") or {}).get(member) or dict(EMPTY_STATE, name=member)
        out += tc_plan.steps(have, want)
    qos = tc_ovs.qos_steps(desired["name"], current.get("ovs_qos"), desired.get("ovs_qos"))
    return qos + out if desired.get("ovs_qos") == tc_ovs.NOOP else out + qos


def persist(params, desired, facts, units):
    """An HTB policy without filters or ingress shaping is networkd's to make (its
    [HierarchyTokenBucket] sections); networkd cannot express tc filters or the ingress
    redirect, so a policy with either is the oneshot unit's: the same tc lines vnetctl
    runs, from nothing (see vnet_persist)."""
    if params["state"] != "present":
        return
    if "members" in desired:  # OVS's ports: networkd may not manage them, so the unit
        lines = [text for _, want in sorted(desired["members"].items())
                 for tool, text in steps(dict(EMPTY_STATE, name=want["name"]), want)
                 if tool == "tc"]  # fmt: skip
        units.boot(sorted(desired["members"]), lines)  # the QoS row stays in OVSDB
        return
    name, ingress = desired["name"], desired.get("ingress") or {}
    egress = desired.get("state") == "present"
    if not egress and ingress.get("state") != "present":
        return
    filtered = egress and any(c.get("filters") for c in desired["classes"].values())
    if egress and not filtered and ingress.get("state") != "present":
        units.network(name, bootcfg.htb_sections(tc_plan.in_tc_words(desired)))
        return
    lines = [text for tool, text in steps(dict(EMPTY_STATE, name=name), desired) if tool == "tc"]
    devices = [name]
    if ingress.get("device") == "present":
        devices.append(ingress["ifb"])
        units.netdev(ingress["ifb"], "ifb")
        units.network(ingress["ifb"], bootcfg.link_section([("ActivationPolicy", "up")]))
    units.boot(devices, lines)


NO_INGRESS = {"state": "absent", "device": "absent", "hook": None, "filters": []}
EMPTY_STATE = {"state": "absent", "root": None, "ingress": NO_INGRESS}


if __name__ == "__main__":
    host.ansible_main(sys.modules[__name__])
