"""What the run says about hosts it could not work on: unreachable whatever its tasks,
a missing interpreter named as such."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vnetctl.cli.main import main
from vnetctl.lab import start_sshd, stop_sshd

pytestmark = pytest.mark.lab

SITE = str(Path(__file__).parents[2] / "playbooks" / "site.yml")


def test_drift_calls_an_unreachable_host_unreachable_even_with_no_task(
    lab3, fresh_hosts, capsys, tmp_path
):
    """`when:` false on a host used to mean it was never contacted, so drift called it
    in sync although its sshd was down."""
    down = lab3.host_names[1]
    playbook = tmp_path / "only-h1.yml"
    playbook.write_text(yaml.safe_dump([{
        "hosts": "all",
        "tasks": [{"link": {"name": "eth1", "mtu": 1500},
                   "when": f"inventory_hostname == '{lab3.host_names[0]}'"}],
    }]))  # fmt: skip
    stop_sshd(lab3.name, down)
    try:
        code = main(["drift", str(playbook), "-i", str(lab3.inventory_path), "--retries", "0",
                     "--no-history", "--format", "json"])  # fmt: skip
    finally:
        start_sshd(lab3.name, down)
    doc = json.loads(capsys.readouterr().out)
    assert code == 3  # unreachable, and no drift on the host reached
    states = {h["host"]: h["state"] for h in doc["hosts"]}
    assert states[down] == "unreachable"
    assert states[lab3.host_names[0]] == "in_sync"


def test_missing_interpreter_is_named(lab3, fresh_hosts, capsys, tmp_path):
    doc = yaml.safe_load(Path(lab3.inventory_path).read_text())
    doc["all"]["vars"]["ansible_python_interpreter"] = "/opt/nowhere/python3"
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump(doc))
    code = main(["run", SITE, "-i", str(inventory), "--limit", lab3.host_names[0],
                 "--format", "json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 2
    msg = out["results"][0]["msg"]
    assert "the interpreter '/opt/nowhere/python3' was not found on the host" in msg
    assert "ansible_python_interpreter" in msg
