"""systemd-networkd's files: the text of the sections vnetctl renders (vnet_persist
writes them), and what networkd makes of the .network files a host has (read, never
written here): which file configures a device, whether that file gives the device
addresses or routes of its own (a port of a bridge or bond must not have any at boot),
and where vnetctl's settings for a device belong then.

networkd configures a device with the first .network file, in the order of the files'
names across its directories, whose [Match] matches it; files of one name shadow each
other (/etc first, then /run, then /usr/local/lib and /usr/lib); a file's drop-ins
(`NAME.network.d/*.conf`, in any of those directories) are read after it. An empty
`Address=` does not clear the addresses a file gave (networkd 252 ignores it), so a
drop-in cannot take them away: a file that sorts before it can (vnet_persist).

Runs on the managed host: Python 3.9+, standard library only.
"""

import os

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_fib
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_fib

DIRS = ("etc/systemd/network", "run/systemd/network", "usr/local/lib/systemd/network",
        "usr/lib/systemd/network", "lib/systemd/network")  # fmt: skip
TRUE = ("yes", "true", "on", "1", "ipv4", "ipv6")  # DHCP= takes a family too


# ---- the sections vnetctl writes -----------------------------------------------------


def unit_text(header, sections):
    """A unit file: a comment line, then [Section] and key=value lines; a value that is a
    list gives the key once per item; None leaves the key out (and a section of nothing
    but None, the section)."""
    out = [header]
    for name, pairs in sections:
        lines = [
            "%s=%s" % (key, _word(item))
            for key, value in pairs
            for item in (value if isinstance(value, list) else [value])
            if item is not None
        ]
        if lines:  # a section with nothing set is left out
            out += ["", "[%s]" % name] + lines
    return "\n".join(out) + "\n"


