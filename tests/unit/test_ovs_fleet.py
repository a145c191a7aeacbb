"""Port groups are one policy across the fleet: a play that declares one group differently
on two hosts is refused before any host is touched."""

from __future__ import annotations

import asyncio

import pytest

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError, Location
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.expanders import Expansion, registered
from vnetctl.fleet.port_groups import OVS
from vnetctl.playbook.model import Play
from vnetctl.playbook.render import HostTask, PlayPlan


def plans(vlans: dict[str, int]) -> list[PlayPlan]:
    where = Location("site.yml", 7)
    tasks = {
        h: [HostTask(0, "web", "ovs_port_group", {"name": "web", "bridge": "br-vm", "vlan": v},
                     where)]
        for h, v in vlans.items()
    }  # fmt: skip
    return [PlayPlan(Play(hosts=list(vlans), name="p", where=where), list(vlans), tasks)]


def check(found: list[PlayPlan]) -> list[PlayPlan]:
    run = RunContext(Catalog(), inventory=None)
    return asyncio.run(OVS.check(Expansion(run=run, gather=None), found))


def test_a_group_alike_on_every_host_passes_unchanged():
    alike = plans({"h1": 10, "h2": 10})
    assert check(alike) is alike


def test_a_group_whose_vlan_differs_between_hosts_is_refused_with_hosts_values_and_place():
    with pytest.raises(InputError) as err:
        check(plans({"h1": 10, "h2": 10, "h3": 11}))
    text = str(err.value)
    assert "port group 'web' on br-vm: vlan differs between hosts" in text
    assert "10 on h1, h2; 11 on h3" in text and "site.yml:7" in text


def test_the_check_is_registered_for_ovs_port_group():
    assert any(e.module == "ovs_port_group" for e in registered())
