"""The port-security matrix both dataplanes are held to: for each kind of frame a guest
could forge, from a guarded VM-like port, untagged, 802.1Q-tagged and QinQ, the guest's
own value and another guest's, and whether it arrives on the other side (frames.py
sends them from the guest end of a veth and listens on an unguarded guest).

Guests (each a veth pair: `vmN` the guest end, `vmNp` the port):
  vm1  guarded with its MAC and IPs (link-local addresses: any)   the main matrix
  vm2  guarded with its MAC only (no `ips`)                        the MAC checks
  vm3  guarded with its MAC and IPs, its link-local one declared  link-local checks
  vm4  not guarded: it listens
"Forged" is always another guest's value (vm1's for vm2 and vm3, vm2's for vm1)."""

from __future__ import annotations

from vnetctl.lab import host_exec

GUESTS = {
    f"vm{i}": {
        "mac": f"52:54:00:77:00:0{i}",
        "ip4": f"10.77.0.{i}",
        "ip6": f"fd77::{i}",
        "ll": f"fe80::5054:ff:fe77:{i}",
    }
    for i in (1, 2, 3, 4)
}
LISTENER = "vm4"
ENCAPS = {"untagged": [], "802.1Q": [10], "QinQ": [100, 10]}
PASS, DROP = "pass", "drop"


def add_guests(lab, host: str, macs: dict[str, str]) -> None:
    """Guest-like veth pairs in a lab host: NAME (the guest end: its MAC, up, no IPv6,
    so it sends nothing of its own) and NAMEp (the port)."""
    for guest, mac in macs.items():
        for argv in (["ip", "link", "add", guest, "type", "veth", "peer", "name", guest + "p"],
                     ["ip", "link", "set", "dev", guest, "address", mac, "up"],
                     ["sysctl", "-qw", f"net.ipv6.conf.{guest}.disable_ipv6=1"]):  # fmt: skip
            done = host_exec(lab.name, host, argv)
            assert done.returncode == 0, f"{argv}: {done.stderr}"


def guests_declared() -> list[dict]:
    """The guests as a port group declares them (port, mac, ips)."""
    vm1, vm2, vm3 = (GUESTS[g] for g in ("vm1", "vm2", "vm3"))
    return [
        {"port": "vm1p", "mac": vm1["mac"], "ips": [vm1["ip4"], vm1["ip6"]]},
        {"port": "vm2p", "mac": vm2["mac"]},
        {"port": "vm3p", "mac": vm3["mac"], "ips": [vm3["ip4"], vm3["ip6"], vm3["ll"]]},
    ]


def _rows(me: dict, other: dict) -> dict[str, tuple[dict, dict | None]]:
    """Row -> (the guest's own frame, the forged one); fields of frames.py's FRAME."""
    na = {"kind": "na", "ip6_src": me["ip6"], "lla": me["mac"]}
    ns = {"kind": "ns", "ip6_src": me["ip6"], "target": other["ip6"]}
    return {
        "Ethernet source MAC": (
            {"kind": "ip4", "ip_src": me["ip4"]},
            {"kind": "ip4", "ip_src": me["ip4"], "src": other["mac"]},
        ),
        "other EtherType (0x88B5)": ({"kind": "raw"}, {"kind": "raw", "src": other["mac"]}),
        "ARP sender MAC": (
            {"kind": "arp", "spa": me["ip4"], "tpa": "10.77.0.254"},
            {"kind": "arp", "spa": me["ip4"], "tpa": "10.77.0.254", "sha": other["mac"]},
        ),
        "ARP sender IP (gratuitous)": (
            {"kind": "arp", "spa": me["ip4"]},
            {"kind": "arp", "spa": other["ip4"]},
        ),
        "IPv4 source": (
            {"kind": "ip4", "ip_src": me["ip4"]},
            {"kind": "ip4", "ip_src": other["ip4"]},
        ),
        "IPv6 source": (
            {"kind": "ip6", "ip6_src": me["ip6"]},
            {"kind": "ip6", "ip6_src": other["ip6"]},
        ),
        "IPv6 NA target": (dict(na, target=me["ip6"]), dict(na, target=other["ip6"])),
        "NS source link-layer option": (dict(ns, lla=me["mac"]), dict(ns, lla=other["mac"])),
        "NA target link-layer option": (
            {"kind": "na", "ip6_src": me["ll"], "target": me["ll"], "lla": me["mac"]},
            {"kind": "na", "ip6_src": me["ll"], "target": me["ll"], "lla": other["mac"]},
        ),
        "RS from own link-local": ({"kind": "rs", "ip6_src": me["ll"], "lla": me["mac"]}, None),
        "DAD NS from :: (target)": (
            {"kind": "ns", "ip6_src": "::", "target": me["ip6"], "nonce": True},
            {"kind": "ns", "ip6_src": "::", "target": other["ip6"], "nonce": True},
        ),
        "MLDv2 report from ::": ({"kind": "mld", "ip6_src": "::"}, None),
        "IPv6 link-local source": (
            {"kind": "ip6", "ip6_src": me["ll"]},
            {"kind": "ip6", "ip6_src": other["ll"]},
        ),
        "NA target link-local": (
            {"kind": "na", "ip6_src": me["ll"], "target": me["ll"]},
            {"kind": "na", "ip6_src": me["ll"], "target": other["ll"]},
        ),
    }


