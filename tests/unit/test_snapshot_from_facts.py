"""Snapshots from recorded facts: whatever a host has, the snapshot's tasks plan nothing
on it, and hosts alike share a play."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from vnetctl.catalog import Catalog
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.expanders import Expansion, complete_snapshot
from vnetctl.inventory.loader import build_inventory
from vnetctl.snapshot.playbook import build_playbook, host_tasks, snapshot_modules, to_yaml

FACTS = Path(__file__).parent / "fixtures" / "facts"
CATALOG = Catalog()


def recorded(name: str) -> dict:
    data = json.loads((FACTS / name).read_text())
    data.setdefault("ovs", None)  # recorded before OVS facts existed: no Open vSwitch
    return data


# an OVS tunnel port without split horizon cannot be declared: the snapshot fixes it;
# a mesh device marked by an earlier version: the snapshot re-marks it; port security
# whose nftables table was broken by hand or written by an earlier version: the snapshot
# declares what its elements hold, and rebuilds the table; a promiscuous copy to a port
# no longer on its bridge: the snapshot's groups remove it; a running libvirt network
# that differs from its definition: the snapshot declares the definition
NOT_DECLARABLE = {
    "ovs_mesh_one_port_unprotected.json",
    "mesh_vni100_old_marker.json",
    "thiskernel_port_group_drifted.json",
    "thiskernel_port_group_v1.json",
    "vm_ports_bridge.json",  # recorded before the three settings: an earlier table
    "thiskernel_port_group_copies.json",
    "libvirt_networks_drifted.json",
}


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
    assert order.index("link") < order.index("route")  # routes use the devices and addresses


def test_routes_are_named_by_destination_table_and_metric():
    plays = build_playbook(CATALOG, {"h": host_tasks(CATALOG, recorded("ovs_nic_routed.json"))})
    names = [t["name"] for t in plays[0]["tasks"] if "route" in t]
    assert names == [
        "route 2001:db8:60::/48",
        "route ::/0 metric 300",
        "route default",
        "route 10.60.0.0/16 table 100 metric 20",
        "route 10.62.0.0/16 table 200",
    ]


def test_hosts_alike_share_a_play():
    mesh = recorded("mesh_vni100.json")
    tasks = {h: host_tasks(CATALOG, mesh) for h in ("b", "a")}
    tasks["c"] = host_tasks(CATALOG, recorded("plain_host.json"))
    plays = build_playbook(CATALOG, tasks)
    assert [p["hosts"] for p in plays] == ["a,b", "c"]
    mesh_task = next(t for t in plays[0]["tasks"] if "vxlan_mesh" in t)
    assert mesh_task["vxlan_mesh"]["vtep_interface"] == "eth0"
    text = to_yaml(plays, ["a", "b", "c"], {"d": "unreachable: refused"})
    assert text.startswith("# Snapshot of 3 hosts taken")  # d was left out
    assert "# NOT INCLUDED: d: unreachable: refused" in text
    assert yaml.safe_load(text) == plays


def snapshot_of(hosts: list[str], others: dict) -> tuple[dict, dict, list]:
    """The mesh fixture (local 10.98.0.1, peers .2 and .3) taken on `hosts`; `others`:
    the facts the other inventory hosts would give when asked."""
    inventory = build_inventory(
        {"all": {"hosts": {"k1": {"ansible_host": "10.98.0.1"}, "k2": {"ansible_host": "k2"},
                           "k3": {"ansible_host": "10.98.0.3"}}}},
        "inv.yml",
    )  # fmt: skip
    asked = []

    async def gather(wanted):
        asked.append(sorted(wanted))
        return {h: others.get(h, "unreachable: refused") for h in wanted}

    facts = {h: recorded("mesh_vni100.json") for h in hosts}
    notes: dict[str, str] = {}
    expansion = Expansion(RunContext(CATALOG, inventory), gather, unchecked=notes, known=facts)
    tasks = {h: host_tasks(CATALOG, f) for h, f in facts.items()}
    done = asyncio.run(complete_snapshot(expansion, tasks))
    members = {h: dict(t)["vxlan_mesh"]["members"] for h, t in done.items()}
    return members, notes, asked


def test_a_snapshot_of_part_of_a_fleet_keeps_the_meshs_members():
    """k1 alone (--limit k1) peers with 10.98.0.2 and .3: k3 by its inventory address,
    k2 (whose ansible_host is a name) by the address its own facts show."""
    k2 = {"addrs": [{"ifname": "eth0", "addr_info": [{"local": "10.98.0.2"}]}]}
    members, notes, asked = snapshot_of(["k1"], {"k2": k2})
    assert members == {"k1": "k1,k2,k3"}
    assert notes == {}
    assert asked == [["k2", "k3"]]  # the others, read-only, once


def test_a_peer_no_inventory_host_owns_is_said():
    members, notes, _ = snapshot_of(["k1"], {})
    assert members == {"k1": "k1,k3"}
    assert notes == {"k1": "mesh 'ov': peer 10.98.0.2 matches no inventory host that could be read"}
