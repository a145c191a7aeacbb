"""Run on a lab host (`python3 -c SOURCE SPEC`): send Ethernet frames from guest-like
interfaces with a raw AF_PACKET socket and say which arrive on the others.

SPEC is JSON {"send": [FRAME...], "listen": [dev, ...], "count": frames per sender}; the
output is JSON {listening dev: [tags of the frames received]} (">dev": the frames dev
sends, e.g. a VM's tap to its guest). A FRAME is {"dev", "tag",
"src" (MAC), "dst" (MAC; default broadcast, or the IPv6 group's), "kind", "vlans" (VLAN
ids, outermost first: [] untagged, [10] 802.1Q, [100, 10] QinQ with an 802.1ad outer
tag), and the kind's fields}:
  raw   EtherType 0x88B5 (IEEE local experimental)
  ip4   "ip_src": IPv4, protocol 253 (experimental), to 10.77.0.254
  arp   "spa", "sha" (default src), "tpa" (default spa: a gratuitous ARP)
  ip6   "ip6_src": IPv6, next header 253, to ff02::1
  na    "ip6_src", "target", "lla" (target link-layer option; none without): to ff02::1
  ns    "ip6_src" (:: for duplicate address detection), "target", "lla" (source
        link-layer option), "nonce" (a nonce option, as Linux's DAD sends): to the
        target's solicited-node group
  rs    "ip6_src", "lla": a router solicitation to ff02::2
  mld   "ip6_src": an MLDv2 report (hop-by-hop router alert) joining ff02::1:ff00:1
Nothing on the hosts answers these in a way that matters: experimental protocols, and
ND/ARP for addresses of the test's own. A frame arrived when a frame from its source MAC
that begins with it (padding aside) is read on the listening side. Bounded: `count`
frames per sender, then 2 s of listening."""

from __future__ import annotations

import ipaddress
import json
import select
import socket
import struct
import sys
import time

ETH_P_ALL, MARK = 0x0003, b"VNETCTL"
TPID = {"8021q": 0x8100, "8021ad": 0x88A8}
SOL_PACKET, PACKET_AUXDATA, TP_STATUS_VLAN_VALID, TP_STATUS_VLAN_TPID_VALID = 263, 8, 16, 64
LISTEN_S = 2.0
MIN_FRAME = 60


def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def checksum(data):
    data += b"\x00" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ip4(item):
    payload = MARK + item["tag"].encode()
    src, dst = socket.inet_aton(item["ip_src"]), socket.inet_aton("10.77.0.254")
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0, 0, 64, 253, 0, src, dst)
    head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
    return 0x0800, head + payload


def arp(item):
    spa = item["spa"]
    body = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac(item.get("sha") or item["src"])
    body += socket.inet_aton(spa) + b"\x00" * 6 + socket.inet_aton(item.get("tpa") or spa)
    return 0x0806, body + MARK + item["tag"].encode()


def ip6(src, dst, next_header, payload, hop_limit=255):
    head = struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop_limit)
    return 0x86DD, head + ipaddress.IPv6Address(src).packed + dst.packed + payload


def icmp6(src, dst, body, extension=b""):
    """An ICMPv6 message with its checksum, after `extension` (a hop-by-hop header)."""
    pseudo = ipaddress.IPv6Address(src).packed + dst.packed
    pseudo += struct.pack("!I3xB", len(body), 58)
    body = body[:2] + struct.pack("!H", checksum(pseudo + body)) + body[4:]
    return ip6(src, dst, 0 if extension else 58, extension + body, 1 if extension else 255)


def lla_option(kind, item):
    return struct.pack("!BB", kind, 1) + mac(item["lla"]) if item.get("lla") else b""


