"""The marked frames of `path_probe` (vnetctl trace --probe): built from a trace's packet,
and found again wherever they pass, VXLAN-encapsulated copies included.

A probe frame is what the VM would send: Ethernet from its MAC (untagged, as a VM on an
access port sends), IPv4 or IPv6 (don't-fragment: a hop whose MTU is too small drops it
as it drops the VM's own traffic), then TCP (a SYN), UDP or an ICMP echo request, to the
packet's port; `size` is the IP packet's length, as an MTU counts. Without addresses it
is a bare Ethernet frame (EtherType 0x88B5, IEEE local experimental). The payload holds
TAG, the probe's 8-byte marker and the frame's sequence number; the rest is padding.
Standard library only (runs on the host).
"""

import ipaddress
import re
import socket
import struct

TAG = b"VNETCTL-PROBE:"
MARKER_BYTES = 8
MARKER = re.compile(r"[0-9a-f]{%d}\Z" % (2 * MARKER_BYTES))
MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
PROTOS = {"tcp": 6, "udp": 17, "icmp": None}  # icmp: 1 on IPv4, 58 on IPv6
LOCAL_EXPERIMENTAL = 0x88B5
SOURCE_PORT = 49152
DEFAULT_PORT = 9  # discard: tcp or udp without a port
MIN_L2_PAYLOAD = 46


def problem(packet):
    """Why the packet's fields cannot make a frame, or None."""
    for key in ("src_mac", "dst_mac"):
        if not isinstance(packet.get(key), str) or not MAC.match(packet[key].lower()):
            return "%s %r is not a MAC address (aa:bb:cc:dd:ee:ff)" % (key, packet.get(key))
    addresses = [packet.get("src_ip"), packet.get("dst_ip")]
    if any(addresses) and not all(addresses):
        return "src_ip and dst_ip go together (or neither: a bare Ethernet frame)"
    try:
        parsed = [ipaddress.ip_address(a) for a in addresses if a]
    except ValueError as exc:
        return str(exc)
    if parsed and parsed[0].version != parsed[1].version:
        return "src_ip and dst_ip are of different families"
    if packet.get("proto", "udp") not in PROTOS:
        return "proto %r is not one of %s" % (packet.get("proto"), ", ".join(sorted(PROTOS)))
    return None


def marker_problem(marker):
    if not isinstance(marker, str) or not MARKER.match(marker):
        return "marker %r is not %d lowercase hex digits" % (marker, 2 * MARKER_BYTES)
    return None


def checksum(data):
    data += b"\x00" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def _with_sum(body, at, pseudo=b""):
    value = checksum(pseudo + body)
    return body[:at] + struct.pack("!H", value) + body[at + 2 :]


def _l4(proto, port, payload, pseudo, v6):
    """The transport header and payload, checksummed over `pseudo`."""
    if proto == "tcp":  # a SYN, window 64240, data offset 5 words
        head = struct.pack("!HHIIBBHHH", SOURCE_PORT, port, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
        return _with_sum(head + payload, 16, pseudo)
    if proto == "udp":
        head = struct.pack("!HHHH", SOURCE_PORT, port, 8 + len(payload), 0)
        return _with_sum(head + payload, 6, pseudo)
    head = struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, 0x5650, 1)  # echo request
    return _with_sum(head + payload, 2, pseudo if v6 else b"")


def _ip(packet, payload_of):
    """(EtherType, IP packet) of `size` bytes whose transport payload is payload_of(n)."""
    src, dst = (ipaddress.ip_address(packet[k]) for k in ("src_ip", "dst_ip"))
    proto, v6 = packet.get("proto") or "udp", src.version == 6
    number = PROTOS[proto] or (58 if v6 else 1)
    port = packet.get("port") or DEFAULT_PORT
    l4_head = {"tcp": 20, "udp": 8, "icmp": 8}[proto]
    size = packet.get("size") or 0
    payload = payload_of(max(size - (40 if v6 else 20) - l4_head, 0))
    length = l4_head + len(payload)
    if v6:
        pseudo = src.packed + dst.packed + struct.pack("!I3xB", length, number)
        head = struct.pack("!IHBB", 6 << 28, length, number, 64) + src.packed + dst.packed
        return 0x86DD, head + _l4(proto, port, payload, pseudo, True)
    pseudo = src.packed + dst.packed + struct.pack("!xBH", number, length)
    head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0x5650, 0x4000, 64, number, 0,
                       src.packed, dst.packed)  # fmt: skip
    return 0x0800, _with_sum(head, 10) + _l4(proto, port, payload, pseudo, False)


def frames(packet, marker, count):
    """`count` frames (bytes) for `packet`, numbered 0..count-1 after the marker."""
    out = []
    for seq in range(count):
        mark = TAG + bytes.fromhex(marker) + struct.pack("!H", seq)

        def payload_of(room, mark=mark):
            return mark + b"\x00" * max(room - len(mark), 0)

        if packet.get("src_ip"):
            ethertype, body = _ip(packet, payload_of)
        else:
            room = max((packet.get("size") or 0), MIN_L2_PAYLOAD)
            ethertype, body = LOCAL_EXPERIMENTAL, payload_of(room)
        head = _mac(packet["dst_mac"].lower()) + _mac(packet["src_mac"].lower())
        out.append(head + struct.pack("!H", ethertype) + body)
    return out


def sequences(data, marker_bytes):
    """The sequence numbers of the probe frames in `data` (a frame as a device saw it:
    plain, tagged or inside a VXLAN/UDP packet)."""
    found, needle, start = set(), TAG + marker_bytes, 0
    while True:
        at = data.find(needle, start)
        if at < 0 or at + len(needle) + 2 > len(data):
            return found
        found.add(struct.unpack("!H", data[at + len(needle) : at + len(needle) + 2])[0])
        start = at + len(needle)


def send(device, frames):
    """Write each frame out of `device` (AF_PACKET): it arrives at the device's peer."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((device, 0))
        for frame in frames:
            sock.send(frame)
