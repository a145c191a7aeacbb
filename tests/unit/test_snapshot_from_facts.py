"""Snapshots from recorded facts: whatever a host has, the snapshot's tasks plan nothing
on it, and hosts alike share a play."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vnetctl.catalog import Catalog
from vnetctl.snapshot.playbook import build_playbook, host_tasks, snapshot_modules, to_yaml

FACTS = Path(__file__).parent / "fixtures" / "facts"
CATALOG = Catalog()


def recorded(name: str) -> dict:
    data = json.loads((FACTS / name).read_text())
    data.setdefault("ovs", None)  # recorded before OVS facts existed: no Open vSwitch
    return data


# an OVS tunnel port without split horizon cannot be declared: the snapshot fixes it;
# a mesh device marked by an earlier version: the snapshot re-marks it
NOT_DECLARABLE = {"ovs_mesh_one_port_unprotected.json", "mesh_vni100_old_marker.json"}


@pytest.mark.parametrize(
    "facts_file", sorted(p.name for p in FACTS.glob("*.json") if p.name not in NOT_DECLARABLE)
)
def test_snapshot_tasks_plan_nothing_on_the_host_they_describe(facts_file):
    data = recorded(facts_file)
    lib = CATALOG.host_lib()
    for module_name, params in host_tasks(CATALOG, data):
        module = CATALOG.load(module_name)
        spec_params = lib.normalize_params(module.ARGUMENT_SPEC, dict(params))
        facts = lib.Facts(data)
        if module_name == "vxlan_mesh":  # the controller fills these from the fleet
            segment = next(iter(module.read(spec_params, facts)["segments"].values()))
            spec_params.update(local=segment["local"], peers=segment["peers"])
        current = module.read(spec_params, facts)
        changes = lib.diff_fields(current, module.desired(spec_params, current, facts))
        assert changes == [], (module_name, params)


def test_makers_come_before_users():
    order = snapshot_modules(CATALOG)
    assert order.index("vxlan_mesh") < order.index("linux_bridge") < order.index("link")


def test_hosts_alike_share_a_play_and_meshes_name_their_members():
    mesh = recorded("mesh_vni100.json")
    tasks = {h: host_tasks(CATALOG, mesh) for h in ("b", "a")}
    tasks["c"] = host_tasks(CATALOG, recorded("plain_host.json"))
    plays = build_playbook(CATALOG, tasks)
    assert [p["hosts"] for p in plays] == ["a,b", "c"]
    mesh_task = next(t for t in plays[0]["tasks"] if "vxlan_mesh" in t)
    assert mesh_task["vxlan_mesh"]["members"] == "a,b"
    assert mesh_task["vxlan_mesh"]["vtep_interface"] == "eth0"
    text = to_yaml(plays, ["a", "b", "c", "d"], {"d": "unreachable: refused"})
    assert "# NOT INCLUDED: d: unreachable: refused" in text
    assert yaml.safe_load(text) == plays
