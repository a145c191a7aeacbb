"""Fleet-level expansion of vxlan_mesh tasks, with a fake runner serving recorded facts."""

from __future__ import annotations

import asyncio
import copy
import json
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.expanders import Expansion
from vnetctl.fleet.expanders import expand as expand_fleet
from vnetctl.inventory.loader import build_inventory
from vnetctl.playbook.loader import parse_playbook
from vnetctl.playbook.render import plan_playbook

CATALOG = Catalog()
FACTS = json.loads((Path(__file__).parent / "fixtures/facts/underlay_only.json").read_text())


def host_facts(address: str) -> dict:
    """The recorded underlay host, re-addressed: eth0 carries `address`."""
    facts = copy.deepcopy(FACTS)
    for entry in facts["addrs"]:
        for addr in entry.get("addr_info", []):
            if addr.get("local") == "10.98.0.1":
                addr["local"] = address
    return facts


class FakeRunner:
    """Serves recorded facts as the runner's gather_facts would."""

    def __init__(self, facts):
        self.facts = facts
        self.gathered = []

    async def gather_facts(self, hosts):
        self.gathered.append(sorted(hosts))
        return {h: self.facts.get(h, "unreachable: refused") for h in hosts}


INVENTORY = {
    "all": {
        "children": {
            "kvm": {"hosts": {f"kvm{i}": {"ansible_host": f"10.98.0.{i}"} for i in range(1, 5)}}
        }
    }
}


def expand(tasks_yaml: str, limit=None, facts=None, preflight=True):
    inventory = build_inventory(INVENTORY, "inv.yml")
    book = parse_playbook([{"hosts": "kvm", "tasks": tasks_yaml}], "book.yml", CATALOG)
    plans = plan_playbook(book, inventory, CATALOG, limit=limit)
    runner = FakeRunner(facts or {f"kvm{i}": host_facts(f"10.98.0.{i}") for i in range(1, 5)})
    expansion = Expansion(RunContext(CATALOG, inventory), runner.gather_facts, preflight)
    plans = asyncio.run(expand_fleet(expansion, plans))
    return {h: [t.args for t in ts] for h, ts in plans[0].tasks.items()}, runner


MESH = [
    {"vxlan_mesh": {"name": "ov", "segments": [{"vni": 100, "bridge": "br-vx100", "mtu": 1450}]}}
]


def test_peers_are_every_other_member_even_outside_the_limit():
    args, runner = expand(MESH, limit="kvm2")
    assert list(args) == ["kvm2"]
    assert args["kvm2"][0]["local"] == "10.98.0.2"
    assert args["kvm2"][0]["peers"] == ["10.98.0.1", "10.98.0.3", "10.98.0.4"]
    assert "members" not in args["kvm2"][0]  # controller-only arguments are consumed


def test_members_pattern_shrinks_the_mesh():
    mesh = [{"vxlan_mesh": {**MESH[0]["vxlan_mesh"], "members": "kvm:!kvm4"}}]
    with pytest.raises(InputError, match="kvm4: runs mesh 'ov' but is not one of its"):
        expand(mesh)
    args, _ = expand(mesh, limit="kvm:!kvm4")
    assert args["kvm1"][0]["peers"] == ["10.98.0.2", "10.98.0.3"]


def test_vtep_from_an_interface_address_in_the_gathered_facts():
    mesh = [{"vxlan_mesh": {**MESH[0]["vxlan_mesh"], "vtep_interface": "eth0"}}]
    facts = {f"kvm{i}": host_facts(f"10.98.0.{10 + i}") for i in range(1, 5)}
    args, _ = expand(mesh, facts=facts)
    assert args["kvm1"][0]["local"] == "10.98.0.11"
    assert args["kvm1"][0]["peers"] == ["10.98.0.12", "10.98.0.13", "10.98.0.14"]


def test_two_meshes_sharing_a_vni_on_a_host_are_refused():
    other = {"vxlan_mesh": {"name": "other", "segments": [{"vni": 100, "bridge": "br-o"}]}}
    with pytest.raises(InputError, match="VNI 100 is in both mesh 'ov' and mesh 'other'"):
        expand([*MESH, other], preflight=False)


def test_preflight_refuses_with_host_and_numbers_before_any_change():
    mesh = [{"vxlan_mesh": {"name": "ov", "segments": [{"vni": 100, "bridge": "b", "mtu": 1480}]}}]
    with pytest.raises(InputError) as err:
        expand(mesh)
    text = str(err.value)
    assert (
        "host kvm1: mesh ov VNI 100: overlay mtu 1480 + 50 (VXLAN over IPv4) = 1530 "
        "exceeds the underlay eth0 mtu 1500" in text
    )
    assert text.count("exceeds the underlay") == 4


def test_an_earlier_link_task_raising_the_underlay_counts_in_the_preflight():
    tasks = [
        {"link": {"name": "eth0", "mtu": 9000}},
        {"vxlan_mesh": {"name": "ov", "segments": [{"vni": 100, "bridge": "b", "mtu": 8950}]}},
    ]
    args, _ = expand(tasks)
    assert args["kvm1"][1]["local"] == "10.98.0.1"


def test_a_vtep_on_a_bridge_an_earlier_task_makes_is_planned_with_its_address():
    """The host's model reads the addresses of a device the links do not list yet (the
    preflight adds those an earlier ovs_bridge task gives, playbooks/vxlan-mesh-ovs.yml):
    without them the mesh was refused, "VTEP address ... is not configured"."""
    vtep = "192.168.77.{{ inventory_hostname[-1] }}"
    tasks = [
        {"ovs_bridge": {"name": "br-up", "ports": [{"name": "eth1"}], "mtu": 9000,
                        "addresses": [vtep + "/24"]}},
        {"vxlan_mesh": {"name": "ov", "vtep": vtep,
                        "segments": [{"vni": 100, "bridge": "br-ov", "mtu": 8950}]}},
    ]  # fmt: skip
    facts = {f"kvm{i}": dict(host_facts(f"10.98.0.{i}"), ovs=None) for i in range(1, 5)}
    args, _ = expand(tasks, facts=facts)
    assert args["kvm1"][1]["local"] == "192.168.77.1"
