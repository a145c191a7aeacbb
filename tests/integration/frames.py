"""Run on a lab host (`python3 -c SOURCE SPEC`): send Ethernet frames from guest-like
interfaces with a raw AF_PACKET socket and say which arrive on the others.

SPEC is JSON {"send": [{"dev", "src" (MAC), "tag", "ip_src" (optional: an IPv4
packet from that address)}], "listen": [dev, ...], "count": frames per sender}; the
output is JSON {listening dev: [tags received]}. Bounded: `count` frames per sender,
then 2 s of listening. Frames are broadcast with EtherType 0x88B5 (IEEE local
experimental) or IPv4 protocol 253 (experimental): nothing on the host answers them."""

from __future__ import annotations

import json
import select
import socket
import struct
import sys
import time

ETH_P_ALL, ETHERTYPE, MARK = 0x0003, 0x88B5, b"VNETCTL"
LISTEN_S = 2.0


def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def ipv4(src, tag):
    """An IPv4 packet with a valid header checksum (bridge netfilter drops bad ones)."""
    payload = MARK + tag.encode()
    fields = [0x45, 0, 20 + len(payload), 0, 0, 64, 253, 0, socket.inet_aton(src),
              socket.inet_aton("10.77.0.254")]  # fmt: skip
    total = sum(struct.unpack("!10H", struct.pack("!BBHHHBBH4s4s", *fields)))
    total = (total & 0xFFFF) + (total >> 16)
    fields[7] = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
    return b"\x08\x00" + struct.pack("!BBHHHBBH4s4s", *fields) + payload


def main(spec):
    socks = {}
    for dev in spec["listen"]:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((dev, 0))
        socks[sock] = dev
    # no pause: a bound AF_PACKET socket queues every frame from then on, and the frames
    # are sent after this; the listening below reads them from those queues
    for item in spec["send"]:
        out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        out.bind((item["dev"], 0))
        if item.get("ip_src"):
            body = ipv4(item["ip_src"], item["tag"])
        else:
            body = struct.pack("!H", ETHERTYPE) + MARK + item["tag"].encode()
        frame = (b"\xff" * 6 + mac(item["src"]) + body).ljust(60, b"\x00")
        for _ in range(spec.get("count", 3)):
            out.send(frame)
        out.close()
    seen = {dev: set() for dev in spec["listen"]}
    deadline = time.monotonic() + LISTEN_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select(list(socks), [], [], max(0.0, deadline - time.monotonic()))
        for sock in ready:
            data, addr = sock.recvfrom(2048)
            at = data.find(MARK)
            if addr[2] != socket.PACKET_OUTGOING and at >= 0:
                tag = data[at + len(MARK) :].rstrip(b"\x00")
                seen[socks[sock]].add(tag.decode(errors="replace"))
    return {dev: sorted(tags) for dev, tags in seen.items()}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