def _word(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def ip_sections(state):
    """[Network] Address= and a [Route] per route of a vnet_ip-style state: {"addresses":
    ["10.0.0.5/24"], "routes": ["default via 10.0.0.1 metric 100"]} (vnet_fib's TEXTs)."""
    sections = [("Network", [("Address", sorted(state.get("addresses") or []))])]
    sections += [("Route", vnet_fib.networkd(r)) for r in sorted(state.get("routes") or [])]
    return sections if state.get("addresses") or state.get("routes") else []


def bridge_vlan(member):
    """[BridgeVLAN] of a vnet_vlans membership {"vlans": "1,100-110", "pvid", "untagged"}."""
    pairs = [("PVID", member.get("pvid"))]
    pairs += [("VLAN", [v for v in (member.get("vlans") or "").split(",") if v])]
    pairs += [("EgressUntagged", [v for v in (member.get("untagged") or "").split(",") if v])]
    return [("BridgeVLAN", pairs)]


def htb_sections(state):
    """[HierarchyTokenBucket], a [HierarchyTokenBucketClass] per class and its leaf qdisc,
    of a traffic_shaping egress state (rates in Mbit/s, class ids "1:2")."""
    default = state["root"].rpartition(" ")[2]
    out = [("HierarchyTokenBucket", [("Parent", "root"), ("Handle", 1),
                                     ("DefaultClass", "%x" % int(default, 16))])]  # fmt: skip
    out.append(_htb_class("1:0", "1:1", dict(state, prio=None, quantum=1514)))
    for info in sorted(state["classes"].values(), key=lambda c: int(c["id"][2:], 16)):
        out.append(_htb_class("1:1", info["id"], info))
        if info.get("leaf"):
            out.append((LEAVES[info["leaf"]], [("Parent", info["id"]),
                                               ("Handle", info["id"][2:])]))  # fmt: skip
    return out


LEAVES = {"fq_codel": "FairQueueingControlledDelay", "pfifo": "PFIFO"}


def _htb_class(parent, cid, info):
    pairs = [("Parent", parent), ("ClassId", cid), ("Priority", info["prio"]),
             ("QuantumBytes", info["quantum"]), ("Rate", "%dK" % round(info["rate"] * 1000)),
             ("CeilRate", "%dK" % round(info["ceil"] * 1000)), ("BufferBytes", info.get("burst")),
             ("CeilBufferBytes", info.get("cburst"))]  # fmt: skip
    return ("HierarchyTokenBucketClass", pairs)


def link_section(pairs):
    """[Link]: MTUBytes=, ActivationPolicy= (up, down) and the like."""
    return [("Link", pairs)]


def seconds(value):
    return None if value is None else "%gs" % value


# ---- what networkd reads -----------------------------------------------------------


def read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def section(text, name):
    """[(key, value)] of every [name] section of a unit's text, in order."""
    pairs, inside = [], False
    for raw in text.splitlines():
        item = raw.strip()
        if not item or item[0] in "#;":
            continue
        if item.startswith("["):
            inside = item == "[%s]" % name
        elif inside and "=" in item:
            key, _, value = item.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


def network_file(root, dev):
    """NETWORK_FILE of `dev` in networkd's state (/run/systemd/netif/links/IFINDEX): the
    file networkd configured it with since it started, or None."""
    index = read(os.path.join(root, "sys/class/net", dev, "ifindex"))
    state = read(os.path.join(root, "run/systemd/netif/links", (index or "").strip() or "-"))
    for text in (state or "").splitlines():
        if text.startswith("NETWORK_FILE="):
            return text[len("NETWORK_FILE=") :]
    return None


def files(root):
    """{name: path under root} of every .network file networkd reads, a name's first
    directory winning; masked ones (empty, or a link to /dev/null) left out."""
    found = {}
    for directory in DIRS:
        full = os.path.join(root, directory)
        for name in sorted(os.listdir(full)) if os.path.isdir(full) else []:
            path = "%s/%s" % (directory, name)
            if name.endswith(".network") and name not in found:
                found[name] = path
    return {n: p for n, p in found.items() if read(os.path.join(root, p))}


def exact(root, dev, skip_prefix):
    """The files that match exactly `dev` (`[Match] Name=DEV`) but those whose name
    starts with `skip_prefix` (vnetctl's), by name: [(name, path under root)]."""
    out = []
    for name, path in sorted(files(root).items()):
        text = read(os.path.join(root, path)) or ""
        if not name.startswith(skip_prefix) and section(text, "Match") == [("Name", dev)]:
            out.append((name, path))
    return out


def addressing(root, name, skip_prefix):
    """What file `name` and its drop-ins (but `skip_prefix`'s) give a device of layer 3:
    ["Address=10.0.0.5/24", "[Route]", "DHCP=yes", ...]; [] for none."""
    texts = [read(os.path.join(root, files(root).get(name, "-"))) or ""]
    for directory in DIRS:
        full = os.path.join(root, directory, name + ".d")
        for conf in sorted(os.listdir(full)) if os.path.isdir(full) else []:
            if conf.endswith(".conf") and not conf.startswith(skip_prefix):
                texts.append(read(os.path.join(full, conf)) or "")
    found = []
    for text in texts:
        for key, value in section(text, "Network"):
            given = key in ("Address", "Gateway") and value
            if given or key in ("DHCP", "IPv6AcceptRA") and value.lower() in TRUE:
                found.append("%s=%s" % (key, value))
        found += ["[%s]" % s for s in ("Address", "Route") if section(text, s)]
    return found


# ---- where vnetctl's settings for a device go (vnet_persist writes them) -----------

# what says a device is a port at boot where no key does (an OVS bridge's port)
PORT_MARK = "# a port of %s at boot: its addresses and routes are its master's"


def is_port(text):
    """A drop-in of a device that is a port at boot: of a bridge, a bond, or (PORT_MARK)
    of what networkd does not know of."""
    text = text or ""
    return any(k in ("Bridge", "Bond") for k, _ in section(text, "Network")) or any(
        line.startswith("# a port of ") for line in text.splitlines()
    )


class Refused(Exception):
    """The device's files cannot be made right by vnetctl's own: the sentence says why."""


def foreign(root, dev, ours):
    """The name of the file of someone else's that configures `dev`: the one networkd
    uses (it must match exactly `dev`: Refused otherwise), else one that matches exactly
    `dev` but that vnetctl's own file shadows; None when there is none. `ours`: the prefix
    of vnetctl's file names."""
    path = network_file(root, dev)
    if path and not os.path.basename(path).startswith(ours):
        text = read(os.path.join(root, path.lstrip("/")))
        if text is not None:
            if section(text, "Match") != [("Name", dev)]:
                why = "%s is configured by %s, which matches more than %s" % (dev, path, dev)
                raise Refused(why + ": give it a file of its own")
            return os.path.basename(path)
    found = exact(root, dev, ours)
    return found[0][0] if found else None


def takes_over(root, dev, foreign_name, ported, ours):
    """Whether vnetctl's own file for `dev` (`ours` + DEV.network) must replace the
    foreign file at boot: `dev` is a port there (`ported`) and the foreign file gives it
    addresses or routes. Refused when it sorts before vnetctl's, which cannot win then."""
    gives = addressing(root, foreign_name, ours) if ported else []
    own = "%s%s.network" % (ours, dev)
    if gives and own > foreign_name:
        raise Refused(
            "%s is a port at boot, but %s gives it %s and sorts before %s, which networkd "
            "would not use: move those to its master there, or rename the file to sort "
            "after %s" % (dev, foreign_name, ", ".join(gives), own, own)
        )
    return bool(gives)


def drop_ins(root, directory, name, ours):
    """{path under root: text} of vnetctl's drop-ins of file `name` in `directory`."""
    full = os.path.join(root, directory, name + ".d")
    out = {}
    for conf in sorted(os.listdir(full)) if os.path.isdir(full) else []:
        if conf.startswith(ours) and conf.endswith(".conf"):
            out["%s/%s.d/%s" % (directory, name, conf)] = read(os.path.join(full, conf)) or ""
    return out


def misplaced(root, devices, directory, ours):
    """[(path, where it belongs, text)] of vnetctl's drop-ins (in `directory`) for
    `devices` that are not in the base networkd will use: vnetctl's own while the device
    is a port at boot that its foreign file gives addresses (takes_over), the foreign
    file's otherwise."""
    out = []
    for dev in devices:
        own = "%s%s.network" % (ours, dev)
        try:
            theirs = foreign(root, dev, ours)
            found = drop_ins(root, directory, own, ours)
            found.update(drop_ins(root, directory, theirs or own, ours))
            ported = any(is_port(t) for t in found.values())
            take = theirs is None or takes_over(root, dev, theirs, ported, ours)
        except Refused:
            continue  # the task rendering it fails, saying why
        for path, text in sorted(found.items()):
            moved = "%s/%s.d/%s" % (directory, own if take else theirs, path.rpartition("/")[2])
            if moved != path:
                out.append((path, moved, text))
    return out


def device_of(root, path):
    """The device a drop-in (`DIR/BASE.network.d/X.conf`) configures, or None."""
    base = path.rpartition("/")[0].rpartition("/")[2]
    if not base.endswith(".network.d"):
        return None
    text = read(os.path.join(root, files(root).get(base[: -len(".d")], "-"))) or ""
    match = section(text, "Match")
    return match[0][1] if len(match) == 1 and match[0][0] == "Name" else None
