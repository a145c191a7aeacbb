"""Bridge VLAN filtering, for linux_bridge and port_group: VLAN sets, what a bridge and
its ports carry (`bridge -j vlan show`), and the `bridge vlan` commands between two
memberships.

A membership is {"vlans": "1,100-110", "pvid": 1 or None, "untagged": "1"}: VLAN sets
as canonical range text, so a diff reads "100-110 -> 100-120" and compares exactly.
Declared memberships are exact: the VLANs, the PVID and the untagged VLANs, nothing
else (the PVID and the untagged VLANs are members too).

Runs on the managed host: Python 3.9+, standard library only.
"""

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_core, vnet_facts, vnet_kernel
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_core
    import vnet_facts
    import vnet_kernel

ModuleError = vnet_core.ModuleError
VID_RANGE = (1, 4094)
# VLANs as text or numbers: 100, "100-110", "1,100-110", [1, "100-110"]
VLAN_SET = {"type": "list", "elements": "str"}
MEMBERSHIP = {"vlans": VLAN_SET, "pvid": {"type": "int", "range": list(VID_RANGE)},
              "untagged": VLAN_SET}  # fmt: skip
FACTS = {
    "bridge_vlans": vnet_facts.command(["bridge", "-j", "-compressvlans", "vlan", "show"]),
    "kernel": vnet_kernel.SOURCE,
}


def vids(value, what="vlans"):
    """A set of VLAN ids from a declared value (see VLAN_SET) or canonical text."""
    out = set()
    if isinstance(value, int):
        value = [value]
    items = value.split(",") if isinstance(value, str) else value or []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        low, _, high = text.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            msg = "%s: %r is not a VLAN id or a range (100, 100-110)" % (what, text)
            raise ModuleError(msg) from None
        if not VID_RANGE[0] <= first <= last <= VID_RANGE[1]:
            raise ModuleError("%s: %r is outside %d..%d" % (what, text, *VID_RANGE))
        out.update(range(first, last + 1))
    return out


def ranges(ids):
    """Sorted ids as [(first, last)] runs of consecutive ids."""
    runs = []
    for vid in sorted(ids):
        if runs and runs[-1][1] == vid - 1:
            runs[-1][1] = vid
        else:
            runs.append([vid, vid])
    return [tuple(r) for r in runs]


def text(ids):
    """Canonical text of a VLAN set: "1,100-110" ("" for none)."""
    return ",".join(str(a) if a == b else "%d-%d" % (a, b) for a, b in ranges(ids))


def membership(vlans=(), pvid=None, untagged=()):
    vlans, untagged = set(vlans), set(untagged)
    return {"vlans": text(vlans), "pvid": pvid, "untagged": text(untagged & vlans)}


def declared(spec, what):
    """A declared membership (MEMBERSHIP's keys) in canonical form: exact, with the PVID
    and the untagged VLANs among the members."""
    pvid = spec.get("pvid")
    untagged = vids(spec.get("untagged"), what + ".untagged")
    members = vids(spec.get("vlans"), what + ".vlans") | untagged
    return membership(members | ({pvid} if pvid else set()), pvid, untagged)


def memberships(facts):
    """{device: membership} from `bridge -j vlan show` (ranges expanded)."""
    out = {}
    for entry in facts.get("bridge_vlans") or []:
        members, untagged, pvid = set(), set(), None
        for item in entry.get("vlans", []):
            span = set(range(item["vlan"], item.get("vlanEnd", item["vlan"]) + 1))
            members |= span
            flags = item.get("flags", [])
            if "Egress Untagged" in flags:
                untagged |= span
            if "PVID" in flags:
                pvid = item["vlan"]
        out[entry["ifname"]] = membership(members, pvid, untagged)
    return out


def default_membership(default_pvid):
    """What the kernel gives a port it adds (and a bridge it makes): the default PVID,
    untagged; nothing with vlan_default_pvid 0."""
    if not default_pvid:
        return membership()
    return membership({default_pvid}, default_pvid, {default_pvid})


def after_default_pvid(member, old, new):
    """A membership after `vlan_default_pvid` changed from `old` to `new`: the kernel moves
    a device still on the old default (PVID, untagged) to the new one, unless it has
    the new VLAN already (net/bridge/br_vlan.c __br_vlan_set_default_pvid)."""
    have, untagged = vids(member["vlans"]), vids(member["untagged"])
    on_old = not old or member["pvid"] == old and old in untagged
    if old == new or not on_old or new in have:
        return member
    have.discard(old)
    untagged.discard(old)
    if new:
        have.add(new)
        untagged.add(new)
    return membership(have, new or None, untagged)


def require(facts, what_for):
    vnet_kernel.require("bridge_vlan_filtering", facts, what_for)


def steps(device, before, after, self_=False):
    """`bridge vlan` steps from membership `before` to `after` on `device` (`self`: the
    bridge's own VLANs). Adds first (each with its exact flags: re-adding a VLAN sets
    its flags), then removals; runs of VLANs with the same flags are one range."""
    have, want = vids(before["vlans"]), vids(after["vlans"])
    old_untagged, new_untagged = vids(before["untagged"]), vids(after["untagged"])

    def flags(vid, pvid, untagged):
        return (vid == pvid, vid in untagged)

    changed = {
        v for v in want
        if v not in have
        or flags(v, before["pvid"], old_untagged) != flags(v, after["pvid"], new_untagged)
    }  # fmt: skip
    tail = ("self",) if self_ else ()
    out = []
    pvid = after["pvid"] if after["pvid"] in changed else None
    if pvid is not None:
        extra = ("untagged",) if pvid in new_untagged else ()
        out.append(_line("add", device, str(pvid), ("pvid",) + extra + tail))
    for untagged in (True, False):
        runs = ranges(v for v in changed if v != pvid and (v in new_untagged) == untagged)
        for first, last in runs:
            extra = ("untagged",) if untagged else ()
            out.append(_line("add", device, _span(first, last), extra + tail))
    for first, last in ranges(have - want):
        out.append(_line("del", device, _span(first, last), tail))
    return out


