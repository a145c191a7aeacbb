"""The same module files, run by a real ansible-playbook (ansible-core from PyPI, in
.venv-ansible made by scripts/setup.sh) from an Ansible library path, on a lab host."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
ANSIBLE = ROOT / ".venv-ansible" / "bin" / "ansible-playbook"


def ansible_playbook(lab, *args: str) -> subprocess.CompletedProcess:
    if not ANSIBLE.exists():
        pytest.fail(f"{ANSIBLE} missing: run scripts/setup.sh")
    env = dict(
        os.environ,
        ANSIBLE_LIBRARY=str(ROOT / "modules"),
        ANSIBLE_MODULE_UTILS=str(ROOT / "modules" / "module_utils"),
        ANSIBLE_PIPELINING="1",
        ANSIBLE_GATHERING="explicit",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_SSH_ARGS=f"-o UserKnownHostsFile={lab.known_hosts_path} "
        "-o StrictHostKeyChecking=yes -o ControlMaster=no",
    )
    return subprocess.run(
        [str(ANSIBLE), "-i", str(lab.inventory_path), "--limit", lab.host_names[0], *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def recap(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if re.search(r"\bok=\d+", line))
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def test_site_playbook_runs_unchanged_under_ansible(lab3, fresh_hosts):
    host = lab3.host_names[0]
    check = ansible_playbook(lab3, "playbooks/site.yml", "--check", "--diff")
    assert check.returncode == 0, check.stdout + check.stderr
    assert recap(check.stdout)["changed"] == 2 and '"mtu": 9000' in check.stdout
    links = json.loads(host_exec(lab3.name, host, ["ip", "-j", "link"]).stdout)
    assert "br-vm" not in {link["ifname"] for link in links}  # check mode changed nothing

    first = ansible_playbook(lab3, "playbooks/site.yml")
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first.stdout)["changed"] == 2
    second = ansible_playbook(lab3, "playbooks/site.yml")
    assert recap(second.stdout) | {"ok": 2} == recap(second.stdout)
    assert recap(second.stdout)["changed"] == 0

    links = {
        link["ifname"]: link
        for link in json.loads(host_exec(lab3.name, host, ["ip", "-j", "link"]).stdout)
    }
    assert links["eth1"]["master"] == "br-vm" and links["br-vm"]["mtu"] == 9000


def test_module_errors_reach_ansible_as_failed_tasks(lab3, fresh_hosts, tmp_path):
    book = tmp_path / "bad.yml"
    book.write_text("- hosts: all\n  tasks:\n    - link: {name: eth9, mtu: 1500}\n")
    run = ansible_playbook(lab3, str(book))
    assert run.returncode == 2
    assert "interface eth9 does not exist on this host" in run.stdout
