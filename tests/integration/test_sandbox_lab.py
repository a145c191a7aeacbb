"""A hostile inventory variable runs nothing on the controller: run, run --check, drift,
facts and mesh check refuse it with file:line, exit 1, before touching any lab host."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
MESH = str(ROOT / "playbooks" / "vxlan-mesh.yml")


def payload(marker: Path) -> str:
    return "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"


def vnetctl(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    argv = [sys.executable, "-m", "vnetctl", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


def inventory(lab, path: Path, **variables) -> str:
    data = yaml.safe_load(lab.inventory_path.read_text())
    data["all"]["vars"].update(variables)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def refused(run: subprocess.CompletedProcess) -> str:
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("ERROR: ")
    return run.stderr


@pytest.mark.parametrize(
    "command",
    [["run"], ["run", "--check"], ["drift", "--no-history"], ["mesh", "check"]],
    ids=" ".join,
)
def test_payload_in_a_variable_a_task_uses(lab3, tmp_path, command):
    marker = tmp_path / "pwned"
    inv = inventory(lab3, tmp_path / "inv.yml", mesh_members=payload(marker))
    error = refused(vnetctl(*command, MESH, "-i", inv))
    assert f"{MESH}:13: play 'VXLAN overlay for VM networks' task 'tenant segments across" in error
    assert "argument 'members': unsafe template refused: access to attribute '__init__'" in error
    assert f"(via variable 'mesh_members' at {inv}:" in error
    assert not marker.exists()


def test_payload_in_a_connection_variable_for_facts(lab3, tmp_path):
    marker = tmp_path / "pwned"
    host = lab3.host_names[0]
    data = yaml.safe_load(lab3.inventory_path.read_text())
    data["all"]["children"]["lab"]["hosts"][host] = {"ansible_host": "{{ mgmt_address }}"}
    data["all"]["vars"]["mgmt_address"] = payload(marker)
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    for argv in (["facts"], ["facts", "--limit", host], ["snapshot"]):
        error = refused(vnetctl(*argv, "-i", str(tmp_path / "inv.yml")))
        assert f"host {host}: variable ansible_host: unsafe template refused" in error
        assert "via variable 'mgmt_address'" in error
    assert not marker.exists()


def test_in_place_changes_are_refused_too(lab3, tmp_path):
    inv = inventory(lab3, tmp_path / "inv.yml", uplinks=["eth1"])
    book = tmp_path / "book.yml"
    book.write_text(
        "- hosts: all\n  tasks:\n"
        "    - linux_bridge: {name: br-x, ports: \"{{ uplinks.append('eth2') or uplinks }}\"}\n"
    )
    error = refused(vnetctl("run", str(book), "-i", inv, "--check"))
    assert f"{book}:3:" in error
    assert "access to attribute 'append' of a list is unsafe" in error
