"""The argument parser of every vnetctl command: a usage error exits 1, never 2.

argparse exits 2 on a usage error, which for `vnetctl run` means "a task failed" and for
`vnetctl drift` "drift found": a mistyped option in a cron job or a CI step would read
as drift. Every parser of the command line is a `CliParser` (sub-parsers inherit the
class of the parser they are added to), so a usage error is bad input: exit 1, with
argparse's message; for an ansible-playbook flag vnetctl lacks, one line saying what to
use instead (vnetctl.cli.ansible_flags).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from vnetctl.cli.ansible_flags import nearest
from vnetctl.runner.results import ExitCode


class CliParser(argparse.ArgumentParser):
    def _print_message(self, message: str, file=None) -> None:
        # argparse swallows OSError here: a reader gone (--help | head) must end us
        # as it ends any Unix tool (see vnetctl.output.pipes), not pass unnoticed
        if message:
            (file or sys.stderr).write(message)

    def error(self, message: str) -> NoReturn:
        hint = nearest(message)
        if hint:  # an Ansible habit: say what to use, not the whole usage
            self.exit(ExitCode.BAD_INPUT, f"{self.prog}: error: {hint}\n")
        self.print_usage(sys.stderr)
        self.exit(ExitCode.BAD_INPUT, f"{self.prog}: error: {message}\n")
