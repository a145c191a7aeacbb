"""`vnetctl` command line: parse, dispatch, turn known errors into exit codes."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Iterator

from vnetctl import __version__
from vnetctl.cli import exit_codes
from vnetctl.cli.usage import CliParser
from vnetctl.errors import Interrupted, VnetctlError
from vnetctl.runner.results import ExitCode

DESCRIPTION = """\
Configure the virtual networking of KVM hosts over SSH, agentless, from Ansible-style
inventories and playbooks: Linux bridges, bonds, VLANs and VM port groups, MTU, VXLAN
meshes, Open vSwitch bridges, and tc traffic shaping; check mode with diffs, and drift
reports from the same declared state.

  vnetctl lab up --hosts 3                         # a fleet of real lab hosts on this machine
  vnetctl run playbooks/site.yml -i inventory/lab.yml
  vnetctl run playbooks/site.yml -i inventory/lab.yml --check --diff
  vnetctl drift playbooks/site.yml -i inventory/lab.yml --format html -o drift.html
  vnetctl facts -i inventory/lab.yml --limit lab-h1
"""


# each command's module (vnetctl.cli.NAME_cmd), in the order --help lists them
COMMANDS = ("run", "facts", "mesh", "drift", "snapshot", "stats", "trace", "inventory", "lab")


def command_module(name: str):
    return importlib.import_module(f"vnetctl.cli.{name}_cmd")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Every command's parser; `only`: that command's alone, so that a run imports
    none of the other commands' code (~65 ms of controller CPU a run: drift, trace,
    lab...). A command's own parser and help are the same either way."""
    parser = CliParser(
        prog="vnetctl",
        description=DESCRIPTION,
        epilog=exit_codes.main_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vnetctl {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for name in COMMANDS if only is None else (only,):
        command_module(name).add_parser(commands)
    return with_exit_codes(parser)


def build_admin_parser() -> argparse.ArgumentParser:
    return with_exit_codes(command_module("drift").build_admin_parser(), ("drift",))


def commands_of(
    parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """(command as typed after `vnetctl`, its parser) for every command that runs."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers:
        yield " ".join(prefix), parser
    for action in subparsers:
        for name, sub in action.choices.items():
            yield from commands_of(sub, (*prefix, name))


def with_exit_codes(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """Each command's --help ends with its exit codes, from the one table; each command
    knows its name, to check what it returns against that table."""
    for command, sub in commands_of(parser, prefix):
        sub.epilog = exit_codes.epilog(command)
        sub.formatter_class = argparse.RawDescriptionHelpFormatter
        sub.set_defaults(command=command)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    # `drift history|schedule` have parsers of their own: `drift` takes a playbook path
    if len(argv) >= 2 and argv[0] == "drift" and argv[1] in command_module("drift").ADMIN_COMMANDS:
        args = build_admin_parser().parse_args(argv[1:])
    else:
        args = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
    args.argv = list(argv)  # as typed: `drift schedule install` keeps the check's own
    return args


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM before a run starts: as Ctrl-C, nothing touched


def main(argv: list[str] | None = None) -> int:
    try:
        code = _run(sys.argv[1:] if argv is None else argv, own_process=argv is None)
        sys.stdout.flush()  # the last of the output: a reader gone shows here, or never
        sys.stderr.flush()
        return code
    except BrokenPipeError:
        from vnetctl.output.pipes import end_as_sigpipe  # noqa: PLC0415 (rich: not for a JSON run)

        end_as_sigpipe()
    except KeyboardInterrupt:  # while the last of the output waited for a slow reader
        return ExitCode.INTERRUPTED


def _run(argv: list[str], own_process: bool) -> int:
    try:
        args = parse_args(argv)
    except SystemExit as exc:  # --help, --version (0) or a usage error (1)
        return exc.code if isinstance(exc.code, int) else ExitCode.BAD_INPUT
    if own_process:  # the command itself, not a test calling main()
        signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        code = args.func(args)
    except Interrupted as exc:
        print(f"vnetctl: {exc}", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except VnetctlError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return ExitCode.BAD_INPUT
    except KeyboardInterrupt:
        print("vnetctl: interrupted before any host was changed", file=sys.stderr)
        return ExitCode.INTERRUPTED
    if not exit_codes.documented(args.command, code):
        print(
            f"vnetctl: internal error: `vnetctl {args.command}` ended with exit code {code}, "
            "which vnetctl/cli/exit_codes.py does not document for it",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
