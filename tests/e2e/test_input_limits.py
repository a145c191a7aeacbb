"""Bad paths and hostile files, as an operator meets them: one clear line, exit 1, no
traceback, nothing contacted (the playbooks here have no tasks, the inventories no
reachable host)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def vnetctl(*args: str, wrap: list[str] | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="120", NO_COLOR="1")
    argv = [*(wrap or []), sys.executable, "-m", "vnetctl", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


@pytest.fixture
def files(tmp_path):
    """An inventory with one host and a playbook without tasks: nothing is contacted."""
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    kvm1: {ansible_host: 127.0.0.9}\n")
    (tmp_path / "empty.yml").write_text("- hosts: all\n  tasks: []\n")
    (tmp_path / "nobody.yml").write_text("all: {}\n")
    return tmp_path


def one_clean_error(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), run.stderr
    return lines[0]


def test_alias_bomb_inventory_is_refused_in_well_under_a_second(files):
    bomb = ["all:", "  hosts: {kvm1: {ansible_host: 127.0.0.9}}", "  vars:"]
    bomb.append("    l0: &l0 [" + ", ".join(['"lol"'] * 9) + "]")
    bomb += [f"    l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    (files / "bomb.yml").write_text("\n".join(bomb) + "\n")
    (files / "uses.yml").write_text("- hosts: all\n  tasks:\n    - link: {name: '{{ l9 }}'}\n")
    started = time.monotonic()
    run = vnetctl("run", str(files / "uses.yml"), "-i", str(files / "bomb.yml"), "--check")
    elapsed = time.monotonic() - started  # interpreter start-up included
    line = one_clean_error(run)
    assert f"{files / 'bomb.yml'}: aliases expand this document by more than" in line
    assert elapsed < 2.0


def test_output_into_a_missing_directory_is_refused_and_not_created(files):
    missing = files / "reports" / "today"
    inventory = ["-i", str(files / "hosts.yml")]
    drift = ["drift", str(files / "empty.yml"), *inventory, "--no-history"]
    for argv in (
        [*drift, "-o", str(missing / "d.html"), "--format", "html"],
        [*drift, "--report", f"json={missing}/d.json"],
        ["snapshot", "-i", str(files / "nobody.yml"), "-o", str(missing / "snap.yml")],
    ):
        line = one_clean_error(vnetctl(*argv))
        assert f"directory {missing} does not exist (create it first)" in line
        assert not (files / "reports").exists()


def test_an_unwritable_report_path_is_one_line_and_exit_1(files):
    readonly = files / "ro"
    readonly.mkdir()
    # root writes through permission bits: a read-only mount in a private mount namespace
    mount = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             f"mount -t tmpfs -o ro tmpfs {readonly} && exec \"$@\"", "sh"]  # fmt: skip
    drift = ["drift", str(files / "empty.yml"), "-i", str(files / "hosts.yml"), "--no-history"]
    line = one_clean_error(vnetctl(*drift, "--report", f"html={readonly}/d.html", wrap=mount))
    assert line == (
        f"ERROR: --report html {readonly}/d.html: cannot write in {readonly}: Read-only file system"
    )
    line = one_clean_error(vnetctl(*drift, "-o", f"{readonly}/d.json", wrap=mount))
    assert line.startswith(f"ERROR: -o {readonly}/d.json: cannot write in {readonly}")
    line = one_clean_error(vnetctl(*drift, "-o", str(files)))
    assert line == f"ERROR: -o {files}: is a directory, not a file"


def test_history_file_has_one_name_and_the_old_one_still_works(files):
    db = files / "h.sqlite"
    check = ["drift", str(files / "empty.yml"), "-i", str(files / "hosts.yml"), "--retries", "0"]
    # no task, but the host is still contacted: unreachable (exit 3), recorded
    assert vnetctl(*check, "--history", str(db)).returncode == 3
    listed = vnetctl("drift", "history", "--history", str(db))
    assert listed.returncode == 0 and "empty.yml on hosts.yml" in listed.stdout
    assert listed.stderr == ""
    old = vnetctl("drift", "history", "--db", str(db))
    assert old.returncode == 0 and old.stdout == listed.stdout
    assert old.stderr == "vnetctl: --db is deprecated, use --history\n"
    help_text = vnetctl("drift", "history", "--help").stdout
    assert "--history DB" in help_text and "--db" not in help_text
    assert "--history DB" in vnetctl("drift", "--help").stdout

    line = one_clean_error(vnetctl(*check, "--history", str(files / "nowhere" / "h.sqlite")))
    assert f"directory {files / 'nowhere'} does not exist" in line
