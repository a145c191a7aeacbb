"""A usage error exits 1 (bad input), never argparse's 2: for `run` 2 means "a task
failed", for `drift` "drift found", and a cron job or CI step must not read a mistyped
command as either."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vnetctl.cli.main import build_admin_parser, build_parser, commands_of, main

COMMANDS = sorted(
    [name for name, _ in commands_of(build_parser())]
    + [name for name, _ in commands_of(build_admin_parser(), ("drift",))]
)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_exits_1_on_a_usage_error(command, capsys):
    assert main([*command.split(), "--no-such-option"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("usage: vnetctl") and ": error: " in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "site.yml"], "no inventory given: -i PATH"),
        (["drift", "site.yml", "-i", "inv.yml", "--format", "xml"], "invalid choice: 'xml'"),
        (["run", "site.yml", "-i", "inv.yml", "--forks", "0"], "0 is outside 1..1000"),
        (["drift", "history", "--run", "twelve"], "invalid int value: 'twelve'"),
        (["lab", "up", "--hosts", "many"], "invalid int value: 'many'"),
        (["drift", "schedule", "install", "--name", "x", "p.yml", "-i", "i.yml"],
         "one of the arguments --systemd --cron is required"),
        (["mesh"], "the following arguments are required: ACTION"),
        ([], "the following arguments are required: COMMAND"),
    ],
)  # fmt: skip
def test_usage_errors_exit_1(argv, message, capsys):
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_help_and_version_exit_0(capsys):
    assert main(["--version"]) == 0
    assert main(["drift", "history", "--help"]) == 0
    assert "exit codes:" in capsys.readouterr().out


def test_the_process_itself_exits_1():
    done = subprocess.run(
        [sys.executable, "-m", "vnetctl", "drift", "site.yml", "--format", "xml"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "usage: vnetctl drift" in done.stderr and done.stdout == ""
