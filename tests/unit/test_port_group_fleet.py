"""A port group means one VLAN on every host: checked on the controller before any
host is touched (vnetctl/fleet/port_groups)."""

from __future__ import annotations

import asyncio

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


def expand(tasks, host_vars):
    inventory = build_inventory({"all": {"children": {"kvm": {"hosts": host_vars}}}}, "inv.yml")
    book = parse_playbook([{"hosts": "kvm", "tasks": tasks}], "book.yml", CATALOG)
    plans = plan_playbook(book, inventory, CATALOG)

    async def no_facts(hosts):
        raise AssertionError("the VLAN check needs no facts")

    return asyncio.run(expand_fleet(Expansion(RunContext(CATALOG, inventory), no_facts), plans))


GROUP = {"port_group": {"name": "web", "bridge": "br-vm", "ports": ["vnet*"],
                        "vlan": "{{ web_vlan }}", "tagged": "{{ web_tagged }}"}}  # fmt: skip


def test_one_vlan_everywhere_passes_unchanged():
    same = {"web_vlan": 100, "web_tagged": "200,201"}
    plans = expand([GROUP], {"kvm1": same, "kvm2": {"web_vlan": 100, "web_tagged": "200-201"}})
    assert [t.args["vlan"] for ts in plans[0].tasks.values() for t in ts] == [100, 100]


def test_a_group_with_two_vlans_is_refused_naming_hosts_and_lines():
    with pytest.raises(InputError) as err:
        expand([GROUP], {"kvm1": {"web_vlan": 100, "web_tagged": ""},
                         "kvm2": {"web_vlan": 101, "web_tagged": ""}})  # fmt: skip
    text = str(err.value)
    assert "port group 'web' has different VLANs on different hosts" in text
    assert "vlan 100 tagged - on kvm1 (book.yml" in text and "vlan 101 tagged - on kvm2" in text


def test_groups_without_vlans_are_not_compared():
    plain = {"port_group": {"name": "web", "bridge": "br-vm", "isolated": "{{ iso }}"}}
    plans = expand([plain], {"kvm1": {"iso": True}, "kvm2": {"iso": False}})
    assert len(plans[0].tasks) == 2
