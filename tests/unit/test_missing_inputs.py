"""Which input is missing or wrong is said: the playbook, an inventory (-i), an extra-vars
file (-e @FILE); a --limit naming nothing never suggests the groups every inventory has."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnetctl.cli.main import main


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "inv.yml").write_text("all:\n  children:\n    kvm:\n      hosts:\n        h1:\n")
    (tmp_path / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    (tmp_path / "vars.yml").write_text("a: 1\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope.yml", "-i", "inv.yml"], "ERROR: nope.yml: playbook not found\n"),
        (["site.yml", "-i", "nope.yml"],
         "ERROR: nope.yml: inventory file or directory not found (-i)\n"),
        (["site.yml", "-i", "inv.yml", "-e", "@vars.yml", "-e", "@nope.yml"],
         "ERROR: nope.yml: extra-vars file not found (-e @nope.yml)\n"),
        (["site.yml", "-i", "inv.yml", "--limit", "nope"],
         "ERROR: --limit: unknown host pattern 'nope': no host or group has that name "
         "(groups: kvm)\n"),
        (["site.yml", "-i", "inv.yml", "--limit", "kvn"],
         "ERROR: --limit: unknown host pattern 'kvn' (did you mean 'kvm'?)\n"),
    ],
)  # fmt: skip
def test_the_missing_one_is_named(project, capsys, argv, message):
    assert main(["run", *argv, "--syntax-check"]) == 1
    assert capsys.readouterr().err == message
