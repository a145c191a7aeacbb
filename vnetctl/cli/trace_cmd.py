"""`vnetctl trace SRC DST`: where a frame from SRC to DST goes, hop by hop, on every host
it crosses, and the first hop that drops it (vnetctl.trace)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vnetctl.cli.common import (
    add_target_options,
    bounded_int,
    run_context,
    seconds,
    selected_hosts,
)
from vnetctl.drift.files import check_writable, write_atomic
from vnetctl.errors import InputError
from vnetctl.secrets import redact
from vnetctl.trace import html, probe, text
from vnetctl.trace.path import trace

HELP = """\
Trace one frame from SRC to DST across every layer of every host it crosses, from the
host network model read live (one facts read per host, as `vnetctl facts`) and the
kernel's and Open vSwitch's own lookups for that frame (`bridge fdb get`, `ip route
get`, `ovs-appctl ofproto/trace`, tc class counters read a second time). Read-only.

SRC and DST are each a port name (a VM's tap, any bridge port, or a guest's own end of
a veth: its peer is the port), a libvirt domain's NIC, a MAC or an IP address, found on
the inventory's hosts (`HOST:NAME` when a name is on several). A domain's NIC is
DOMAIN[:NIC], NIC its index (0 first, as `virsh domiflist` lists them), its MAC, its
tap (target dev) or libvirt's alias (net0); without NIC, the domain's only one. It is
read from libvirt's status files of running domains (/run/libvirt/*/DOMAIN.xml);
HOST:DOMAIN[:NIC] when the domain runs on several hosts. A head that is an inventory
host is the host; a bare name that is both a port and a domain is refused (DOMAIN:NIC
names the domain's NIC).

Hops, each with the host, layer, device, decision and reason: the source port (up,
MTU), its VLAN (Linux bridge vlan_filtering membership, OVS tag/trunks), port security
(the nftables rule of port_group, or OVS's rule by vnetctl's cookie), the bridge's
decision (fdb entry or flood; OVS: ofproto/trace's datapath actions), OVS bonds (members
enabled; the member is chosen by hash), tc (the HTB class the frame gets and its drops:
rising while traced means at its limit), VXLAN (VNI, the remote VTEP in the device's
fdb), the underlay route to it, MTU with VXLAN's 50 bytes (the largest packet that
passes), then the destination host: decapsulation, bridge, VLAN, security, tc, port.
The walk stops at the first drop: `verdict` dropped, `dropped_at` that hop.

--format json prints the schema docs/schemas/trace.schema.json describes
("schema": "vnetctl.trace/1"). Exit 0: delivered; 2: dropped or unknown; 1: bad input.

examples (eth0 is a port of no bridge on a fresh lab: the path beyond it is unknown):
  vnetctl trace lab-h1:eth0 lab-h2:eth0 -i inventory/lab.yml  # (exit 2)
  vnetctl trace lab-h1:eth0 lab-h2:eth0 -i inventory/lab.yml --format json  # (exit 2)
  vnetctl trace vnet0 52:54:00:aa:00:02 -i inventory/lab.yml --proto tcp --port 443  # (exit 1)
  vnetctl trace web1:net0 lab-h2:eth0 -i inventory/lab.yml  # (exit 1) no domain web1 runs
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "trace",
        help="trace a frame from SRC to DST hop by hop across hosts; the first drop named",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="SRC",
                        help="[HOST:]PORT, [HOST:]DOMAIN[:NIC], MAC or IP address")  # fmt: skip
    parser.add_argument("destination", metavar="DST",
                        help="[HOST:]PORT, [HOST:]DOMAIN[:NIC], MAC or IP address")  # fmt: skip
    parser.add_argument("--proto", choices=("tcp", "udp", "icmp"), help="the frame's protocol")
    parser.add_argument("--port", type=bounded_int(1, 65535), metavar="N",
                        help="its destination port (tcp, udp)")  # fmt: skip
    parser.add_argument("--vlan", type=bounded_int(1, 4094), metavar="N",
                        help="its VLAN (default: the source port's access VLAN)")  # fmt: skip
    parser.add_argument("--size", type=bounded_int(68, 65535), metavar="N",
                        help="the IP packet's size, as MTUs count (default: the source "
                        "port's MTU, the largest it sends)")  # fmt: skip
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--probe", action="store_true",
                        help="also send marked frames from the source VM's side of its port "
                        "and count them at every hop's device on every host "
                        "(docs/trace-probe.md); exit 2 unless they reach DST's port")  # fmt: skip
    parser.add_argument("--probe-count", type=bounded_int(1, 20), default=3, metavar="N",
                        help="frames the probe sends (default 3)")  # fmt: skip
    parser.add_argument("--probe-timeout", type=seconds, default=5.0,
                        metavar="S", help="seconds the hops' watchers wait at most "
                        "(0.5 to 60; default 5)")  # fmt: skip
    parser.add_argument("--html", metavar="FILE",
                        help="also write the path as a picture: hosts side by side, layers "
                        "top to bottom, the dropping hop red, the probe's last sight")  # fmt: skip
    add_target_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.port is not None and args.proto not in ("tcp", "udp"):
        raise InputError("--port goes with --proto tcp or udp")
    if args.html:
        check_writable(Path(args.html), "--html")
    context = run_context(args, check=True)
    options = {"proto": args.proto, "port": args.port, "vlan": args.vlan, "size": args.size}
    doc = trace(context, selected_hosts(args, context), args.source, args.destination, options)
    if args.probe:
        probe.run_probe(context, doc, count=args.probe_count, timeout=args.probe_timeout)
    if args.html:
        write_atomic(Path(args.html), html.render(doc))
    out = json.dumps(redact(doc), indent=2) + "\n" if args.format == "json" else text.render(doc)
    sys.stdout.write(redact(out) if args.format == "text" else out)
    delivered = doc["verdict"] == "delivered"
    return 0 if delivered and (doc["probe"] is None or doc["probe"]["delivered"]) else 2
