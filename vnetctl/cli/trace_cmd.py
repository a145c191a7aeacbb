"""`vnetctl trace SRC DST`: where a frame from SRC to DST goes, hop by hop, on every host
it crosses, and the first hop that drops it (vnetctl.trace)."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from vnetctl.cli.common import add_target_options, bounded_int, run_context, selected_hosts
from vnetctl.drift.files import check_writable, write_atomic
from vnetctl.errors import InputError
from vnetctl.secrets import redact
from vnetctl.trace import text
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
                        help="also inject a marked frame at the source port and capture it at "
                        "each hop (where this build has vnetctl.trace.probe)")  # fmt: skip
    parser.add_argument("--html", metavar="FILE",
                        help="also write a picture of the path (where this build has "
                        "vnetctl.trace.html)")  # fmt: skip
    add_target_options(parser)
    parser.set_defaults(func=run)


def optional(name: str, flag: str):
    try:
        return importlib.import_module(f"vnetctl.trace.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"vnetctl.trace.{name}":
            raise
        raise InputError(f"{flag} is not available in this build") from None


def run(args: argparse.Namespace) -> int:
    if args.port is not None and args.proto not in ("tcp", "udp"):
        raise InputError("--port goes with --proto tcp or udp")
    probe = optional("probe", "--probe") if args.probe else None
    html = optional("html", "--html") if args.html else None
    if args.html:
        check_writable(Path(args.html), "--html")
    context = run_context(args, check=True)
    options = {"proto": args.proto, "port": args.port, "vlan": args.vlan, "size": args.size}
    doc = trace(context, selected_hosts(args, context), args.source, args.destination, options)
    if probe is not None:
        doc["probe"] = probe.run_probe(context, doc)
    if html is not None:
        write_atomic(Path(args.html), html.render(doc))
    out = json.dumps(redact(doc), indent=2) + "\n" if args.format == "json" else text.render(doc)
    sys.stdout.write(redact(out) if args.format == "text" else out)
    return 0 if doc["verdict"] == "delivered" else 2
