"""A password referenced by task arguments, directly and through other variables, never
appears in what vnetctl prints or writes: console, JSON, drift reports in every format,
the drift history; on the lab, with the hosts' own error messages quoting it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vnetctl.lab import reset_hosts

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
PASSWORD = "S3cretPassw0rd"  # 14 characters: a valid interface name, so hosts quote it
LEAKS = (PASSWORD, PASSWORD.lower(), PASSWORD[:9], "bS3cretPas")
BOOK = """\
- name: secrets in names
  hosts: all
  tasks:
    - name: bridge named from the password
      linux_bridge: {name: "b{{ vault_password[:9] }}", stp: false}
    - name: port is the password
      linux_bridge: {name: br-sec, ports: ["{{ vault_password }}"]}
      when: inventory_hostname == groups.lab[0]
    - name: uplink through another variable
      link: {name: "{{ uplink_name }}", mtu: 1500}
      when: inventory_hostname == groups.lab[1]
"""
FORMATS = ("text", "json", "html", "junit", "prometheus")


def vnetctl(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    argv = [sys.executable, "-m", "vnetctl", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


def assert_hidden(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} shown in:\n{text}"


@pytest.fixture
def secret_lab(lab3, fresh_hosts, tmp_path):
    data = yaml.safe_load(lab3.inventory_path.read_text())
    data["all"]["vars"]["vault_password"] = PASSWORD
    data["all"]["vars"]["uplink_name"] = "{{ vault_password | lower }}"
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(data))
    (tmp_path / "book.yml").write_text(BOOK)
    try:
        yield lab3, str(tmp_path / "book.yml"), str(tmp_path / "inv.yml")
    finally:
        reset_hosts(lab3.name)  # the bridge named from the password


def test_password_never_shown_by_run_json_drift_nor_history(secret_lab, tmp_path):
    lab, book, inv = secret_lab
    h1, h2, _ = lab.host_names

    check = vnetctl("run", book, "-i", inv, "--check", "--diff")
    assert check.returncode == 2, check.stdout + check.stderr
    assert f"failed: [{h1}] port is the password - port *** of bridge br-sec" in check.stdout
    assert f"failed: [{h2}] uplink through another variable - interface *** does" in check.stdout
    assert_hidden(check.stdout + check.stderr)

    as_json = vnetctl("run", book, "-i", inv, "--check", "--format", "json")
    assert as_json.returncode == 2
    messages = {r["msg"] for r in json.loads(as_json.stdout)["results"]}
    assert "interface *** does not exist on this host" in messages
    assert_hidden(as_json.stdout + as_json.stderr)

    db = tmp_path / "history.sqlite"
    for _ in range(2):  # the second run reads items back from the history
        for fmt in FORMATS:
            reports = [f"--report={f}={tmp_path / ('drift.' + f)}" for f in FORMATS]
            drift = vnetctl(
                "drift", book, "-i", inv, "--history", str(db), "--format", fmt, *reports
            )
            # drift on one host, two failed: drift wins (2), the failed ones are listed
            assert drift.returncode == 2, drift.stdout + drift.stderr
            assert fmt == "prometheus" or "***" in drift.stdout  # metrics name no values
            assert_hidden(drift.stdout + drift.stderr)
            for f in FORMATS:
                assert_hidden((tmp_path / f"drift.{f}").read_text())
    listed = vnetctl("drift", "history", "--history", str(db), "--format", "json")
    runs = json.loads(listed.stdout)["runs"]
    assert len(runs) == 2 * len(FORMATS)
    items = vnetctl("drift", "history", "--history", str(db), "--run", str(runs[0]["id"]))
    assert "bridge ***" in items.stdout
    assert_hidden(listed.stdout + items.stdout)
    for path in tmp_path.glob("history.sqlite*"):
        data = path.read_bytes()
        for leak in LEAKS:
            assert leak.encode() not in data

    applied = vnetctl("run", book, "-i", inv, "--diff")
    assert applied.returncode == 2
    assert_hidden(applied.stdout + applied.stderr)


def test_password_never_shown_in_validation_errors(secret_lab, tmp_path):
    _, _, inv = secret_lab
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "- hosts: all\n  tasks:\n"
        '    - link: {name: eth1, mtu: "{{ vault_password }}"}\n'
        '    - link: {name: eth2, admin_state: "{{ uplink_name }}"}\n'
    )
    for argv in (["run", str(bad)], ["run", str(bad), "--check"], ["drift", str(bad)]):
        run = vnetctl(*argv, "-i", inv, "--format", "json")
        assert run.returncode == 1
        assert "argument 'mtu' of module 'link': expected an integer, got '***'" in run.stderr
        assert "argument 'admin_state' of module 'link': '***' is not one of" in run.stderr
        assert_hidden(run.stdout + run.stderr)
