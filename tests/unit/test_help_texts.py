"""What every --help says holds: the top-level description names what vnetctl
configures, and every inventory an example names is one a reader has (the repository's,
or inventory/lab.yml, which `vnetctl lab up` writes)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vnetctl.cli.main import build_admin_parser, build_parser, commands_of, main

ROOT = Path(__file__).parents[2]
PARSERS = dict(commands_of(build_parser())) | dict(commands_of(build_admin_parser(), ("drift",)))


def test_the_description_names_what_vnetctl_configures(capsys):
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for word in ("bridges", "bonds", "VLANs", "VXLAN", "Open vSwitch", "shaping", "drift"):
        assert word in text


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_inventory_an_example_names_exists(command, capsys):
    assert main([*command.split(), "--help"]) == 0
    examples, going_on = [], False
    for line in capsys.readouterr().out.splitlines():
        if line.startswith("  vnetctl ") or going_on:
            examples.append(line)
        going_on = (line.startswith("  vnetctl ") or going_on) and line.endswith("\\")
    for path in re.findall(r"-i (\S+)", "\n".join(examples)):
        assert path == "inventory/lab.yml" or (ROOT / path).exists(), (command, path)
