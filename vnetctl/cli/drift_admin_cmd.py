"""`vnetctl drift history` and `vnetctl drift schedule install|remove`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

from vnetctl.cli.usage import CliParser
from vnetctl.drift import schedule
from vnetctl.drift.formats.values import describe, when
from vnetctl.drift.history import (
    ERRORS,
    SCHEMA_VERSION,
    History,
    HistoryUnusable,
    default_path,
    location,
)
from vnetctl.drift.postgres import StoreError, is_url
from vnetctl.errors import InputError

HISTORY_HELP = """\
List the recorded drift checks, newest first, or one run's items with the time each was
first seen.

examples:
  vnetctl drift history
  vnetctl drift history --run 1
  vnetctl drift history --format json --limit 100
  vnetctl drift history --schema             # its schema version, migrated to this one's
  vnetctl drift history --history /var/lib/vnetctl/drift.sqlite   # as `drift --history`
"""

SCHEDULE_HELP = """\
Run a drift check on a schedule, outside any terminal. --systemd writes a service and a
timer (exit 2, drift found, counts as success for the service); --cron writes a line in
/etc/cron.d. Use --report to say where each run writes its reports, e.g. a Prometheus
file for node_exporter's textfile collector and an HTML page.

examples:
  vnetctl drift schedule install --systemd --name site --every 15m \\
      playbooks/site.yml -i inventory/lab.yml \\
      --report prometheus=/var/lib/node_exporter/textfile/vnetctl-site.prom \\
      --report html=/var/www/html/drift-site.html
  vnetctl drift schedule remove --systemd --name site
