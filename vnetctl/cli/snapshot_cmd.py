"""`vnetctl snapshot`: the live network of hosts written out as a playbook."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vnetctl.cli.common import add_target_options, run_context, selected_hosts
from vnetctl.drift.files import check_writable, write_atomic
from vnetctl.fleet.execute import read_facts
from vnetctl.runner.results import ExitCode
from vnetctl.secrets import redact
from vnetctl.snapshot.playbook import build_playbook, fleet_tasks, to_yaml

HELP = """\
Read the live network of each host (bridges and their ports, MTUs, STP, VXLAN meshes,
and what later modules describe) and write it as a playbook that, applied to the same
hosts, plans nothing: a record of the network, or the start of a DR site's playbook.
Hosts with the same network share a play. Read-only.

examples:
  vnetctl snapshot -i inventory/lab.yml -o snapshot.yml
  vnetctl run snapshot.yml -i inventory/lab.yml --check     # 0 changed
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "snapshot",
        help="write hosts' live network as a playbook",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_target_options(parser)
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (default: stdout)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.output:
        check_writable(Path(args.output), "-o")
    context = run_context(args, check=True)
    facts, errors, outcome = read_facts(context, selected_hosts(args, context))
    tasks_by_host, notes = fleet_tasks(context, facts)
    plays = build_playbook(context.catalog, tasks_by_host)
    # the data redacted before YAML quotes or folds a value, the text again after
    text = redact(to_yaml(redact(plays), redact(list(facts)), redact(errors), redact(notes)))
    if args.output:
        write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    for host, reason in sorted(errors.items()):
        print(redact(f"snapshot: {host} not included: {reason}"), file=sys.stderr)
    return outcome.exit_code() if errors else ExitCode.SUCCESS
