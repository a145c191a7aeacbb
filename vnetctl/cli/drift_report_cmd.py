"""`vnetctl drift report`: the fleet's report, read from the history that the shards of
a check (`vnetctl drift --shard K/N` on several controllers) write."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vnetctl.cli import drift_admin_cmd
from vnetctl.drift import formats
from vnetctl.drift.fleet_report import fleet_report, latest_check
from vnetctl.drift.history import ERRORS, History, HistoryUnusable, default_path, location
from vnetctl.drift.postgres import is_url
from vnetctl.errors import InputError
from vnetctl.runner.results import ExitCode

HELP = """\
Render one report of the whole fleet from the history: the last run of each shard of a
check (or the check's last run when it is not sharded), with each item's first-seen
time. A shard with no recorded run is named and its hosts are missing: exit 1 unless
drift was found (2). Fields whose values differ between hosts of different shards and
items resolved since the previous run are in each shard's own report, not in this one.

examples:
  vnetctl drift report                       # the last recorded check, every shard's run
  vnetctl drift report --format html --output drift-fleet.html
"""


def add_report_parser(commands) -> None:
    parser = commands.add_parser(
        "report",
        help="one report of the fleet from the history the shards wrote",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    drift_admin_cmd.add_history_option(parser)
    parser.add_argument("--check", metavar="ID", help="this check (default: the last recorded)")
    parser.add_argument("--format", choices=formats.FORMATS, default="text")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report here (atomic)")
    parser.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    path = location(args.history) if args.history else default_path()
    if not is_url(path) and not Path(path).exists():  # reading never creates a history file
        raise InputError(f"drift report: no drift history at {path}")
    try:
        with History(path) as history:
            shown = history.path
            check = args.check or latest_check(history)
            found = fleet_report(history, check) if check else None
    except ERRORS as exc:
        raise HistoryUnusable(f"drift report: history not usable: {exc}") from None
    if found is None:
        raise InputError(f"drift report: no recorded run of check {check or '(any)'} in {shown}")
    for shard in found.missing_shards:
        print(f"drift report: shard {shard} has no recorded run: its hosts are missing",
              file=sys.stderr)  # fmt: skip
    if args.output:
        formats.write(found.report, args.format, Path(args.output))
    else:
        color = args.format == "text" and sys.stdout.isatty()
        rendered = formats.render(found.report, args.format, color=color)
        sys.stdout.write(rendered.rstrip("\n") + "\n")
    code = found.report.exit_code()
    return code if code == 2 or not found.missing_shards else ExitCode.BAD_INPUT
