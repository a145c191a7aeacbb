"""The one table of exit codes (vnetctl/cli/exit_codes.py) covers every command, and
what --help and the README say is rendered from it (the README's block is current)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnetctl.cli import exit_codes
from vnetctl.cli.main import build_admin_parser, build_parser, commands_of, main

README = Path(__file__).parents[2] / "README.md"
PARSED = dict(commands_of(build_parser())) | dict(commands_of(build_admin_parser(), ("drift",)))


def test_every_command_has_its_codes_in_the_table_and_only_commands_do():
    assert sorted(PARSED) == sorted(exit_codes.COMMANDS)


@pytest.mark.parametrize("command", sorted(exit_codes.COMMANDS))
def test_each_commands_help_ends_with_its_codes_from_the_table(command, capsys):
    assert main([*command.split(), "--help"]) == 0
    out = capsys.readouterr().out
    assert out.endswith(exit_codes.epilog(command))
    for code in exit_codes.codes(command):
        assert f"\n  {code:<4} " in out


def test_the_main_help_shows_runs_codes_and_sends_to_each_commands_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "each command's --help lists its own" in out
    assert all(f"\n  {code:<4} " in out for code in exit_codes.codes("run"))


def test_the_readmes_exit_code_block_is_current():
    text = README.read_text()
    assert exit_codes.BEGIN in text and exit_codes.END in text
    assert exit_codes.render_readme(text) == text, (
        "README's exit codes are stale: run `.venv/bin/python -m vnetctl.cli.exit_codes README.md`"
    )


def test_the_regenerated_block_replaces_a_stale_one():
    stale = f"before\n{exit_codes.BEGIN}\n| old |\n{exit_codes.END}\nafter\n"
    fresh = exit_codes.render_readme(stale)
    assert fresh.startswith("before\n") and fresh.endswith("after\n") and "| old |" not in fresh
    assert exit_codes.render_readme(fresh) == fresh


@pytest.mark.parametrize("command", sorted(exit_codes.COMMANDS))
def test_what_the_codes_say_of_hosts_is_only_in_commands_that_reach_hosts(command, capsys):
    assert main([*command.split(), "--help"]) == 0
    codes = capsys.readouterr().out.rpartition("exit codes:")[2]
    said = "starts no other" in codes or "hosts were being worked on" in codes
    assert said == (command in exit_codes.HOST_COMMANDS), command