# which rows each sender's matrix shows
SENDERS = {
    "vm1": ("MAC and IPs", list(_rows(GUESTS["vm1"], GUESTS["vm2"]))[:-2]),
    "vm2": ("MAC only", ["Ethernet source MAC", "other EtherType (0x88B5)", "ARP sender MAC",
                         "ARP sender IP (gratuitous)", "IPv4 source", "IPv6 source",
                         "IPv6 NA target", "NS source link-layer option",
                         "NA target link-layer option"]),
    "vm3": ("MAC and IPs, link-local declared",
            ["IPv6 link-local source", "NA target link-local"]),
}  # fmt: skip
FORGED_FROM = {"vm1": "vm2", "vm2": "vm1", "vm3": "vm1"}


def cases() -> list[tuple[str, str, str, str, dict]]:
    """(sender, row, encapsulation, "own"|"forged", frames.py FRAME) for every cell."""
    out = []
    for sender, (_, rows) in SENDERS.items():
        me, other = GUESTS[sender], GUESTS[FORGED_FROM[sender]]
        table = _rows(me, other)
        for row in rows:
            for encap, vlans in ENCAPS.items():
                for which, fields in zip(("own", "forged"), table[row], strict=True):
                    if fields is None:
                        continue
                    tag = f"{sender}|{row}|{encap}|{which}"
                    frame = {"dev": sender, "src": me["mac"], "vlans": vlans, "tag": tag}
                    out.append((sender, row, encap, which, dict(frame, **fields)))
    return out


def spec(count: int = 2) -> dict:
    return {"send": [c[-1] for c in cases()], "listen": [LISTENER], "count": count}


def matrix(received: list[str]) -> dict[tuple[str, str, str, str], str]:
    """(sender, row, encap, which) -> pass|drop, from the tags the listener received."""
    got = set(received)
    return {c[:4]: PASS if c[-1]["tag"] in got else DROP for c in cases()}


def expected() -> dict[tuple[str, str, str, str], str]:
    """What holds: the own frame passes and the forged one is dropped, untagged and with
    one tag; with a second tag (past what the dataplane parses) nothing passes; a guest
    guarded by MAC only sends any IP, one guarded by IPs nothing but ARP, IPv4 and IPv6."""
    out = {}
    for sender, row, encap, which, _ in cases():
        ip_row = row in ("ARP sender IP (gratuitous)", "IPv4 source", "IPv6 source",
                         "IPv6 NA target")  # fmt: skip
        verdict = PASS if which == "own" or (sender == "vm2" and ip_row) else DROP
        if row == "other EtherType (0x88B5)" and sender != "vm2":
            verdict = DROP  # a guest with IPs sends ARP, IPv4 and IPv6 only
        if encap == "QinQ":  # OVS parses as many tags as vlan-limit and its datapath allow:
            verdict = DROP  # 1 by default, and the lab's userspace datapath parses 1
        out[(sender, row, encap, which)] = verdict
    return out


def render(results: dict[str, dict]) -> str:
    """The matrices as text, one column pair per dataplane and encapsulation."""
    planes = list(results)
    lines = []
    for sender, (title, rows) in SENDERS.items():
        lines.append(f"{sender} guarded by {title}; forged = {FORGED_FROM[sender]}'s value")
        head = f"{'':32}" + "".join(f"| {plane:<36}" for plane in planes)
        sub = f"{'':32}" + "".join("| " + "".join(f"{e:<12}" for e in ENCAPS) for _ in planes)
        cols = f"{'':32}" + "".join("| " + "own  forged " * len(ENCAPS) for _ in planes)
        lines += [head.rstrip(), sub.rstrip(), cols.rstrip()]
        for row in rows:
            cells = []
            for plane in planes:
                got = results[plane]
                cell = "| "
                for encap in ENCAPS:
                    own = got.get((sender, row, encap, "own"), "-")
                    forged = got.get((sender, row, encap, "forged"), "-")
                    cell += f"{own:<5}{forged:<7}"
                cells.append(cell)
            lines.append((f"{row:<32}" + "".join(cells)).rstrip())
        lines.append("")
    return "\n".join(lines)
