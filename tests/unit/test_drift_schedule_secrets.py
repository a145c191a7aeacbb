"""`drift schedule install` writes no secret into unit files, cron lines or the scheduled
command line, and no value that would read back as something else: a line break in
the working directory would inject unit settings, a `%` be a specifier (issue 31)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vnetctl.cli.main import main

PLAYBOOK = """\
- hosts: all
  tasks:
    - link: {name: eth1, mtu: 9000}
      when: db_password | length > 0
"""
INVENTORY = """\
all:
  vars:
    db_password: Inventory-Secret-1
    vnetctl_secret_vars: [snmp_community]
  hosts:
    h1: {ansible_host: 192.0.2.10}
"""
KINDS = {
    "systemd": ["--systemd", "--unit-dir", "units"],
    "cron": ["--cron", "--cron-dir", "cron"],
}


@pytest.fixture
def check(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "inv.yml").write_text(INVENTORY)
    return tmp_path


def install(kind: str, *check_args: str) -> int:
    return main(["drift", "schedule", "install", *KINDS[kind], "--name", "site", "site.yml",
                 "-i", "inv.yml", *check_args])  # fmt: skip


def moved_into(check: Path, directory: str) -> Path:
    """The check's files in a subdirectory named `directory`, the working directory."""
    inside = check / directory
    inside.mkdir()
    os.chdir(inside)
    for name in ("site.yml", "inv.yml"):
        (inside / name).write_text((check / name).read_text())
    return inside


def written(where: Path) -> str:
    files = [p for d in ("units", "cron") if (where / d).is_dir() for p in (where / d).iterdir()]
    return "".join(p.read_text() for p in files)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["-e", "my_password=Hunter2-Clear"], "-e my_password"),
        (["-e", "api_token=Hunter2-Clear mtu=9000"], "-e api_token"),
        (["-e", '{"vault_secret": "Hunter2-Clear"}'], "-e vault_secret"),
        (["-e", "snmp_community=Hunter2-Clear"], "-e snmp_community"),  # marked in the inventory
        (["-e", "vnetctl_secret_vars=[wpa]", "-e", "wpa=Hunter2-Clear"], "-e wpa"),
        (["-e", "note=Inventory-Secret-1"], "-e holds the value of a secret variable"),
    ],
)
def test_a_secret_is_refused_with_where_to_put_it_and_nothing_is_written(
    check, capsys, kind, extra, named
):
    assert install(kind, *extra) == 1
    err = capsys.readouterr().err
    assert named in err and "chmod 600 FILE" in err and "-e @FILE" in err
    assert "Hunter2-Clear" not in err and "Inventory-Secret-1" not in err
    assert written(check) == ""


@pytest.mark.parametrize("kind", KINDS)
def test_secrets_in_a_vars_file_are_named_not_copied(check, kind):
    secrets = check / "secrets.yml"
    secrets.write_text("my_password: Hunter2-Clear\n")
    secrets.chmod(0o600)
    assert install(kind, "-e", f"@{secrets}") == 0
    text = written(check)
    assert f"@{secrets}" in text and "Hunter2-Clear" not in text


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "directory",
    ["x\nExecStartPre=touch injected", "x\r", "tab\there", "line\u2028sep"],
)
def test_a_working_directory_with_a_control_character_is_refused(check, kind, directory):
    inside = moved_into(check, directory)
    assert install(kind) == 1
    assert written(inside) == ""


def test_percent_in_the_working_directory_is_not_a_specifier(check):
    inside = moved_into(check, "50%h")
    assert install("systemd") == 0
    service = (inside / "units" / "vnetctl-drift-site.service").read_text()
    assert f"WorkingDirectory={check}/50%%h\n" in service


@pytest.mark.parametrize("directory", ["ends with blank ", "ends\\"])
def test_a_working_directory_systemd_would_read_otherwise_is_refused(check, capsys, directory):
    moved_into(check, directory)
    assert install("systemd") == 1
    assert "cannot go into a systemd unit" in capsys.readouterr().err
    assert install("cron") == 0  # quoted by the shell, read whole


@pytest.mark.parametrize("kind", KINDS)
def test_an_argument_with_a_control_character_is_refused(check, kind, capsys):
    assert install(kind, "--history", "drift\thistory.sqlite") == 1
    assert "control character" in capsys.readouterr().err
    assert written(check) == ""


def test_a_backslash_before_percent_cannot_be_kept_by_cron(check, capsys):
    assert install("cron", "-e", "note=50\\%") == 1
    assert "cannot go into a cron line" in capsys.readouterr().err
    assert install("systemd", "-e", "note=50\\%") == 0