"""

INSTALL_HELP = """
Every option that is not the schedule's own (--systemd, --cron, --name, --unit-dir,
--cron-dir, --every) is the check's, as `vnetctl drift` takes it, and goes into the unit
or cron line as typed. The playbook and inventory are loaded and planned first (no host
is contacted): a check that could not run is refused, exit 1, and nothing is written.
"""


class DeprecatedAlias(argparse.Action):
    """An option's old name: hidden from --help, still accepted, with a warning."""

    def __init__(self, option_strings, dest, replacement: str, **kwargs):
        self.replacement = replacement
        super().__init__(option_strings, dest, help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"vnetctl: {option_string} is deprecated, use {self.replacement}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_history_option(parser: argparse.ArgumentParser) -> None:
    """--history, as every drift command that reads or writes the history takes it."""
    parser.add_argument(
        "--history",
        metavar="DB",
        help=f"SQLite history file, or postgresql://USER@HOST/DB (password from "
        f"PGPASSWORD or ~/.pgpass) shared by several controllers (default: {default_path()})",
    )


def add_history_parser(commands) -> None:
    parser = commands.add_parser(
        "history",
        help="list recorded drift checks and their items",
        description=HISTORY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_history_option(parser)
    parser.add_argument("--db", action=DeprecatedAlias, dest="history", replacement="--history")
    parser.add_argument("--check", metavar="ID", help="only runs of this check id")
    parser.add_argument("--run", type=int, metavar="N", help="the items of run N")
    parser.add_argument("--limit", type=int, default=20, metavar="N", help="runs (default 20)")
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.add_argument(
        "--schema",
        action="store_true",
        help="the history's schema version, after migrating it to this vnetctl's (SQLite "
        "and PostgreSQL alike: done whenever a history is opened)",
    )
    parser.set_defaults(func=cmd_history)


def cmd_history(args: argparse.Namespace) -> int:
    path = location(args.history) if args.history else default_path()
    if not is_url(path) and not Path(path).exists():  # reading never creates a history file
        return _no_history(Path(path), args)
    try:
        return _show_history(path, args)
    except StoreError as exc:  # the server went away: its message names no password
        raise HistoryUnusable(str(exc)) from None
    except ERRORS as exc:  # damaged pages show when they are read
        raise HistoryUnusable(f"drift history {path}: not usable: {exc}") from None


def _show_history(path: Path | str, args: argparse.Namespace) -> int:
    with History(path) as history:
        if args.schema:
            return _show_schema(history)
        if args.run is not None:
            if not history.has_run(args.run):
                print(f"drift history: there is no run {args.run} in {history.path}",
                      file=sys.stderr)  # fmt: skip
                return 1
            items = history.items(args.run)
            if args.format == "json":
                print(json.dumps([i.to_dict() for i in items], indent=2, default=str))
            for i in items if args.format == "text" else []:
                print(f"{i.host}  {i.kind.value:<9} {i.resource}  {describe(i)}  "
                      f"(since {when(i.first_seen)})")  # fmt: skip
            if not items and args.format == "text":
                print(f"run {args.run}: no drift items")
            return 0
        runs = history.runs(args.check, args.limit)
    if args.format == "json":
        print(json.dumps({"runs": [r.to_dict() for r in runs]}, indent=2))
        return 0
    heads = "MISSING/DIFFERENT/EXTRA/NOT PERSISTED"
    print(f"{'RUN':>5}  {'STARTED':<23} {'EXIT':>4} {'HOSTS':>5}  {heads}  CHECK")
    for r in runs:
        counts = "/".join(str(r.items[k]) for k in ("missing", "different", "extra",
                                                    "not persisted"))  # fmt: skip
        print(f"{r.id:>5}  {when(r.started):<23} {r.exit_code:>4} {r.hosts:>5}  "
              f"{counts:<{len(heads)}}  {r.label} [{r.check_id}]")  # fmt: skip
    return 0


def _show_schema(history: History) -> int:
    found, now = history.found_version, SCHEMA_VERSION
    how = "created" if found == 0 else f"migrated from {found}" if found < now else "current"
    print(f"drift history {history.path}: schema {now} ({how})")
    return 0


def _no_history(path: Path, args: argparse.Namespace) -> int:
    """No file: nothing was recorded there. Listing runs is then an empty list; asking
    for a run is asking for one that does not exist."""
    if args.run is not None:
        print(f"drift history: there is no run {args.run}: no history at {path}", file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps({"runs": []}, indent=2))
    else:
        print(f"no drift history at {path}: no check has been recorded there")
    return 0


def add_schedule_parser(
    commands,
    check_arguments: Callable[[argparse.ArgumentParser], None],
    check_argv: Callable[[argparse.Namespace], list[str]],
) -> None:
    parser = commands.add_parser(
        "schedule",
        help="install or remove a systemd timer or cron line for a drift check",
        description=SCHEDULE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(metavar="{install,remove}", required=True)
    install = actions.add_parser(
        "install",
        help="write the timer/cron line (and enable it where systemd runs)",
        description=SCHEDULE_HELP + INSTALL_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_schedule_options(install, install=True)
    check_arguments(install)
    install.set_defaults(func=lambda args: cmd_install(args, check_argv))
    remove = actions.add_parser("remove", help="remove what install wrote")
    add_schedule_options(remove, install=False)
    remove.set_defaults(func=cmd_remove)


def add_schedule_options(parser: argparse.ArgumentParser, install: bool) -> None:
    """The schedule's own options; everything else given to `install` is the check's."""
    kind = parser.add_mutually_exclusive_group(required=True)
    kind.add_argument("--systemd", action="store_true", help="a systemd service and timer")
    kind.add_argument("--cron", action="store_true", help="a line in /etc/cron.d")
    parser.add_argument("--name", required=True, help="schedule name: a-z, 0-9, '-'")
    parser.add_argument(
        "--unit-dir",
        type=Path,
        default=schedule.SYSTEMD_DIR,
        metavar="DIR",
        help=f"where the service and timer go (default {schedule.SYSTEMD_DIR})",
    )
    parser.add_argument(
        "--cron-dir",
        type=Path,
        default=schedule.CRON_DIR,
        metavar="DIR",
        help=f"where the cron line goes (default {schedule.CRON_DIR})",
    )
    if install:
        parser.add_argument(
            "--every",
            type=interval,
            default="15m",
            metavar="INTERVAL",
            help=f"how often, at least {schedule.MIN_INTERVAL}s: 30s, 15m, 1h... (default 15m)",
        )


def interval(text: str) -> int:
    """An argparse type: an interval of at least MIN_INTERVAL seconds (30s, 15m, 1h30m)."""
    try:
        return schedule.parse_interval(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None


def check_tokens(argv: list[str]) -> list[str]:
    """The check's own arguments, as typed, from `drift schedule install ...`: every
    token but the schedule's own options (which the check must not see: its --every
    would loop forever)."""
    if argv[:3] != ["drift", "schedule", "install"]:
        raise ValueError(f"not a `drift schedule install` command line: {argv[:3]}")
    own = CliParser(prog="vnetctl drift schedule install", add_help=False)
    add_schedule_options(own, install=True)
    _, tokens = own.parse_known_args(argv[3:])
    return tokens


def cmd_install(args: argparse.Namespace, check_argv) -> int:
    unit = schedule.unit_name(args.name)  # refuse a bad name before anything else
    if getattr(args, "ask_vault_pass", False) or getattr(args, "ask_become_pass", False):
        raise InputError("a scheduled check runs with no terminal to ask a password on: give "
                         "--vault-password-file FILE (or --vault-id LABEL@FILE) and set "
                         "ansible_become_password in a vault file, not -J/-K")  # fmt: skip
    if args.cron:
        schedule.cron_schedule(args.every)  # and what cron cannot express
    argv, workdir = check_argv(args), Path.cwd()
    if args.systemd:
        paths = schedule.install_systemd(
            args.name, argv, args.every, workdir=workdir, unit_dir=args.unit_dir
        )
        print("wrote " + ", ".join(map(str, paths)))
        service, timer = (p.absolute() for p in paths)
        if args.unit_dir.absolute() not in schedule.SYSTEMD_SEARCH_PATH:
            # systemd does not look there: link the files into its search path
            print(f"enable it with: systemctl link {service} && systemctl enable --now {timer}")
        elif not schedule.systemd_running() or args.unit_dir != schedule.SYSTEMD_DIR:
            print(f"enable it with: systemctl daemon-reload && systemctl enable --now {unit}.timer")
    else:
        path = schedule.install_cron(
            args.name, argv, args.every, workdir=workdir, cron_dir=args.cron_dir
        )
        print(f"wrote {path}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    if args.systemd:
        removed = schedule.remove_systemd(args.name, args.unit_dir)
    else:
        removed = schedule.remove_cron(args.name, args.cron_dir)
    print("removed " + ", ".join(map(str, removed)) if removed else "nothing to remove")
    return 0
