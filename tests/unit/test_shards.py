"""`--shard K/N`: a stable assignment of hosts to shards by a hash of the name, and the
fleet planned whole before it is cut, so port groups are compared fleet-wide
(vnetctl/fleet/shards.py)."""

from __future__ import annotations

import argparse

import pytest

from vnetctl.catalog import Catalog
from vnetctl.cli.main import main
from vnetctl.errors import InputError
from vnetctl.fleet.shards import Shard, parse_shard, restrict, shard_of
from vnetctl.inventory.loader import build_inventory
from vnetctl.playbook.loader import parse_playbook
from vnetctl.playbook.render import plan_playbook

CATALOG = Catalog()
HOSTS = [f"kvm{n}" for n in range(1, 201)]


def test_the_assignment_is_the_documented_hash_and_never_moves_other_hosts():
    # sha256("kvm1")[:8] as a big-endian integer, mod N, plus one: pinned, since every
    # controller of a fleet (and every version of vnetctl) must agree on it
    assert [shard_of("kvm1", n) for n in (1, 2, 3, 4)] == [1, 2, 2, 2]
    before = {h: shard_of(h, 4) for h in HOSTS}
    after = {h: shard_of(h, 4) for h in [*HOSTS, "new-host"]}
    assert {h: after[h] for h in HOSTS} == before
    sizes = [sum(1 for s in before.values() if s == k) for k in (1, 2, 3, 4)]
    assert sum(sizes) == 200 and min(sizes) >= 30, sizes  # every shard has its share


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "1/0", "-1/4", "1/10001"])
def test_a_bad_shard_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected K/N"):
        parse_shard(text)


def test_every_host_is_in_exactly_one_shard():
    shards = [Shard(k, 4) for k in (1, 2, 3, 4)]
    assert all(sum(s.holds(h) for s in shards) == 1 for h in HOSTS)
    assert str(parse_shard("3/4")) == "3/4"


GROUP = {"port_group": {"name": "web", "bridge": "br-vm", "ports": ["vnet*"],
                        "vlan": "{{ web_vlan }}"}}  # fmt: skip


def plans_for(host_vars: dict):
    inventory = build_inventory({"all": {"children": {"kvm": {"hosts": host_vars}}}}, "inv.yml")
    book = parse_playbook([{"hosts": "kvm", "tasks": [GROUP]}], "book.yml", CATALOG)
    return plan_playbook(book, inventory, CATALOG)


def test_a_shard_gets_only_its_hosts_tasks():
    plans = plans_for({h: {"web_vlan": 100} for h in HOSTS[:20]})
    cut = [restrict(plans, Shard(k, 4), CATALOG)[0] for k in (1, 2, 3, 4)]
    assert sorted(h for plan in cut for h in plan.hosts) == sorted(HOSTS[:20])
    for k, plan in enumerate(cut, 1):
        assert set(plan.tasks) == set(plan.hosts) == {h for h in HOSTS[:20] if shard_of(h, 4) == k}
    assert plans[0].hosts == HOSTS[:20]  # the fleet's plans are left whole


def test_a_port_group_differing_in_another_shard_refuses_every_shard():
    host_vars = {h: {"web_vlan": 100} for h in HOSTS[:20]}
    odd = next(h for h in HOSTS[:20] if shard_of(h, 4) != 1)
    host_vars[odd]["web_vlan"] = 101
    with pytest.raises(InputError, match=f"101 on {odd}"):
        restrict(plans_for(host_vars), Shard(1, 4), CATALOG)


def test_the_option_is_parsed_and_a_bad_one_is_a_usage_error(capsys):
    assert main(["run", "site.yml", "-i", "inv.yml", "--shard", "5/4"]) == 1
    assert "expected K/N" in capsys.readouterr().err
