"""`vnetctl stats`: the counters of what vnetctl built, read from every host in one
read-only pass, as text, JSON or a Prometheus textfile, once or `--every` INTERVAL."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vnetctl.cli import drift_admin_cmd
from vnetctl.cli.common import add_target_options, bounded_int, run_context, selected_hosts
from vnetctl.drift.files import check_writable, write_atomic
from vnetctl.drift.schedule import MIN_INTERVAL, install_signal_stop, run_every
from vnetctl.errors import InputError
from vnetctl.secrets import redact
from vnetctl.stats import formats
from vnetctl.stats.gather import gather

HELP = """\
Read, without changing anything, every host's network counters in one pass (one SSH
session per host): per port (every link but lo) packets, bytes, drops and errors
received and sent, carrier changes (a flapping port), operstate, a bond member's state
and MII status; per Open vSwitch interface its statistics and link resets. As text,
JSON (schema: vnetctl/output/schema/stats.schema.json) or Prometheus text for
node_exporter's textfile collector (written atomically; every series labelled with
`check`, --name or the inventory's file name, so several files coexist); `--every`
reads again and again. The alerts in contrib/prometheus/vnetctl.rules.yml read them.

examples:
  vnetctl stats -i inventory/lab.yml
  vnetctl stats -i inventory/lab.yml --format json --limit lab-h1
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
    add_target_options(parser)
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.count is not None and not args.every:
        raise InputError("--count only goes with --every")
    if args.output:
        check_writable(Path(args.output), "-o")
    if not args.every:
        return once(args)
    stop = install_signal_stop()
    return run_every(args.every, lambda: once(args), count=args.count, stop=stop)


def once(args: argparse.Namespace) -> int:
    context = run_context(args, check=True)
    report = gather(context, selected_hosts(args, context), ",".join(args.inventory))
    text = redact(formats.render(report, args.format, args.name))
    if args.output:
        write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    for host, reason in sorted(report.errors.items()):
        print(redact(f"stats: {host} not read: {reason}"), file=sys.stderr)
    return report.exit_code
