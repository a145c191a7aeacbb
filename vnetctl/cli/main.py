"""`vnetctl` command line: parse, dispatch, turn known errors into exit codes."""

from __future__ import annotations

import argparse
import signal
import sys

from vnetctl import __version__
from vnetctl.cli import drift_cmd, facts_cmd, lab_cmd, mesh_cmd, run_cmd, snapshot_cmd
from vnetctl.errors import Interrupted, VnetctlError
from vnetctl.runner.results import ExitCode

DESCRIPTION = """\
Configure the virtual networking of KVM hosts over SSH, agentless:
Linux bridges, MTU and VXLAN meshes from Ansible-style inventories and playbooks,
with drift reports from the same declared state.

  vnetctl lab up --hosts 3                         # a fleet of real lab hosts on this machine
  vnetctl run playbooks/site.yml -i inventory/lab.yml
  vnetctl run playbooks/site.yml -i inventory/lab.yml --check --diff
  vnetctl drift playbooks/site.yml -i inventory/lab.yml --format html -o drift.html
  vnetctl facts -i inventory/lab.yml --limit lab-h1
"""

EXIT_CODES = """\
exit codes (`vnetctl drift` has its own: see its --help):
  0  success (or, with --check, nothing failed)
  1  bad input: inventory, playbook, variables or options (file:line in the message)
  2  a task failed on at least one host
  3  at least one host was unreachable (takes precedence over 2)
  130 interrupted (SIGINT/SIGTERM): what changed, what is unknown, what never started
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vnetctl",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vnetctl {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    run_cmd.add_parser(commands)
    facts_cmd.add_parser(commands)
    mesh_cmd.add_parser(commands)
    drift_cmd.add_parser(commands)
    snapshot_cmd.add_parser(commands)
    lab_cmd.add_parser(commands)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    # `drift history|schedule` have parsers of their own: `drift` takes a playbook path
    if len(argv) >= 2 and argv[0] == "drift" and argv[1] in drift_cmd.ADMIN_COMMANDS:
        return drift_cmd.build_admin_parser().parse_args(argv[1:])
    return build_parser().parse_args(argv)


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM before a run starts: as Ctrl-C, nothing touched


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if argv is None:  # the command itself, not a test calling main()
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        return args.func(args)
    except Interrupted as exc:
        print(f"vnetctl: {exc}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except VnetctlError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except KeyboardInterrupt:
        print("vnetctl: interrupted before any host was changed", file=sys.stderr)
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
