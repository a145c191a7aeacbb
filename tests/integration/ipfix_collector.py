"""Run on a lab host (`python3 -c SOURCE SPEC`): an IPFIX collector (RFC 7011, UDP) that
knows only what it hears, as a freshly started collector does: data records are decoded
with the templates received since it started, the others counted as undecodable.

SPEC is JSON {"port", "seconds", "want"}: listen on 127.0.0.1:port until `want` IPv4 data
records were decoded or `seconds` passed. The output is JSON {"records": [{"src", "dst",
"packets", "octets", "start", "end", "total_packets", "export_time", "after"}],
"undecodable": n}: `start`/`end` are the flow's times in seconds since the epoch (the
export time less flowStart/EndDeltaMicroseconds), `after` the seconds since the
collector started when the record arrived, `total_packets` what OVS puts in
packetTotalCount."""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import sys
import time

# information elements (IANA): what the records say
OCTETS, PACKETS, SRC, DST, TOTAL_PACKETS, START_DELTA, END_DELTA = 1, 2, 8, 12, 86, 158, 159


def templates_of(body: bytes, domain: int, templates: dict) -> None:
    off = 0
    while off + 4 <= len(body):
        tid, count = struct.unpack("!HH", body[off : off + 4])
        off += 4
        fields = []
        for _ in range(count):
            ie, size = struct.unpack("!HH", body[off : off + 4])
            off += 4
            if ie & 0x8000:  # an enterprise number follows
                off += 4
                ie = (ie & 0x7FFF) | 0x10000  # never one of the standard ones read here
            fields.append((ie, size))
        templates[(domain, tid)] = fields


def record_of(body: bytes, fields: list) -> dict:
    out, off = {}, 0
    for ie, size in fields:
        if size == 65535:  # variable length (RFC 7011 section 7)
            size, off = body[off], off + 1
            if size == 255:
                size, off = int.from_bytes(body[off : off + 2], "big"), off + 2
        raw, off = body[off : off + size], off + size
        out[ie] = int.from_bytes(raw, "big")
    return out


def main(spec: dict) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", spec["port"]))
    started = time.time()
    templates, records, undecodable = {}, [], 0
    while time.time() - started < spec["seconds"] and len(records) < spec["want"]:
        sock.settimeout(max(0.05, spec["seconds"] - (time.time() - started)))
        try:
            data = sock.recv(65535)
        except TimeoutError:
            break
        _version, length, export_time, _seq, domain = struct.unpack("!HHIII", data[:16])
        pos = 16
        while pos + 4 <= length:
            set_id, set_len = struct.unpack("!HH", data[pos : pos + 4])
            body, pos = data[pos + 4 : pos + set_len], pos + max(set_len, 4)
            if set_id == 2:
                templates_of(body, domain, templates)
            elif set_id >= 256 and (domain, set_id) not in templates:
                undecodable += 1
            elif set_id >= 256:
                rec = record_of(body, templates[(domain, set_id)])
                if SRC not in rec:
                    continue
                records.append({
                    "src": str(ipaddress.ip_address(rec[SRC])),
                    "dst": str(ipaddress.ip_address(rec[DST])),
                    "packets": rec.get(PACKETS), "octets": rec.get(OCTETS),
                    "start": export_time - rec.get(START_DELTA, 0) / 1e6,
                    "end": export_time - rec.get(END_DELTA, 0) / 1e6,
                    "total_packets": rec.get(TOTAL_PACKETS), "export_time": export_time,
                    "after": time.time() - started,
                })  # fmt: skip
    sock.close()
    return {"records": records, "undecodable": undecodable}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