def nd(item):
    """NA, NS, RS or an MLD report, the tag's last bytes in the reserved bits (receivers
    ignore them) so that frames of different cells differ."""
    kind, src = item["kind"], item["ip6_src"]
    reserved = int.from_bytes(item["tag"].encode()[-3:].rjust(3, b"\x00"), "big")
    if kind == "na":
        body = struct.pack("!BBHI", 136, 0, 0, (1 << 29) | reserved)  # override flag
        body += ipaddress.IPv6Address(item["target"]).packed + lla_option(2, item)
        return icmp6(src, ipaddress.IPv6Address("ff02::1"), body)
    if kind == "ns":
        target = ipaddress.IPv6Address(item["target"])
        group = ipaddress.IPv6Address(b"\xff\x02" + b"\x00" * 9 + b"\x01\xff" + target.packed[13:])
        body = struct.pack("!BBHI", 135, 0, 0, reserved) + target.packed + lla_option(1, item)
        if item.get("nonce"):
            body += struct.pack("!BB", 14, 1) + item["tag"].encode()[:6].ljust(6, b"\x00")
        return icmp6(src, group, body)
    if kind == "rs":
        body = struct.pack("!BBHI", 133, 0, 0, reserved) + lla_option(1, item)
        return icmp6(src, ipaddress.IPv6Address("ff02::2"), body)
    record = struct.pack("!BBH", 4, 0, 0) + ipaddress.IPv6Address("ff02::1:ff00:1").packed
    body = struct.pack("!BBHHH", 143, 0, 0, reserved & 0xFFFF, 1) + record
    alert = struct.pack("!BBBBHBB", 58, 0, 5, 2, 0, 1, 0)  # router alert, PadN
    return icmp6(src, ipaddress.IPv6Address("ff02::16"), body, alert)


def frame(item):
    kind = item.get("kind", "raw")
    if kind == "raw":
        ethertype, body = 0x88B5, MARK + item["tag"].encode()
    elif kind == "ip4":
        ethertype, body = ip4(item)
    elif kind == "arp":
        ethertype, body = arp(item)
    elif kind == "ip6":
        payload = MARK + item["tag"].encode()
        ethertype, body = ip6(item["ip6_src"], ipaddress.IPv6Address("ff02::1"), 253, payload)
    else:
        ethertype, body = nd(item)
    dst = b"\xff" * 6
    if ethertype == 0x86DD:  # to the IPv6 group's multicast MAC
        dst = b"\x33\x33" + body[36:40]
    if item.get("dst"):  # a unicast destination asked for
        dst = mac(item["dst"])
    vlans = item.get("vlans") or []
    tags = b""
    for depth, vid in enumerate(vlans):  # outermost first: 802.1ad outside in QinQ
        tpid = TPID["8021ad"] if depth == 0 and len(vlans) > 1 else TPID["8021q"]
        tags += struct.pack("!HH", tpid, vid)
    return dst + mac(item["src"]) + tags + struct.pack("!H", ethertype) + body


def received(sock):
    """A frame as it was on the wire: the kernel hands the outer VLAN tag of a frame it
    receives apart (auxdata), so it goes back between the MACs and the rest."""
    data, aux, _, addr = sock.recvmsg(4096, socket.CMSG_SPACE(20))
    for level, kind, value in aux:
        if (level, kind) == (SOL_PACKET, PACKET_AUXDATA) and len(value) >= 20:
            status, _, _, _, _, tci, tpid = struct.unpack("IIIHHHH", value[:20])
            if status & TP_STATUS_VLAN_VALID:
                tpid = tpid if status & TP_STATUS_VLAN_TPID_VALID else TPID["8021q"]
                data = data[:12] + struct.pack("!HH", tpid, tci) + data[12:]
    return data, addr


def main(spec):
    socks = {}
    for dev in spec["listen"]:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.bind((dev.lstrip(">"), 0))
        socks[sock] = dev
    # no pause: a bound AF_PACKET socket queues every frame from then on, and the frames
    # are sent after this; the listening below reads them from those queues
    frames = [(item["tag"], frame(item)) for item in spec["send"]]
    sources = {f[6:12] for _, f in frames}
    for item, (_, data) in zip(spec["send"], frames, strict=True):
        out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        out.bind((item["dev"], 0))
        for _ in range(spec.get("count", 3)):
            out.send(data.ljust(MIN_FRAME, b"\x00"))
        out.close()
    seen = {dev: set() for dev in spec["listen"]}
    deadline = time.monotonic() + LISTEN_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select(list(socks), [], [], max(0.0, deadline - time.monotonic()))
        for sock in ready:
            data, addr = received(sock)
            leaving = socks[sock].startswith(">")  # what the device sends (to a VM, a tap)
            if (addr[2] == socket.PACKET_OUTGOING) != leaving or data[6:12] not in sources:
                continue
            # whole, or with the padding after an IP packet cut (bridge netfilter does)
            seen[socks[sock]] |= {tag for tag, sent in frames if data.startswith(sent)}
    return {dev: sorted(tags) for dev, tags in seen.items()}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
