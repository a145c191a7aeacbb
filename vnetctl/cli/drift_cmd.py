"""`vnetctl drift`: what on which host no longer matches the declared network, since when.

`vnetctl drift history` and `vnetctl drift schedule` are parsed by their own parsers
(see `vnetctl.cli.drift_admin_cmd`); `main` routes them before the check's parser,
whose first argument is a playbook path.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from vnetctl.catalog import Catalog
from vnetctl.cli import drift_admin_cmd
from vnetctl.cli.common import add_playbook_arguments, open_inventory, plan_from_args, run_options
from vnetctl.cli.usage import CliParser
from vnetctl.drift import formats
from vnetctl.drift.check import CheckTarget, run_check
from vnetctl.drift.files import check_writable
from vnetctl.drift.history import History, default_path
from vnetctl.drift.schedule import install_signal_stop, parse_interval, run_every
from vnetctl.errors import InputError
from vnetctl.output.console import QUIET_FLEET

ADMIN_COMMANDS = ("history", "schedule")

HELP = """\
Check every host against PLAYBOOK without changing anything: gather, plan in check mode
(the same code path as `vnetctl run --check`), and report per host and resource what is
missing (declared, absent), different (field: declared vs actual) or extra (an undeclared
port on a managed bridge, an fdb peer on a managed VXLAN device...). Fields declared alike
for a group of hosts whose actual values differ between hosts are listed per host.
Unreachable or failed hosts are reported as such, never as drift-free. Every run is
recorded in a SQLite history: items say since when they exist, and what was resolved since
the previous run is listed.

examples:
  vnetctl drift playbooks/site.yml -i inventory/lab.yml
  vnetctl drift playbooks/site.yml -i inventory/lab.yml --format html --output drift.html
  vnetctl drift playbooks/site.yml -i inventory/lab.yml \\
      --report prometheus=/var/lib/node_exporter/textfile/vnetctl.prom --every 15m
  vnetctl drift history                      # the recorded runs
  vnetctl drift schedule install --systemd --name site --every 15m \\
      playbooks/site.yml -i inventory/prod.yml --report html=/var/www/drift.html

also:
  vnetctl drift history --help               list runs and their items
  vnetctl drift schedule --help              systemd timer or cron line for the check
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "drift",
        help="report drift from a playbook: missing, different, extra; history; schedules",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_check_arguments(parser)
    parser.add_argument(
        "--format",
        choices=formats.FORMATS,
        default="text",
        help="report format on stdout or --output (default: text)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report here (atomic)")
    parser.add_argument(
        "--every",
        metavar="INTERVAL",
        help="check again every INTERVAL (30s, 15m, 1h...), with jitter, until stopped",
    )
    parser.add_argument("--count", type=int, metavar="N", help="with --every: stop after N checks")
    parser.set_defaults(func=cmd_drift)


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """What a check is: shared by `drift` and `drift schedule install`."""
    add_playbook_arguments(parser)
    parser.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="FORMAT=PATH",
        help=f"also write a report file, atomically (repeatable; formats: "
        f"{', '.join(formats.FORMATS)})",
    )
    parser.add_argument(
        "--history",
        metavar="DB",
        help=f"SQLite history file (default: {default_path()})",
    )
    parser.add_argument(
        "--no-history", action="store_true", help="record nothing (no first-seen times)"
    )


def parse_reports(values: list[str]) -> list[tuple[str, Path]]:
    reports = []
    for value in values:
        fmt, sep, path = value.partition("=")
        if not sep or not path or fmt not in formats.FORMATS:
            raise InputError(
                f"--report {value!r}: expected FORMAT=PATH with FORMAT one of "
                f"{', '.join(formats.FORMATS)}"
            )
        reports.append((fmt, Path(path)))
    return reports


def cmd_drift(args: argparse.Namespace) -> int:
    reports = parse_reports(args.report)
    if args.count is not None and not args.every:
        raise InputError("--count only goes with --every")
    if not args.every:
        return check_once(args, reports)
    interval = parse_interval(args.every)
    stop = install_signal_stop()
    return run_every(
        interval,
        lambda: check_once(args, reports),
        count=args.count,
        stop=stop,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )


def check_outputs(args: argparse.Namespace, reports: list[tuple[str, Path]]) -> None:
    """Every report file can be written: refused before any host is contacted."""
    for fmt, path in reports:
        check_writable(path, f"--report {fmt}")
    if args.output:
        check_writable(Path(args.output), "-o")


def check_once(args: argparse.Namespace, reports: list[tuple[str, Path]]) -> int:
    check_outputs(args, reports)
    catalog = Catalog()
    inventory = open_inventory(args)
    plans, extra_vars = plan_from_args(args, catalog, inventory)
    target = CheckTarget(args.playbook, args.inventory, args.limit)
    hosts = {h for p in plans for h in p.hosts}
    if len(hosts) >= QUIET_FLEET:
        print(f"drift: checking {len(hosts)} hosts", file=sys.stderr, flush=True)
    options = run_options(args, check=True)
    if args.no_history:
        report = run_check(target, plans, inventory, options, catalog, extra_vars)
    else:
        with History(Path(args.history) if args.history else None) as history:
            report = run_check(target, plans, inventory, options, catalog, extra_vars, history)
    for fmt, path in reports:
        formats.write(report, fmt, path)
    if args.output:
        formats.write(report, args.format, Path(args.output))
    else:
        color = args.format == "text" and sys.stdout.isatty()
        sys.stdout.write(formats.render(report, args.format, color=color).rstrip("\n") + "\n")
    return report.exit_code()


def scheduled_argv(args: argparse.Namespace) -> list[str]:
    """The `vnetctl drift ...` command a timer or cron runs: absolute paths throughout,
    since neither runs in the directory the schedule was installed from."""
    vnetctl = Path(sys.executable).with_name("vnetctl")
    exe = str(vnetctl) if vnetctl.exists() else shutil.which("vnetctl") or "vnetctl"
    argv = [exe, "drift", str(Path(args.playbook).resolve()), "-i"]
    argv.append(str(Path(args.inventory).resolve()))
    if args.limit:
        argv += ["--limit", args.limit]
    for value in args.extra_vars:
        if value.startswith("@"):
            value = "@" + str(Path(value[1:]).resolve())
        argv += ["-e", value]
    for fmt, path in parse_reports(args.report):
        argv += ["--report", f"{fmt}={path.resolve()}"]
    if args.history:
        argv += ["--history", str(Path(args.history).resolve())]
    if args.no_history:
        argv.append("--no-history")
    if args.forks != 50:
        argv += ["--forks", str(args.forks)]
    if args.transport != "asyncssh":
        argv += ["--transport", args.transport]
    return argv


def build_admin_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="vnetctl drift",
        description="The drift check's history and schedules.",
    )
    commands = parser.add_subparsers(metavar="{history,schedule}", required=True)
    drift_admin_cmd.add_history_parser(commands)
    drift_admin_cmd.add_schedule_parser(commands, add_check_arguments, scheduled_argv)
    return parser
