"""Traffic shaping on the controller (vnetctl/fleet/shaping): the checks before any host
is touched, with file:line, and live shaping written back as tasks; on recorded facts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from vnetctl.catalog import Catalog
from vnetctl.drift.classify import task_items
from vnetctl.errors import InputError
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.expanders import Expansion, complete_snapshot
from vnetctl.fleet.expanders import expand as expand_fleet
from vnetctl.inventory.loader import build_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook
from vnetctl.runner.results import Status, TaskResult
from vnetctl.snapshot.playbook import host_tasks

CATALOG = Catalog()
FACTS = Path(__file__).parent / "fixtures" / "facts"
INVENTORY = {"all": {"hosts": {"k1": {}, "k2": {}}}}
ROOT = Path(__file__).parents[2]


def recorded(name: str) -> dict:
    return json.loads((FACTS / name).read_text())


class FakeRunner:
    def __init__(self, facts: dict):
        self.facts, self.gathered = facts, []

    async def gather_facts(self, hosts):
        self.gathered.append(sorted(hosts))
        return {h: self.facts.get(h, "unreachable: refused") for h in hosts}


def preflight(tmp_path: Path, playbook: str, facts: dict | None = None, preflight=True):
    """The run's plans after the fleet expanders, or their InputError's text."""
    path = tmp_path / "book.yml"
    path.write_text(playbook)
    inventory = build_inventory(INVENTORY, "inv.yml")
    plans = plan_playbook(load_playbook(path, CATALOG), inventory, CATALOG)
    hosts = facts if facts is not None else {h: recorded("shaping_none.json") for h in ("k1", "k2")}
    runner = FakeRunner(hosts)
    expansion = Expansion(RunContext(CATALOG, inventory), runner.gather_facts, preflight)
    try:
        return asyncio.run(expand_fleet(expansion, plans)), runner
    except InputError as exc:
        return str(exc), runner


NIOC_PLAY = (ROOT / "playbooks" / "nioc.yml").read_text()


def test_the_nioc_playbook_passes_and_is_planned_once_per_host(tmp_path):
    plans, runner = preflight(tmp_path, NIOC_PLAY)
    assert not isinstance(plans, str), plans
    assert runner.gathered == [["k1", "k2"]]  # every host's facts, in one round
    assert [t.module for t in plans[0].tasks["k1"]] == ["traffic_shaping"]


BAD = [
    # (the task's arguments, one a line; the argument the error is at; what it says)
    ("name: eth1\nspeed: 100\nclasses:\n  - {name: a, reservation: 50, match: [{dscp: 8}]}\n"
     "  - {name: b, reservation: 30}", "classes",
     "reservations add up to 80 Mbit/s, more than 75 % of 100 Mbit/s (75 Mbit/s)"),
    ("name: eth1\nspeed: 100\nclasses: [{name: a, reservation: 30, limit: 20, match: [{dscp: 8}]}]",
     "classes", "class a: reservation 30 Mbit/s is above its limit 20 Mbit/s"),
    ("name: eth9\nspeed: 100", "name", "eth9 does not exist on this host"),
    ("name: eth1\nspeed: 100\nclasses: [{name: a, shares: 0, match: [{dscp: 8}]}]", "classes",
     "class a: shares 0 is not low, normal, high or 1..100"),
    ("name: eth1\nclasses: [{name: a, match: [{dscp: 8}]}]", "speed",
     "eth1 (a veth) reports no usable speed: declare speed (Mbit/s)"),
    ("name: eth1\nspeed: 100\nclasses:\n  - {name: a, match: [{dscp: 8}]}\n"
     "  - {name: b, match: [{dscp: 8}]}", "classes",
     "class b match 1 can never hit: class a match 1 catches its traffic first"),
]  # fmt: skip


@pytest.mark.parametrize(("arguments", "at", "says"), BAD, ids=[b[2][:40] for b in BAD])
def test_bad_input_is_refused_before_any_change_at_its_line(tmp_path, arguments, at, says):
    head = "- hosts: all\n  tasks:\n    - name: shaped\n      traffic_shaping:\n"
    body = "".join(f"        {row}\n" for row in arguments.split("\n"))
    lines = (head + body).splitlines()
    # the argument's own line; an argument not given: the task's line
    found = [n for n, row in enumerate(lines, 1) if row.strip().startswith(f"{at}:")]
    line = found[0] if found else 3
    text, _ = preflight(tmp_path, head + body)
    assert isinstance(text, str), "accepted"
    assert text.startswith("traffic shaping refused before any change")
    assert f"book.yml:{line}: play 'all' task 'shaped': hosts k1, k2: {says}" in text


def test_two_policies_for_one_device_are_refused_naming_both(tmp_path):
    book = (
        "- hosts: all\n  tasks:\n"
        "    - name: first\n      traffic_shaping: {name: eth1, speed: 100}\n"
        "- hosts: k2\n  tasks:\n"
        "    - name: second\n      traffic_shaping: {name: eth1, egress_limit: 50}\n"
    )
    text, _ = preflight(tmp_path, book)
    assert "book.yml:8: play 'k2' task 'second': host k2: eth1 has two shaping policies" in text
    assert "the one at " in text and "book.yml:4: play 'all' task 'first'" in text
    assert "host k1" not in text  # k1 has one policy for eth1


def test_a_device_an_earlier_task_makes_is_left_to_the_host(tmp_path):
    book = (
        "- hosts: all\n  tasks:\n"
        "    - linux_bridge: {name: br-vm, ports: [eth1]}\n"
        "    - traffic_shaping: {name: br-vm, speed: 100}\n"
    )
    plans, _ = preflight(tmp_path, book)
    assert not isinstance(plans, str), plans
    alone = "- hosts: all\n  tasks:\n    - traffic_shaping: {name: br-vm, speed: 100}\n"
    text, _ = preflight(tmp_path, alone)
    assert "br-vm does not exist on this host" in text


def test_an_unreachable_host_is_left_to_the_run(tmp_path):
    plans, _ = preflight(tmp_path, NIOC_PLAY, {"k1": recorded("shaping_none.json")})
    assert not isinstance(plans, str), plans


def test_without_preflight_no_facts_are_gathered(tmp_path):
    plans, runner = preflight(tmp_path, NIOC_PLAY, preflight=False)
    assert runner.gathered == [] and not isinstance(plans, str)


# ---- snapshots -------------------------------------------------------------------------


def snapshot(facts: dict) -> tuple[dict, dict]:
    inventory = build_inventory({"all": {"hosts": {h: {} for h in facts}}}, "inv.yml")
    notes: dict[str, str] = {}

    async def gather(hosts):
        return {h: facts[h] for h in hosts}

    expansion = Expansion(RunContext(CATALOG, inventory), gather, unchecked=notes, known=facts)
    tasks = {h: host_tasks(CATALOG, f) for h, f in facts.items()}
    done = asyncio.run(complete_snapshot(expansion, tasks))
    return {h: [p for m, p in ts if m == "traffic_shaping"] for h, ts in done.items()}, notes


def plans_nothing(params: dict, facts: dict) -> bool:
    return CATALOG.plan("traffic_shaping", params, facts)["changes"] == []


def test_live_shaping_is_written_back_as_tasks_that_plan_nothing():
    facts = {h: recorded(f) for h, f in (("a", "shaping_nioc.json"), ("b", "shaping_vm_port.json"))}
    tasks, notes = snapshot(facts)
    assert notes == {}
    (nioc,) = tasks["a"]
    assert nioc["name"] == "eth1" and nioc["speed"] == 1000 and nioc["leaf_qdisc"] == "pfifo"
    by_name = {c["name"]: c for c in nioc["classes"]}
    assert by_name["class-e092"]["limit"] == 400  # migration, named by its id
    assert by_name["class-e092"]["match"] == [{"protocol": "tcp", "dport": "49152-49215"}]
    assert by_name["class-a4ff"]["match"] == [{"protocol": "tcp", "dport": 22}, {"dscp": 48}]
    assert by_name["class-3c84"] == {
        "name": "class-3c84", "shares": 100, "id": 0x3C84, "reservation": 300,
        "match": [{"protocol": "tcp", "dport": 3260}, {"protocol": "tcp", "dport": 2049}],
    }  # fmt: skip
    assert nioc["classes"][-1]["name"] == "default" and by_name["default"]["shares"] == 100
    assert tasks["b"] == [{"name": "eth2", "leaf_qdisc": "pfifo", "egress_limit": 50,
                           "ingress_limit": 30}]  # fmt: skip
    assert all(plans_nothing(p, facts[h]) for h, ps in tasks.items() for p in ps)


def test_shaping_no_params_can_declare_is_left_out_and_said():
    tasks, notes = snapshot({"c": recorded("shaping_nioc_drifted.json"),
                             "d": recorded("shaping_none.json")})  # fmt: skip
    assert tasks == {"c": [], "d": []}
    assert notes == {"c": "shaping of eth1 is not declarable: left out"}


def test_facts_recorded_before_traffic_shaping_existed_snapshot_without_it():
    plain = dict(recorded("plain_host.json"), ovs=None)  # recorded before OVS facts too
    tasks, notes = snapshot({"e": plain})
    assert tasks == {"e": []} and notes == {}


# ---- drift: what the generic classification makes of shaping's changes ------------------


def drift_items(facts_file: str) -> set[tuple]:

    module, lib = CATALOG.load("traffic_shaping"), CATALOG.host_lib()
    plans = Path(__file__).parent / "fixtures" / "plans" / "traffic_shaping.yml"
    nioc = yaml.safe_load(plans.read_text())[0]["params"]  # playbooks/nioc.yml's numbers
    result = lib.execute(module, nioc, True, lib.Facts(recorded(facts_file)))
    task = TaskResult(host="h", play="p", index=0, task="t", module="traffic_shaping",
                      status=Status.CHANGED, changes=result["changes"])  # fmt: skip
    return {(i.kind.value, i.field, json.dumps(i.declared), json.dumps(i.actual))
            for i in task_items(task)}  # fmt: skip


def test_a_hand_made_filter_in_a_declared_class_is_an_extra_item():
    assert drift_items("shaping_nioc_extra_filter.json") == {
        ("extra", "classes.vm.filters", "null", '"pref 7 ip protocol udp dport 4789"')
    }


def test_a_changed_ceil_is_different_and_a_hand_made_class_extra():
    """In NIOC's words (limit, shares): `tc class change` with a ceil alone also puts
    tc's default burst, cburst and quantum back: drift sees each of them."""
    assert drift_items("shaping_nioc_drifted.json") == {
        ("different", "classes.migration.limit", "400", "300"),
        ("different", "classes.migration.burst", "70451", "1600"),
        ("different", "classes.migration.cburst", "2031636", "1537"),
        ("different", "classes.migration.shares", "50", "0.762939"),  # quantum 12500
        (
            "extra",
            "extra",
            "null",
            '"class 1:99 parent 1:1 rate 5 ceil 10 prio 0 quantum 62500 burst 1600 cburst 1600"',
        ),
        ("extra", "extra", "null", '"filter pref 5 ip protocol tcp dport 80 flowid 1:99"'),
    }


