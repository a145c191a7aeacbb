"""`vnetctl drift`: what on which host no longer matches the declared network, since when.

`vnetctl drift history` and `vnetctl drift schedule` are parsed by their own parsers
(see `vnetctl.cli.drift_admin_cmd`); `main` routes them before the check's parser,
whose first argument is a playbook path.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from vnetctl.cli import drift_admin_cmd, drift_report_cmd
from vnetctl.cli.common import (
    add_playbook_arguments,
    add_tag_arguments,
    add_workers_option,
    bounded_int,
    plan_from_args,
    run_context,
    tag_filters,
)
from vnetctl.cli.usage import CliParser
from vnetctl.drift import formats
from vnetctl.drift.check import CheckTarget, run_check
from vnetctl.drift.files import check_writable
from vnetctl.drift.history import check_history_directory, location
from vnetctl.drift.postgres import is_url, pin_password
from vnetctl.drift.publish import publish
from vnetctl.drift.schedule import MIN_INTERVAL, install_signal_stop, refuse_secrets, run_every
from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.output.console import QUIET_FLEET
from vnetctl.runner.results import ExitCode
from vnetctl.secrets import MARK_VAR

ADMIN_COMMANDS = ("history", "report", "schedule")

HELP = """\
Check every host against PLAYBOOK without changing anything: gather, plan in check mode
(the same code path as `vnetctl run --check`), and report per host and resource what is
missing (declared, absent), different (field: declared vs actual), extra (an undeclared
port on a managed bridge, an fdb peer on a managed VXLAN device...) or not persisted (the
boot configuration vnetctl writes is missing or differs: a reboot would lose it; README,
"Boot persistence"). Fields declared alike
for a group of hosts whose actual values differ between hosts are listed per host.
Unreachable or failed hosts are reported as such, never as drift-free. Every run is
recorded in a SQLite history: items say since when they exist, and what was resolved since
the previous run is listed.

examples:
  vnetctl drift playbooks/site.yml -i inventory/lab.yml
  vnetctl drift playbooks/site.yml -i inventory/lab.yml --skip-tags mtu   # all but the MTUs
  vnetctl drift playbooks/site.yml -i inventory/lab.yml --format html --output drift.html
  vnetctl drift playbooks/site.yml -i inventory/lab.yml \\
      --report prometheus=/var/lib/node_exporter/textfile/vnetctl-site.prom --every 15m
  vnetctl drift history                      # the recorded runs
  vnetctl drift report                       # the fleet's report, from every shard's run
  vnetctl drift schedule install --systemd --name site --every 15m \\
      playbooks/site.yml -i inventory/lab.yml --report html=/var/www/drift.html

also:
  vnetctl drift history --help               # list runs and their items
  vnetctl drift report --help                # one report from the shards' runs
  vnetctl drift schedule --help              # systemd timer or cron line for the check
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "drift",
        help="report drift from a playbook: missing, different, extra, not persisted; "
        "history; schedules",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_drift_arguments(parser)
    parser.set_defaults(func=cmd_drift)


