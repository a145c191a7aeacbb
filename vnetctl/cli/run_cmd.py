"""`vnetctl run`: apply a playbook (or, with --check, say what would change)."""

from __future__ import annotations

import argparse
import sys

from vnetctl.cli.common import (
    add_playbook_arguments,
    add_tag_arguments,
    add_workers_option,
    plan_from_args,
    run_context,
    seconds,
    tag_filters,
)
from vnetctl.errors import InputError
from vnetctl.fleet.execute import execute
from vnetctl.output import json_report
from vnetctl.playbook.listing import listing
from vnetctl.runner.results import ExitCode, Keep, RunResult

HELP = """\
Apply PLAYBOOK to the hosts of INVENTORY. Every task is rendered and validated for every
host before any host is touched. Each host gets one SSH connection and, per play, one
python3 process that runs the play's tasks in order and streams the results back.

Plays with `serial` run batch by batch; `max_fail_percentage` and `health_gates` stop
the rollout after a batch that fails them, leaving the other hosts untouched (README,
"Rolling changes"). The --list-* options print what would run, and contact no host.

examples:
  vnetctl run playbooks/site.yml -i inventory/lab.yml
  vnetctl run playbooks/site.yml -i inventory/lab.yml --check --diff --limit 'lab-h*,!lab-h3'
  vnetctl run playbooks/site.yml -i inventory/lab.yml -e vm_mtu=1500 -e @overrides.yml
  vnetctl run playbooks/site.yml -i inventory/lab.yml --start-at-task 'storage NIC*'
  vnetctl run playbooks/rolling-mtu.yml -i inventory/lab.yml --list-hosts --list-tasks
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "run",
        help="apply a playbook",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_playbook_arguments(parser)
    add_workers_option(parser)
    parser.add_argument(
        "-C",
        "--check",
        action="store_true",
        help="gather and plan only: report what would change, change nothing",
    )
    parser.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help="with --check: exit 2 also when a change would be made (as `vnetctl drift` "
        "does for drift), whatever else happened",
    )
    parser.add_argument(
        "--confirm-timeout",
        type=seconds,
        metavar="TIME",
        help="commit confirmed: apply every play under a rollback timer; unless vnetctl "
        "reaches the host again over a new connection within TIME (e.g. 60s), the host "
        "undoes the play by itself (a play's own confirm_timeout wins); a rolling batch "
        "is confirmed only once its health gates passed, and rolls back if one fails",
    )
    parser.add_argument(
        "-D",
        "--diff",
        action="store_true",
        help="show each changed field: current value and declared value",
    )
    add_tag_arguments(parser)
    parser.add_argument(
        "--start-at-task",
        metavar="NAME",
        help="start at the first task named NAME (or 'ROLE : NAME'; a glob such as 'mtu*' "
        "works): the tasks and plays before it are left out",
    )
    listing = parser.add_argument_group("listing (nothing runs, no host is contacted)")
    listing.add_argument(
        "--list-hosts", action="store_true", help="each play's hosts (and its batches)"
    )
    listing.add_argument(
        "--list-tasks", action="store_true", help="each play's tasks, kept by --tags"
    )
    listing.add_argument("--list-tags", action="store_true", help="each play's tags")
    listing.add_argument(
        "--syntax-check",
        action="store_true",
        help="load and validate the playbook, inventory and -e (every task rendered for "
        "every host, every host's connection settings), then stop",
    )
    parser.add_argument(
        "--format",
        choices=["text", "json"],
        default="text",
        help="text for people (default), json: one document on stdout",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="-v: every result line, even on large fleets, and what `when` skipped; -vv: "
        "each task's rendered arguments; -vvv: the commands run on hosts and the SSH steps; "
        "-vvvv: the SSH library's debug log (secrets are *** at every level)",
    )
    parser.set_defaults(func=run)


def list_only(args: argparse.Namespace) -> int:
    """--list-hosts, --list-tasks, --list-tags: the playbook planned, printed, not run."""
    context = run_context(args, check=True)
    filters = tag_filters(args)
    tags, skip = filters["tags"], filters["skip_tags"]
    plans = plan_from_args(args, context, **filters)
    text = listing(args.playbook, plans, hosts=args.list_hosts, tasks=args.list_tasks,
                   tags=args.list_tags, only=tags, skip=skip)  # fmt: skip
    sys.stdout.write(text)
    return ExitCode.SUCCESS


def syntax_check(args: argparse.Namespace) -> int:
    """--syntax-check: everything a run checks before it contacts a host, and no more."""
    context = run_context(args, check=True)
    plans = plan_from_args(args, context, **tag_filters(args))
    context.take_plays(plans)
    context.specs(sorted({h for plan in plans for h in plan.hosts}))
    print(f"playbook: {args.playbook}: syntax and inputs OK, no host contacted")
    return ExitCode.SUCCESS


def run(args: argparse.Namespace) -> int:
    if args.syntax_check:
        return syntax_check(args)
    if args.list_hosts or args.list_tasks or args.list_tags:
        return list_only(args)
    if args.detailed_exitcode and not args.check:
        raise InputError("--detailed-exitcode only goes with --check")
    reporter = None
    if args.format != "json":  # the console (rich, ~25 ms to import) only when shown
        from vnetctl.output.console import ConsoleReporter  # noqa: PLC0415

        reporter = ConsoleReporter(show_diff=args.diff, verbose=args.verbose, check=args.check)
    try:
        context = run_context(args, check=args.check)
        plans = plan_from_args(args, context, **tag_filters(args))
    except KeyboardInterrupt:  # while loading: no host was contacted
        outcome = RunResult(interrupted=True)
    else:
        if reporter is None:  # results kept for the report, their detail packed
            outcome = execute(plans, context, reporter, rollout=True, keep=Keep.REPORT)
        else:  # the console shows each result as it comes: the recap needs no detail
            from vnetctl.output.verbosity import logs_shown  # noqa: PLC0415

            reporter.planned(plans)
            with logs_shown(args.verbose, reporter.console):
                outcome = execute(plans, context, reporter, rollout=True, keep=Keep.RECAP)
    outcome.detailed_exitcode = args.detailed_exitcode
    if reporter is None:
        json_report.write(outcome, sys.stdout, playbook=args.playbook, check=args.check)
    else:
        reporter.recap(outcome, check=args.check)
    return outcome.exit_code()
