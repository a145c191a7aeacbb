"""The exit codes of every command: the one table that `--help` and the README render.

A command returns only codes listed here for it (`main` says so on stderr when one does
not, and the tests fail); each listed code is produced by a test scenario
(tests/e2e/test_exit_codes.py). The README's exit-code section is generated from this
table:

    .venv/bin/python -m vnetctl.cli.exit_codes README.md     # rewrite the generated block
"""

from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path

from vnetctl.runner.results import ExitCode

OUTPUT_CLOSED = 141  # 128 + SIGPIPE: what a shell shows for a command its reader left

# Codes every command has: main() produces them, whatever the command.
EVERY_COMMAND: dict[int, str] = {
    ExitCode.BAD_INPUT: "bad input: a usage error (unknown option, missing argument, bad "
    "value) or an inventory, playbook, variable or file that cannot be used, with file:line "
    "where there is one",
    ExitCode.INTERRUPTED: "interrupted (SIGINT/SIGTERM)",
    OUTPUT_CLOSED: "the reader of the output went away (e.g. `| head`): vnetctl ends "
    "quietly by SIGPIPE, as any Unix tool does (the shell shows 141)",
}
# What the codes above also say for the commands that work on hosts over SSH.
HOST_COMMANDS = ("run", "facts", "snapshot", "stats", "mesh check", "drift", "trace")
ON_HOSTS: dict[int, str] = {
    ExitCode.BAD_INPUT: "; nothing touched a host",
    ExitCode.INTERRUPTED: "; where hosts were being worked on, the output says what "
    "changed, what is unknown and what never started",
    OUTPUT_CLOSED: "; a host finishes the task in flight and starts no other",
}


def every_command(command: str | None) -> dict[int, str]:
    """The codes every command has, as they read for `command` (None: any command)."""
    on_hosts = command in HOST_COMMANDS
    return {
        code: text + (ON_HOSTS[code] if on_hosts else "") for code, text in EVERY_COMMAND.items()
    }


# Per command (as typed after `vnetctl`): its own codes; a code also in EVERY_COMMAND
# is given the command's own, more precise, meaning.
COMMANDS: dict[str, dict[int, str]] = {
    "run": {
        ExitCode.SUCCESS: "success (with --check: nothing failed; with --list-hosts, "
        "--list-tasks or --list-tags: the lists, with --syntax-check: every input valid; "
        "no host contacted)",
        ExitCode.BAD_INPUT: "bad input (as for every command; nothing touched a host), or a "
        "play refused before any change on its hosts because it would cut them off the path "
        "vnetctl reaches them by (run it with --confirm-timeout to apply it under a "
        "rollback timer); with --check, a play the real run would refuse so",
        ExitCode.HOST_FAILED: "a task failed on at least one host (the other hosts went on), "
        "or a rolling play stopped: a health gate failed on a batch, or the batch's failures "
        "exceeded max_fail_percentage (the hosts after it untouched); with --check "
        "--detailed-exitcode also: a change would be made. 2 whatever else happened: "
        "hosts unreachable beside it are in the recap",
        ExitCode.HOST_UNREACHABLE: "hosts were unreachable and nothing else went wrong on "
        "the hosts reached",
    },
    "facts": {
        ExitCode.SUCCESS: "the facts of every host",
        ExitCode.HOST_FAILED: 'a host\'s facts could not be read (it is under "errors"), '
        "whatever else happened",
        ExitCode.HOST_UNREACHABLE: 'hosts were unreachable (under "errors") and every host '
        "reached was read",
    },
    "trace": {
        ExitCode.SUCCESS: "the frame is delivered at every hop traced",
        ExitCode.HOST_FAILED: "it is dropped (`dropped_at` names the hop) or a hop's decision "
        "is unknown, whatever else happened",
    },
    "snapshot": {
        ExitCode.SUCCESS: "every host is in the snapshot",
        ExitCode.HOST_FAILED: "a host could not be read: it is left out (named in the "
        "snapshot's header and on stderr), whatever else happened",
        ExitCode.HOST_UNREACHABLE: "hosts were unreachable (left out) and every host reached "
        "was read",
    },
    "stats": {
        ExitCode.SUCCESS: "every host's counters were read",
        ExitCode.HOST_FAILED: "a host's counters could not be read (named on stderr and "
        'under "errors"), or with --probe the probe failed on a host it reached, whatever '
        "else happened (a pair losing pings is a measurement, not an error)",
        ExitCode.HOST_UNREACHABLE: "hosts were unreachable and every host reached was read",
    },
    "mesh check": {
        ExitCode.SUCCESS: "every pair probed (the sample, or every pair with --full) is "
        "reachable through every segment",
        ExitCode.HOST_FAILED: "some probed pair is not (MTU or unreachable), a probe failed, or "
        "the mesh is not applied on some member",
        ExitCode.HOST_UNREACHABLE: "a member was unreachable (takes precedence over 2)",
    },
    "drift": {
        0: "no drift (also when the history could not record the run: one line on stderr says so)",
        1: "error: bad input, a host failed (its drift is unknown) and no drift found "
        "elsewhere, or a report file (-o, --report) that could not be written (the others "
        "are) and no drift found",
        2: "drift found on a reachable host, whatever else happened: hosts unreachable or "
        "failed beside it, a report file or the history not written (all said in the "
        "report and on stderr)",
        3: "hosts unreachable (their drift is unknown), no drift on the hosts reached",
    },
    "inventory": {
        0: "the inventory, a host's variables or the graph was printed (no host contacted)",
    },
    "drift history": {
        0: "the recorded runs, or the items of run N (no history yet: none)",
        1: "no such run in the history, or bad input",
    },
    "drift report": {
        0: "no drift in the last run of any shard of the check",
        1: "no history, no such check, bad input, or a shard has no recorded run (said on "
        "stderr) and no drift found",
        2: "drift found on a reachable host in some shard's last run",
        3: "hosts unreachable in some shard's last run, no drift on the hosts reached",
    },
    "drift schedule install": {
        0: "the timer and service (or the cron line) are written, and enabled where systemd runs",
    },
    "drift schedule remove": {0: "removed, or there was nothing to remove"},
    "lab up": {
        0: "the lab is up: every host's sshd accepts connections",
        1: "bad input (not root, a name, a subnet in use...), or the lab could not be built: "
        "what failed is said; `vnetctl lab down` removes what was made",
    },
    "lab status": {
        0: "every host is healthy",
        1: "some host is unhealthy, there is no such lab, or bad input",
    },
    "lab reset": {
        0: "every host's network is as `lab up` made it",
        1: "bad input (not root, no such lab or host), or a host could not be reset: "
        "what failed is said",
    },
    "lab down": {
        0: "the lab is removed, or there was no such lab",
        1: "bad input (not root, a name), or something the lab made could not be removed",
    },
}