def add_drift_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of `vnetctl drift`: the check, and how often to run it here."""
    add_check_arguments(parser)
    parser.add_argument(
        "--every",
        type=drift_admin_cmd.interval,
        metavar="INTERVAL",
        help=f"check again every INTERVAL, at least {MIN_INTERVAL}s (30s, 15m, 1h...), with "
        "jitter, until stopped",
    )
    parser.add_argument(
        "--count",
        type=bounded_int(1, 1_000_000),
        metavar="N",
        help="with --every: stop after N checks",
    )


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """What a check is and where its report goes: `drift` and `drift schedule install`
    take the same ones (a scheduled check runs exactly these)."""
    add_playbook_arguments(parser)
    add_workers_option(parser)
    add_tag_arguments(parser)
    parser.add_argument(
        "--report",
        action="append",
        default=[],
        metavar="FORMAT=PATH",
        help=f"also write a report file, atomically (repeatable; formats: "
        f"{', '.join(formats.FORMATS)})",
    )
    drift_admin_cmd.add_history_option(parser)
    parser.add_argument(
        "--no-history", action="store_true", help="record nothing (no first-seen times)"
    )
    parser.add_argument(
        "--format",
        choices=formats.FORMATS,
        default="text",
        help="report format on stdout or --output (default: text)",
    )
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report here (atomic)")


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
    if args.count is not None and not args.every:
        raise InputError("--count only goes with --every")
    if not args.every:
        return check_once(args)
    stop = install_signal_stop()
    return run_every(
        args.every,
        lambda: check_once(args),
        count=args.count,
        stop=stop,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
    )


@dataclass
class PreparedCheck:
    """A check loaded and planned, its outputs known writable: no host contacted yet."""

    reports: list[tuple[str, Path]]
    context: RunContext
    plans: list


def prepare_check(args: argparse.Namespace) -> PreparedCheck:
    """Everything a check does before it connects: refuse bad input (exit 1) here."""
    reports = parse_reports(args.report)
    for fmt, path in reports:
        check_writable(path, f"--report {fmt}")
    if args.output:
        check_writable(Path(args.output), "-o")
    if args.history and not args.no_history and not is_url(args.history):
        check_history_directory(Path(args.history))
    context = run_context(args, check=True)
    context.options.refusals = False  # drift compares: a cut is drift, not a refusal
    plans = plan_from_args(args, context, **tag_filters(args))
    pin_password(args.history or "")  # after planning, which starts the run's secrets
    return PreparedCheck(reports, context, plans)


def check_once(args: argparse.Namespace) -> int:
    check = prepare_check(args)
    target = CheckTarget(args.playbook, ",".join(args.inventory), args.limit, **tag_filters(args))
    hosts = {h for p in check.plans for h in p.hosts}
    if len(hosts) >= QUIET_FLEET:
        print(f"drift: checking {len(hosts)} hosts", file=sys.stderr, flush=True)
    report = run_check(target, check.plans, check.context)
    files = [(fmt, path, f"--report {fmt}") for fmt, path in check.reports]
    if args.output:
        files.append((args.format, Path(args.output), "-o"))
    written = publish(
        report, target.check_id, target.label, files,
        record=not args.no_history, history=location(args.history) if args.history else None,
        shard=str(args.shard) if args.shard else None,
    )  # fmt: skip
    if not args.output:
        color = args.format == "text" and sys.stdout.isatty()
        sys.stdout.write(formats.render(report, args.format, color=color).rstrip("\n") + "\n")
    code = report.exit_code()  # drift (2) wins over a report file not written (said)
    return code if written or code == 2 else ExitCode.BAD_INPUT


def scheduled_argv(args: argparse.Namespace) -> list[str]:
    """The command a timer or cron line runs: `vnetctl drift` with the check's own
    arguments, as they were typed to `drift schedule install` (its own options taken
    out), after that check was loaded and planned here, so that a schedule is never
    written for a check that cannot run. Relative paths stay relative: the unit and the
    cron line run in the directory the schedule was installed from. An inventory taken
    from $ANSIBLE_INVENTORY or ansible.cfg (no -i typed) is written out as -i: the unit
    runs without this shell's environment. A secret among them is refused
    (vnetctl.drift.schedule.refuse_secrets)."""
    tokens = drift_admin_cmd.check_tokens(args.argv)
    check = CliParser(prog="vnetctl drift")
    add_drift_arguments(check)
    args = check.parse_args(tokens)
    typed_inventory = args.inventory is not None
    prepared = prepare_check(args)
    if not typed_inventory:  # from $ANSIBLE_INVENTORY or ansible.cfg: not the unit's
        tokens += [word for source in args.inventory for word in ("-i", source)]
    marks = [h.vars.get(MARK_VAR) for h in prepared.context.inventory.hosts.values()]
    refuse_secrets(tokens, args.extra_vars, marks)
    vnetctl = Path(sys.executable).with_name("vnetctl")
    exe = str(vnetctl) if vnetctl.exists() else shutil.which("vnetctl") or "vnetctl"
    return [exe, "drift", *tokens]


def build_admin_parser() -> argparse.ArgumentParser:
    parser = CliParser(
        prog="vnetctl drift",
        description="The drift check's history and schedules.",
    )
    commands = parser.add_subparsers(metavar="{history,report,schedule}", required=True)
    drift_admin_cmd.add_history_parser(commands)
    drift_report_cmd.add_report_parser(commands)
    drift_admin_cmd.add_schedule_parser(commands, add_check_arguments, scheduled_argv)
    return parser