def test_a_vxlan_device_a_mesh_makes_counts_as_made_earlier():
    from vnetctl.fleet.shaping.preflight import _mentions  # noqa: PLC0415

    segments = {"name": "ov", "segments": [{"vni": 100, "bridge": "br-vx100"}]}
    assert _mentions(segments, "vxlan100") and _mentions(segments, "br-vx100")
    assert not _mentions(segments, "vxlan200") and not _mentions(segments, "eth1")


def test_a_member_of_a_shaped_ovs_bond_shaped_again_alone_is_refused(tmp_path):
    book = (
        "- hosts: all\n  tasks:\n"
        "    - name: bond\n      traffic_shaping: {name: uplink, ovs: true, speed: 100}\n"
        "    - name: member\n      traffic_shaping: {name: eth2, egress_limit: 50}\n"
    )
    bond = recorded("shaping_ovs_bond.json")
    text, _ = preflight(tmp_path, book, {"k1": bond, "k2": bond})
    assert isinstance(text, str), "accepted"
    assert "book.yml:6: play 'all' task 'member': host k1: eth2 has two shaping policies" in text
    assert "book.yml:4: play 'all' task 'bond'" in text and "Open vSwitch port uplink" in text
    alone = "- hosts: all\n  tasks:\n    - traffic_shaping: {name: uplink, ovs: true, speed: 100}\n"
    plans, _ = preflight(tmp_path, alone, {"k1": bond, "k2": bond})
    assert not isinstance(plans, str), plans