def _span(first, last):
    return str(first) if first == last else "%d-%d" % (first, last)


def _line(verb, device, vid, extra):
    return vnet_core.step("bridge", "vlan", verb, "dev", device, "vid", vid, *extra)


# ---- linux_bridge's VLAN fields ----------------------------------------------------

PORT_MEMBERSHIP = dict(MEMBERSHIP, port={"type": "ifname", "required": True})
BRIDGE_SPEC = {
    "vlan_filtering": {"type": "bool"},
    # the VLAN the kernel gives a port it adds (0: none); 1 by default
    "default_pvid": {"type": "int", "range": [0, VID_RANGE[1]]},
    "bridge_vlans": {"type": "dict", "options": MEMBERSHIP},  # the bridge's own (`self`)
    "port_vlans": {"type": "list", "elements": "dict", "options": PORT_MEMBERSHIP},
}


def declares(params):
    return any(params.get(field) is not None for field in BRIDGE_SPEC)


def read_bridge(params, facts, name):
    """The VLAN fields of bridge `name`, when the task declares any (a plain bridge task
    reads no VLANs): filtering, default PVID, its own VLANs, the declared ports'."""
    link = facts.link(name)
    if link is None or not declares(params):
        return {}
    info = link["linkinfo"].get("info_data") or {}
    current = {"vlan_filtering": bool(info.get("vlan_filtering")),
               "default_pvid": info.get("vlan_default_pvid")}  # fmt: skip
    if params.get("bridge_vlans") is not None or params.get("port_vlans") is not None:
        table = memberships(facts)
        current["bridge_vlans"] = table.get(name, membership())
        current["port_vlans"] = {
            p["port"]: table.get(p["port"], membership())
            for p in params.get("port_vlans") or []
            if (facts.link(p["port"]) or {}).get("master") == name
        }
    return current


def desired_bridge(params, want, facts, also=()):
    """`want` with the declared VLAN fields in canonical form; refused before any change
    where the kernel lacks VLAN filtering, or a port is not one of the bridge's (those it
    owns, and `also`: the VM ports on it)."""
    if not declares(params):
        return want
    name = want["name"]
    if params.get("vlan_filtering") or any(
        params.get(f) is not None for f in ("default_pvid", "bridge_vlans", "port_vlans")
    ):
        require(facts, "bridge %s" % name)
    if params.get("bridge_vlans") is not None:
        want["bridge_vlans"] = declared(params["bridge_vlans"], "bridge_vlans")
    if params.get("port_vlans") is not None:
        ports = {}
        for i, spec in enumerate(params["port_vlans"]):
            ports_now = list(want.get("ports", [])) + list(also)
            if spec["port"] not in ports_now:
                raise ModuleError(
                    "port_vlans[%d]: %s is not a port of bridge %s (ports: %s)"
                    % (i, spec["port"], name, ", ".join(ports_now))
                )
            ports[spec["port"]] = declared(spec, "port_vlans[%d]" % i)
        want["port_vlans"] = ports
    return want


def bridge_create_options(desired):
    """Tokens for `ip link add ... type bridge`: filtering and the default PVID from the
    start (a kernel without VLAN filtering refuses the bridge, and nothing is made)."""
    out = ["vlan_filtering", 1] if desired.get("vlan_filtering") else []
    if desired.get("default_pvid") is not None:
        out += ["vlan_default_pvid", desired["default_pvid"]]
    return out


def bridge_steps(current, desired, new_ports):
    """After the ports are added: the default PVID, the memberships (from what the kernel
    gave new ports), then filtering on (or, turning it off, filtering off first)."""
    name, creating = desired["name"], current["state"] == "absent"
    dpvid = desired.get("default_pvid", 1) if creating else current.get("default_pvid")
    new = desired.get("default_pvid", dpvid)
    out = []
    if not creating and new != dpvid:
        out.append(vnet_core.step("ip", "link", "set", "dev", name, "type", "bridge",
                                  "vlan_default_pvid", new))  # fmt: skip
    toggle = []
    if not creating and desired.get("vlan_filtering") not in (None, current.get("vlan_filtering")):
        toggle.append(vnet_core.step("ip", "link", "set", "dev", name, "type", "bridge",
                                     "vlan_filtering", int(desired["vlan_filtering"])))  # fmt: skip
    if toggle and not desired["vlan_filtering"]:
        out += toggle
    if "bridge_vlans" in desired:
        base = default_membership(dpvid) if creating else current["bridge_vlans"]
        out += steps(name, after_default_pvid(base, dpvid, new), desired["bridge_vlans"], True)
    for port, want in sorted(desired.get("port_vlans", {}).items()):
        if port in new_ports:
            base = default_membership(dpvid)
        else:
            base = current.get("port_vlans", {}).get(port, default_membership(dpvid))
        out += steps(port, after_default_pvid(base, dpvid, new), want)
    return out + (toggle if toggle and desired["vlan_filtering"] else [])


def snapshot_bridge(facts, name, ports):
    """The VLAN fields of a bridge with filtering on (nothing otherwise)."""
    info = facts.link(name)["linkinfo"].get("info_data") or {}
    if not info.get("vlan_filtering"):
        return {}
    table = memberships(facts)
    return {"vlan_filtering": True, "default_pvid": info.get("vlan_default_pvid"),
            "bridge_vlans": table.get(name, membership()),
            "port_vlans": [dict(table[p], port=p) for p in ports if p in table]}  # fmt: skip
