"""Mesh members beyond --limit and declared VTEP interfaces, with recorded facts."""

from __future__ import annotations

import asyncio
import copy
import json
import textwrap
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.expanders import Expansion, hosts_to_reach
from vnetctl.fleet.expanders import expand as expand_fleet
from vnetctl.inventory.loader import build_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook

CATALOG = Catalog()
FACTS = json.loads((Path(__file__).parent / "fixtures/facts/underlay_only.json").read_text())
INVENTORY = {
    "all": {
        "children": {
            "kvm": {"hosts": {f"kvm{i}": {"ansible_host": f"10.98.0.{i}"} for i in range(1, 5)}},
            "edge": {"hosts": {"edge1": {"ansible_host": "10.98.0.9"}}},
        }
    }
}
BOOK = """\
- hosts: kvm
  tasks:
    - name: overlay
      vxlan_mesh:
        name: ov
        {vtep}
        segments: [{{vni: 100, bridge: br-vx100, mtu: 1400}}]
"""


def underlay(address: str, *, rename: str | None = None, drop_address: bool = False) -> dict:
    """The recorded host with eth0 at `address`; eth0 renamed or without address."""
    facts = copy.deepcopy(FACTS)
    for entry in [*facts["links"], *facts["addrs"]]:
        if entry.get("ifname") == "eth0" and rename:
            entry["ifname"] = rename
    for entry in facts["addrs"]:
        for addr in entry.get("addr_info", []):
            if addr.get("local") == "10.98.0.1":
                addr["local"] = address
        if drop_address and entry.get("ifname") == "eth0":
            entry["addr_info"] = []
    return facts


class FakeRunner:
    def __init__(self, facts: dict):
        self.facts = facts

    async def gather_facts(self, hosts):
        return {h: self.facts.get(h, "unreachable: connection refused") for h in hosts}


def expand(tmp_path, vtep: str, facts: dict, limit=None, unchecked=None, data=INVENTORY):
    book = tmp_path / "book.yml"
    book.write_text(textwrap.dedent(BOOK.format(vtep=vtep)))
    inventory = build_inventory(data, "inv.yml")
    plans = plan_playbook(load_playbook(book, CATALOG), inventory, CATALOG, limit=limit)

    run = RunContext(CATALOG, inventory)
    expansion = Expansion(run, FakeRunner(facts).gather_facts, False, unchecked)
    return asyncio.run(expand_fleet(expansion, plans)), run


def all_facts(**special) -> dict:
    facts = {f"kvm{i}": underlay(f"10.98.0.{10 + i}") for i in range(1, 5)}
    facts.update(special)
    return facts


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("kvm2", ["kvm2", "kvm1", "kvm3", "kvm4"]),
        ("kvm", ["kvm1", "kvm2", "kvm3", "kvm4"]),
        ("all:!kvm1", ["kvm2", "kvm3", "kvm4", "kvm1"]),
    ],
)
def test_the_run_reaches_every_member_whatever_the_limit(tmp_path, limit, expected):
    plans, run = expand(tmp_path, "vtep_interface: eth0", all_facts(), limit=limit)
    assert hosts_to_reach(run, plans) == expected
    task = plans[0].tasks[expected[0]][0]
    assert task.args["local"] == f"10.98.0.{10 + int(expected[0][-1])}"
    assert len(task.args["peers"]) == 3


def test_a_declared_interface_missing_on_a_member_is_an_error_not_a_fallback(tmp_path):
    facts = all_facts(kvm3=underlay("10.98.0.13", rename="ens3"))
    with pytest.raises(InputError) as info:
        expand(tmp_path, "vtep_interface: eth0", facts, limit="kvm1")  # kvm3 outside it
    message = str(info.value).replace(str(tmp_path) + "/", "")
    assert message == (
        "VXLAN mesh refused before any change:\n"
        "  host kvm3: task 'overlay' (book.yml:6): vtep_interface 'eth0' does not exist "
        "on this host"
    )


def test_a_declared_interface_without_address_is_an_error(tmp_path):
    facts = all_facts(kvm2=underlay("10.98.0.12", drop_address=True))
    with pytest.raises(InputError, match=r"host kvm2: task 'overlay' \(.*book.yml:6\): "):
        expand(tmp_path, "vtep_interface: eth0", facts)
    with pytest.raises(InputError, match="vtep_interface 'eth0' has no global address"):
        expand(tmp_path, "vtep_interface: eth0", facts)


def test_management_address_only_when_nothing_is_declared(tmp_path):
    plans, _ = expand(tmp_path, "", all_facts())
    assert plans[0].tasks["kvm1"][0].args["local"] == "10.98.0.1"
    plans, _ = expand(tmp_path, "vtep: 192.0.2.{{ inventory_hostname[-1] }}", all_facts())
    assert plans[0].tasks["kvm1"][0].args["peers"] == ["192.0.2.2", "192.0.2.3", "192.0.2.4"]


def test_drift_leaves_out_a_mesh_with_an_unreachable_member_but_not_a_missing_interface(
    tmp_path,
):
    facts = all_facts()
    del facts["kvm4"]  # unreachable
    unchecked: dict[str, str] = {}
    plans, _ = expand(tmp_path, "vtep_interface: eth0", facts, unchecked=unchecked)
    assert plans[0].tasks["kvm1"] == []
    assert unchecked["kvm1"] == "mesh 'ov' not checked: peers unknown: kvm4 unreachable"

    facts["kvm2"] = underlay("10.98.0.12", rename="ens3")
    with pytest.raises(InputError, match="host kvm2: .*vtep_interface 'eth0' does not exist"):
        expand(tmp_path, "vtep_interface: eth0", facts, unchecked={})


def test_a_member_outside_the_limit_that_cannot_be_rendered_is_named_and_redacted(tmp_path):
    data = copy.deepcopy(INVENTORY)
    data["all"]["children"]["kvm"]["hosts"]["kvm4"]["nic_token"] = ["S3cretPassw0rd"]
    data["all"]["children"]["kvm"]["vars"] = {"nic_token": "eth0"}
    with pytest.raises(InputError) as info:
        expand(tmp_path, 'vtep_interface: "{{ nic_token }}"', all_facts(), "kvm1", data=data)
    message = str(info.value)
    assert "host kvm4: argument 'vtep_interface' of module 'vxlan_mesh': expected a" in message
    assert "got ['***'] (list)" in message
    assert "S3cretPassw0rd" not in message
