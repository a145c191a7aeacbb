"""The `vnetctl` command as an operator runs it: a separate process, text on a terminal
(forced), exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SITE = str(ROOT / "playbooks" / "site.yml")


def vnetctl(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="120", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "vnetctl", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def test_help_teaches_commands_examples_and_exit_codes():
    out = vnetctl("--help").stdout
    for word in ("run", "facts", "stats", "lab", "exit codes", "3    hosts were unreachable"):
        assert word in out
    run_help = vnetctl("run", "--help").stdout
    for word in (
        "--check",
        "--diff",
        "--limit",
        "--tags",
        "-e",
        "--forks",
        "--format",
        "examples:",
    ):
        assert word in run_help


def test_bad_input_exits_1_with_file_and_line_before_touching_any_host(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    kvm1: {ansible_host: 10.213.250.1}\n")
    book = tmp_path / "book.yml"
    book.write_text("- hosts: all\n  tasks:\n    - name: typo\n      linux_brige: {name: b}\n")
    run = vnetctl("run", str(book), "-i", str(inventory))
    assert run.returncode == 1
    assert f"{book}:3" in run.stderr and "unknown module 'linux_brige'" in run.stderr
    assert "linux_bridge" in run.stderr  # the close match is suggested


@pytest.mark.lab
def test_run_text_output_recap_and_idempotent_second_run(lab3, fresh_hosts):
    inv = str(lab3.inventory_path)
    first = vnetctl("run", SITE, "-i", inv)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "PLAY [VM networks]" in first.stdout
    for host in lab3.host_names:
        assert f"changed: [{host}] VM bridge with its uplink" in first.stdout
    assert "RECAP" in first.stdout and "3 hosts: 0 ok, 6 changed, 0 failed" in first.stdout

    second = vnetctl("run", SITE, "-i", inv)
    assert second.returncode == 0
    assert "3 hosts: 6 ok, 0 changed, 0 failed" in second.stdout


@pytest.mark.lab
def test_failed_task_exits_2_and_names_host_and_reason(lab3, fresh_hosts, tmp_path):
    book = tmp_path / "bad.yml"
    book.write_text(
        "- hosts: all\n  tasks:\n    - link: {name: eth9, mtu: 1500}\n"
        "    - link: {name: eth2, mtu: 9000}\n"
    )
    run = vnetctl("run", str(book), "-i", str(lab3.inventory_path), "--limit", lab3.host_names[0])
    assert run.returncode == 2
    assert "interface eth9 does not exist on this host" in run.stdout
    assert "skipped" in run.stdout


@pytest.mark.lab
def test_lab_status_reports_healthy_hosts(lab3):
    run = vnetctl("lab", "status", "--name", lab3.name)
    assert run.returncode == 0
    for host in lab3.host_names:
        assert host in run.stdout
