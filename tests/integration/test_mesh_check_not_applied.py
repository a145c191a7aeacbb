"""`mesh check` of a mesh that is not applied says so, per member, and exits 2: there
is nothing to send traffic through, which is not "every pair reachable"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")


def test_a_mesh_applied_nowhere_is_not_applied_exit_2(fresh_hosts, capsys):
    inv = str(fresh_hosts.inventory_path)
    assert main(["mesh", "check", MESH, "-i", inv]) == 2
    out = capsys.readouterr().out
    for host in fresh_hosts.host_names:
        assert f"not applied: {host}: VNI 100 (no bridge br-vx100), VNI 200" in out
    assert "the mesh is not applied on 3 members: apply it with `vnetctl run" in out
    assert "pairs reachable" not in out
    assert main(["mesh", "check", MESH, "-i", inv, "--format", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["pairs"] == [] and doc["not_applied"] == {
        h: [100, 200] for h in fresh_hosts.host_names
    }


def test_a_member_without_the_mesh_is_named_and_the_others_probed(fresh_hosts, capsys):
    inv = str(fresh_hosts.inventory_path)
    assert main(["run", MESH, "-i", inv]) == 0
    capsys.readouterr()
    assert main(["mesh", "check", MESH, "-i", inv]) == 0
    assert "12 of 12 pairs reachable" in capsys.readouterr().out
    h1, _, h3 = fresh_hosts.host_names
    host_exec(fresh_hosts.name, h3, ["ip", "link", "del", "br-vx200"], check=True)
    assert main(["mesh", "check", MESH, "-i", inv]) == 2
    out = capsys.readouterr().out
    assert f"not applied: {h3}: VNI 200 (no bridge br-vx200)" in out
    assert "8 of 8 pairs reachable" in out  # VNI 100 on all three, VNI 200 between h1, h2
    assert main(["mesh", "check", MESH, "-i", inv, "--limit", h1]) == 0
    assert "no pair to probe" in capsys.readouterr().out
