"""`vnetctl snapshot` on the lab: the live network written as a playbook that, applied to
the same hosts, plans nothing, and rebuilds the network on hosts that lost it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vnetctl.cli.main import main
from vnetctl.lab import reset_hosts

pytestmark = pytest.mark.lab

PLAYBOOKS = Path(__file__).parents[2] / "playbooks"


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main(["run", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_snapshot_round_trips_bridges_mtu_and_meshes(lab3, fresh_hosts, capsys, tmp_path):
    inv = str(lab3.inventory_path)
    assert run_json(capsys, str(PLAYBOOKS / "site.yml"), "-i", inv)[0] == 0
    assert run_json(capsys, str(PLAYBOOKS / "vxlan-mesh.yml"), "-i", inv)[0] == 0

    snapshot = tmp_path / "snapshot.yml"
    assert main(["snapshot", "-i", inv, "-o", str(snapshot)]) == 0
    plays = yaml.safe_load(snapshot.read_text())
    assert len(plays) == 1  # the three hosts have the same network: one play
    tasks = {t["name"]: t for t in plays[0]["tasks"]}
    assert tasks["bridge br-vm"]["linux_bridge"]["ports"] == ["eth1"]
    assert tasks["bridge br-vm"]["linux_bridge"]["mtu"] == 9000
    mesh = tasks["mesh tenants"]["vxlan_mesh"]
    assert [s["vni"] for s in mesh["segments"]] == [100, 200]
    assert mesh["members"] == ",".join(lab3.host_names)

    code, doc = run_json(capsys, str(snapshot), "-i", inv, "--check")
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}, doc

    # the hosts lose their network; the snapshot brings it back, then plans nothing
    reset_hosts(lab3.name)
    code, doc = run_json(capsys, str(snapshot), "-i", inv)
    assert code == 0, doc
    code, doc = run_json(capsys, str(PLAYBOOKS / "vxlan-mesh.yml"), "-i", inv, "--check")
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}, doc
    code, doc = run_json(capsys, str(PLAYBOOKS / "site.yml"), "-i", inv, "--check")
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}, doc


def test_snapshot_of_one_host_keeps_its_mesh_members(lab3, fresh_hosts, capsys, tmp_path):
    """`snapshot --limit h1` used to write `members: h1`: re-applied, it removed every
    peer. The members are read back from h1's live peers."""
    inv = str(lab3.inventory_path)
    h1 = lab3.host_names[0]
    assert run_json(capsys, str(PLAYBOOKS / "vxlan-mesh.yml"), "-i", inv)[0] == 0
    snapshot = tmp_path / "h1.yml"
    assert main(["snapshot", "-i", inv, "--limit", h1, "-o", str(snapshot)]) == 0
    text = snapshot.read_text()
    assert text.startswith("# Snapshot of 1 host taken") and "INCOMPLETE" not in text
    plays = yaml.safe_load(text)
    mesh = next(t["vxlan_mesh"] for t in plays[0]["tasks"] if "vxlan_mesh" in t)
    assert mesh["members"] == ",".join(lab3.host_names)
    code, doc = run_json(capsys, str(snapshot), "-i", inv, "--check", "--diff")
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}, doc
