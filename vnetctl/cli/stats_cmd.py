"""`vnetctl stats`: the counters of what vnetctl built, read from every host in one
read-only pass, as text, JSON or a Prometheus textfile, once or `--every` INTERVAL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vnetctl.cli import drift_admin_cmd
from vnetctl.cli.common import (
    add_playbook_arguments,
    add_workers_option,
    bounded_int,
    plan_from_args,
    run_context,
    selected_hosts,
)
from vnetctl.cli.mesh_sample_args import add_sample_arguments, sample_from_args
from vnetctl.drift.files import check_writable, write_atomic
from vnetctl.drift.schedule import MIN_INTERVAL, install_signal_stop, run_every
from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.runner.results import ExitCode
from vnetctl.secrets import redact
from vnetctl.stats import formats
from vnetctl.stats.declared import Declared, declared
from vnetctl.stats.gather import StatsReport, gather
from vnetctl.stats.overlay import compare_peers, probe

HELP = """\
Read, without changing anything, every host's network counters in one pass (one SSH
session per host): per port (every link but lo) packets, bytes, drops and errors
received and sent, carrier changes (a flapping port), operstate, a bond member's state
and MII status; per Open vSwitch interface its statistics and link resets, per OVS bond
its members' state, per OVS bridge its mirrors (packets sent) and flow export (NetFlow,
sFlow, IPFIX); per HTB class (traffic_shaping) bytes and packets sent, drops, overlimits
and backlog. With PLAYBOOK, only what it declares on the hosts it targets: the ports,
bonds, OVS bridges and interfaces its tasks name, and the shaped devices' classes by
their declared names (without, every class by its id). With --probe, its VXLAN meshes
are probed as `vnetctl mesh check` probes them (changing nothing but a throwaway
namespace per segment, removed at the end; --probe-count pings per pair, bounded in
time): each pair's loss and mean round trip, and per VXLAN device the peers declared and
those not present (--peers: the comparison alone, nothing probed). As text, JSON
(schema: vnetctl/output/schema/stats.schema.json) or Prometheus text for node_exporter's
textfile collector (written atomically; every series labelled with `check`, --name or
the inventory's file name, so several files coexist); `--every` reads again and again.
The alerts in contrib/prometheus/vnetctl.rules.yml read them.

examples:
  vnetctl stats -i inventory/lab.yml
  vnetctl stats -i inventory/lab.yml --format json --limit lab-h1
  vnetctl stats -i inventory/lab.yml playbooks/nioc.yml
  vnetctl stats -i inventory/lab.yml playbooks/vxlan-mesh.yml --probe --format json
  vnetctl stats -i inventory/lab.yml --format prometheus \\
      -o /var/lib/node_exporter/textfile/vnetctl-stats-lab.prom --every 1m
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "stats",
        help="read ports' counters, flaps, bond members, OVS statistics; Prometheus textfile",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_playbook_arguments(parser, optional=True)
    parser.add_argument("--format", choices=formats.FORMATS, default="text",
                        help="output format (default: text)")  # fmt: skip
    parser.add_argument("-o", "--output", metavar="FILE", help="write here, atomically")
    parser.add_argument("--name", metavar="NAME",
                        help="the `check` label of the Prometheus series (default: the "
                        "inventory's file name without .yml)")  # fmt: skip
    parser.add_argument("--every", type=drift_admin_cmd.interval, metavar="INTERVAL",
                        help=f"read again every INTERVAL, at least {MIN_INTERVAL}s, until "
                        "stopped")  # fmt: skip
    parser.add_argument("--count", type=bounded_int(1, 1_000_000), metavar="N",
                        help="with --every: stop after N passes")  # fmt: skip
    parser.add_argument("--probe", action="store_true",
                        help="with PLAYBOOK: probe its VXLAN meshes as `mesh check` does (loss "
                        "and round trip per pair) and compare the peers present with the "
                        "declared ones")  # fmt: skip
    parser.add_argument("--peers", action="store_true",
                        help="with PLAYBOOK: compare each VXLAN device's peers present with "
                        "those its mesh declares, without probing")  # fmt: skip
    parser.add_argument("--probe-count", type=bounded_int(1, 20), default=5, metavar="N",
                        help="pings per pair and size, 0.2 s apart, 1..20 (default 5)")  # fmt: skip
    add_sample_arguments(parser)
    add_workers_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.count is not None and not args.every:
        raise InputError("--count only goes with --every")
    if (args.probe or args.peers) and not args.playbook:
        raise InputError("--probe and --peers need PLAYBOOK: its meshes say what to compare")
    if args.output:
        check_writable(Path(args.output), "-o")
    if not args.every:
        return once(args)
    stop = install_signal_stop()
    return run_every(args.every, lambda: once(args), count=args.count, stop=stop)


def declared_report(args: argparse.Namespace, context: RunContext) -> StatsReport:
    """What PLAYBOOK declares, on the hosts its plays target; with --probe, its meshes
    probed first (their expansion says which peers each device should have)."""
    plans = plan_from_args(args, context)
    hosts = list(dict.fromkeys(h for p in plans for h in p.hosts))
    mine, overlay, peers, probe_failed = declared(plans, context.catalog), None, {}, False
    if args.probe or args.peers:  # the probe makes namespaces, so not in check mode
        probing = run_context(args, check=not args.probe)
        count = args.probe_count if args.probe else None
        overlay, peers, probe_failed = probe(plans, probing, args.playbook, count,
                                             sample_from_args(args))  # fmt: skip
        for host, devices in peers.items():
            mine.setdefault(host, Declared()).vxlan |= set(devices)
    report = gather(context, hosts, ",".join(args.inventory), mine)
    report.overlay = overlay
    if args.probe or args.peers:
        compare_peers(report, peers)
        if probe_failed:  # on a host it reached: 2, whatever else happened
            report.exit_code = ExitCode.HOST_FAILED
    return report


def once(args: argparse.Namespace) -> int:
    context = run_context(args, check=True)
    if args.playbook:
        report = declared_report(args, context)
    else:
        report = gather(context, selected_hosts(args, context), ",".join(args.inventory))
    text = redact(formats.render(report, args.format, args.name))
    if args.output:
        write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    for host, reason in sorted(report.errors.items()):
        print(redact(f"stats: {host} not read: {reason}"), file=sys.stderr)
    return report.exit_code
