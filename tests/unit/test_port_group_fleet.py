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
    return expand_plays([{"hosts": "kvm", "tasks": tasks}], host_vars)


def expand_plays(plays, host_vars):
    inventory = build_inventory({"all": {"children": {"kvm": {"hosts": host_vars}}}}, "inv.yml")
    book = parse_playbook(plays, "book.yml", CATALOG)
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
    assert "port group 'web': vlan differs between hosts (100 on kvm1; 101 on kvm2)" in text
    assert "(book.yml" in text and "tagged differs" not in text


def test_tagged_vlans_compare_in_one_form_and_unset_differs_from_none():
    with pytest.raises(InputError) as err:
        expand([GROUP], {"kvm1": {"web_vlan": 100, "web_tagged": "200,201"},
                         "kvm2": {"web_vlan": 100, "web_tagged": ""}})  # fmt: skip
    assert "tagged differs between hosts (200-201 on kvm1; none on kvm2)" in str(err.value)


def test_a_later_play_changing_a_group_on_the_same_hosts_is_no_disagreement():
    """Hosts are compared by their last declaration of the group; two plays that
    disagree for different hosts are refused, as one play would be."""
    first = {"hosts": "kvm", "tasks": [GROUP]}
    later = {"hosts": "kvm", "tasks": [{"port_group": {**GROUP["port_group"], "vlan": 300}}]}
    same = {"web_vlan": 100, "web_tagged": ""}
    plans = expand_plays([first, later], {"kvm1": same, "kvm2": same})
    assert [t.args["vlan"] for ts in plans[1].tasks.values() for t in ts] == [300, 300]
    with pytest.raises(InputError) as err:
        expand_plays([first, {**later, "hosts": "kvm2"}], {"kvm1": same, "kvm2": same})
    assert "vlan differs between hosts (100 on kvm1; 300 on kvm2)" in str(err.value)


def test_what_a_template_made_secret_is_not_shown():
    """A group named from a secret variable (a name ending in _token is one)."""
    group = {"port_group": {"name": "{{ web_token }}", "bridge": "br-vm", "vlan": "{{ v }}"}}
    with pytest.raises(InputError) as err:
        expand([group], {"kvm1": {"v": 10, "web_token": "hunter22"},
                         "kvm2": {"v": 11, "web_token": "hunter22"}})  # fmt: skip
    assert "hunter22" not in str(err.value) and "port group '***'" in str(err.value)


SECURE = {"name": "db", "bridge": "br-vm", "ports": ["vnet*"]}


def test_security_is_compared_as_it_takes_effect_unset_is_reject():
    """port_security: true is forged transmits and MAC changes rejected, and unset is
    reject: three ways of writing one policy pass; promiscuous accept on one host is
    refused, on both dataplanes."""
    tasks = [{"port_group": {**SECURE, "port_security": "{{ ps }}"}}]
    plans = expand(tasks, {"kvm1": {"ps": True}, "kvm2": {"ps": True}})
    assert len(plans[0].tasks) == 2
    spelled = {"port_group": {**SECURE, "forged_transmits": "reject", "mac_changes": "reject"}}
    shorthand = {"port_group": {**SECURE, "port_security": True}}
    unset = {"port_group": dict(SECURE)}
    for one, other in ((spelled, shorthand), (unset, spelled)):
        plays = [{"hosts": "kvm1", "tasks": [one]}, {"hosts": "kvm2", "tasks": [other]}]
        plans = expand_plays(plays, {"kvm1": {}, "kvm2": {}})
        assert len(plans) == 2
    for module in ("port_group", "ovs_port_group"):
        lb = {module: {**SECURE, "promiscuous": "{{ promiscuous }}"}}
        with pytest.raises(InputError) as err:
            expand([lb], {"kvm1": {"promiscuous": "accept"}, "kvm2": {"promiscuous": "reject"}})
        assert "promiscuous differs between hosts (accept on kvm1; reject on kvm2)" in str(
            err.value
        )
    with pytest.raises(InputError) as err:
        expand([{"ovs_port_group": {**SECURE, "port_security": "{{ ps }}"}}],
               {"kvm1": {"ps": True}, "kvm2": {"ps": False}})  # fmt: skip
    text = str(err.value)
    assert "forged_transmits differs between hosts (accept on kvm2; reject on kvm1)" in text
    assert "mac_changes differs" in text
