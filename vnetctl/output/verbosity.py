"""What `-v` to `-vvvv` add to the console, as ansible-playbook's levels:

- `-v`: every result line, even on a large fleet, and the tasks and loop items a `when`
  left out on each host, with the condition that is false;
- `-vv`: each task's arguments as rendered for each host, before the play runs;
- `-vvv`: the commands each task runs on its host, exactly (argv and the lines of its
  stdin, reads of facts included; in check mode, the changes it would run), and
  the SSH steps: whom vnetctl connects to and how, how long it took, the remote
  command of each play (the `vnetctl.ssh` logger);
- `-vvvv`: the SSH library's own debug log (asyncssh or paramiko).

Every line goes through the run's redaction (vnetctl.secrets) and printable(): a secret
is `***` at every level.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape

from vnetctl.printable import printable
from vnetctl.secrets import redact

SSH_LOG = "vnetctl.ssh"  # connection steps: INFO, shown from -vvv
LIBRARY_LOGS = ("asyncssh", "paramiko")  # shown from -vvvv


def _shown(text: str) -> str:
    return escape(printable(redact(text)))


def plan_lines(plan: Any, verbosity: int) -> list[str]:
    """The skipped tasks (-v) and rendered arguments (-vv) of a planned play."""
    lines = []
    for host in plan.hosts:
        if verbosity >= 1:
            for name, condition in plan.skipped.get(host, []):
                lines.append(f"[cyan]skipping[/]: [[bold]{_shown(host)}[/]] {_shown(name)} "
                             f"[dim](when: {_shown(condition)})[/]")  # fmt: skip
        if verbosity >= 2:
            for task in plan.tasks.get(host, []):
                args = json.dumps(redact(task.args), sort_keys=True, default=str)
                lines.append(f"[dim]task[/]: [[bold]{_shown(host)}[/]] {_shown(task.name)} "
                             f"[dim]{task.module}[/] {_shown(args)}")  # fmt: skip
    return lines


def command_lines(commands: Sequence[str], ran: Sequence[dict] | None, check: bool) -> list[str]:
    """-vvv: what the task ran on its host (`ran`: each command and the lines of its
    stdin, the reads of facts included), and in check mode the changes it would run;
    from a host that said nothing of what it ran, the changes as commands."""
    if ran is None:
        return [f"    [dim]$[/] {_shown(c)}" for c in commands]
    lines = []
    for command in ran:
        lines.append(f"    [dim]$[/] {_shown(str(command.get('argv', '')))}")
        lines += [f"    [dim]|[/]   {_shown(str(line))}" for line in command.get("stdin") or []]
    if check:
        lines += [f"    [dim]would run:[/] {_shown(c)}" for c in commands]
    return lines


class _ConsoleHandler(logging.Handler):
    def __init__(self, console: Console):
        super().__init__()
        self._console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # a library's malformed record: say so, never fail the run
            text = f"{record.msg!r} (unformattable log record)"
        self._console.print(f"[dim]<{escape(record.name)}>[/] {_shown(text)}", soft_wrap=True)


@contextmanager
def logs_shown(verbosity: int, console: Console) -> Iterator[None]:
    """While a command runs: the SSH steps from -vvv, the libraries' debug from -vvvv."""
    if verbosity < 3:
        yield
        return
    handler = _ConsoleHandler(console)
    loggers = [(logging.getLogger(SSH_LOG), logging.INFO)]
    if verbosity >= 4:
        loggers += [(logging.getLogger(name), logging.DEBUG) for name in LIBRARY_LOGS]
    before = [(log, log.level, log.propagate) for log, _ in loggers]
    for log, level in loggers:
        log.setLevel(level)
        log.addHandler(handler)
        log.propagate = False
    try:
        yield
    finally:
        for log, level, propagate in before:
            log.removeHandler(handler)
            log.setLevel(level)
            log.propagate = propagate