def codes(command: str) -> dict[int, str]:
    """Every exit code of `command` and its meaning, in order."""
    merged = {**every_command(command), **COMMANDS[command]}
    return dict(sorted(merged.items()))


def documented(command: str, code: int) -> bool:
    return command in COMMANDS and code in codes(command)


def epilog(command: str) -> str:
    """The `exit codes:` section of the command's --help."""
    lines = ["exit codes:"]
    for code, meaning in codes(command).items():
        lines += textwrap.wrap(
            meaning, width=88, initial_indent=f"  {code:<4} ", subsequent_indent=" " * 7
        )
    return "\n".join(lines) + "\n"


def main_epilog() -> str:
    """For `vnetctl --help`: the codes of `vnetctl run`; the other commands have theirs."""
    body = epilog("run").split("\n", 1)[1]
    return "exit codes of `vnetctl run` (each command's --help lists its own):\n" + body


BEGIN = "<!-- exit-codes: begin (generated from vnetctl/cli/exit_codes.py by "
BEGIN += "`.venv/bin/python -m vnetctl.cli.exit_codes README.md`; do not edit) -->"
END = "<!-- exit-codes: end -->"


def markdown() -> str:
    """The README's table: every command, every code."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|")  # a | splits a table cell, even in `code`

    rows = ["| command | code | meaning |", "|---|---|---|"]
    for code, meaning in EVERY_COMMAND.items():
        rows.append(f"| every command | {code} | {cell(meaning)} |")
    hosts = ", ".join(f"`{c}`" for c in HOST_COMMANDS)
    for code, meaning in ON_HOSTS.items():
        rows.append(f"| {hosts} | {code} | also: {cell(meaning.lstrip('; '))} |")
    for command in COMMANDS:
        for code, meaning in sorted(COMMANDS[command].items()):
            rows.append(f"| `vnetctl {command}` | {code} | {cell(meaning)} |")
    return "\n".join(rows) + "\n"


def render_readme(text: str) -> str:
    """`text` (the README) with its generated block replaced by the current table."""
    pattern = re.compile(re.escape(BEGIN.split(" (")[0]) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"no generated block ({BEGIN} ... {END}) in the README")
    return pattern.sub(lambda _m: f"{BEGIN}\n{markdown()}{END}", text, count=1)


if __name__ == "__main__":
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    readme.write_text(render_readme(readme.read_text()))
    print(f"{readme}: exit-code table rewritten")
