"""traffic_shaping's quanta and bursts (vnet_tc_policy.sizing()), planned on facts recorded
on the lab (shaping_nioc.json: playbooks/nioc.yml applied, read back by tc): a class's
numbers come from its own declaration and the link, so changing one class changes only
that class; bursts cover a GSO packet and a round of the others; a burst tc rounded on
the way back plans nothing, one changed by hand is drift; the state says why."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from vnetctl.catalog import Catalog

CATALOG = Catalog()
lib = CATALOG.host_lib()
module = CATALOG.load("traffic_shaping")
FIXTURES = Path(__file__).parent / "fixtures"
NIOC = yaml.safe_load((FIXTURES / "plans" / "traffic_shaping.yml").read_text())[0]["params"]


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / "facts" / name).read_text())


def plan(params: dict, facts: dict) -> dict:
    return lib.plan(module, params, lib.Facts(facts))


def with_class(name: str, **changed) -> dict:
    params = copy.deepcopy(NIOC)
    for cls in params["classes"]:
        if cls["name"] == name:
            cls.update(changed)
    return params


def test_changing_one_class_changes_only_that_class():
    """Before, quanta scaled from the smallest share: a class's shares moved every
    other class's quantum."""
    facts = recorded("shaping_nioc.json")
    ids = {"management": "1:a4ff", "migration": "1:e092", "storage": "1:3c84", "vm": "1:2"}
    for name, change in (
        ("management", {"shares": 1}),
        ("storage", {"shares": 30}),
        ("migration", {"limit": 100}),
        ("storage", {"reservation": 200}),
        ("vm", {"shares": "low"}),
    ):
        planned = plan(with_class(name, **change), facts)
        touched = {c["field"].split(".")[1] for c in planned["changes"]}
        assert touched == {name}, (name, change, planned["changes"])
        (step,) = [" ".join(s) for s in planned["steps"]]
        assert step.startswith(f"tc class change dev eth1 parent 1:1 classid {ids[name]} htb")


def test_quantum_is_shares_times_a_quarter_gso_packet_and_bursts_cover_a_round():
    facts = recorded("shaping_none.json")
    params = {"name": "eth1", "speed": 100, "classes": [
        {"name": "capped", "limit": 30, "match": [{"dscp": 1}]},
        {"name": "small", "shares": 1, "match": [{"dscp": 2}]},
        {"name": "big", "shares": 100, "reservation": 40, "match": [{"dscp": 3}]}]}  # fmt: skip
    state = plan(params, facts)["desired"]
    classes, sizing = state["classes"], state["sizing"]
    assert sizing["quantum_per_share"] == 65536 // 4 and sizing["packet"] == 65536
    # three other classes (the implicit default one too) at shares 100, 1638400 B each,
    # at 100 Mbit/s: 393 ms
    assert sizing["burst_time_us"] == 393216
    assert classes["small"]["shares"] == 1 and classes["big"]["shares"] == 100
    assert classes["big"]["reservation"] == 40 and classes["capped"]["limit"] == 30
    assert classes["small"]["reservation"] is None and classes["small"]["limit"] is None
    steps = [" ".join(s) for s in plan(params, facts)["steps"]]
    assert sum(" quantum 16384 " in s for s in steps) == 1  # small: shares 1 x 16 KiB
    assert sum(" quantum 1638400 " in s for s in steps) == 1  # big
    assert classes["capped"]["cburst"] == 30000 * 125 * 393216 // 10**6 + 65536
    assert classes["big"]["burst"] == 40000 * 125 * 393216 // 10**6 + 65536
    assert state["burst"] == state["cburst"] == 100000 * 125 * 393216 // 10**6 + 65536
    assert "quantum = shares x 16384 B" in sizing["why"]
    assert "+ 65536 B (the largest packet the device is handed)" in sizing["why"]


def test_one_class_alone_waits_for_no_round():
    state = plan({"name": "eth2", "egress_limit": 50}, recorded("shaping_none.json"))["desired"]
    assert state["sizing"]["burst_time_us"] == 10000
    assert state["classes"]["default"]["cburst"] == 50000 * 125 // 100 + 65536


def test_a_burst_tc_rounded_plans_nothing_and_one_set_by_hand_is_a_change():
    facts = recorded("shaping_nioc.json")
    rounded = copy.deepcopy(facts)
    cls = rounded["tc"]["classes"]["eth1"]["1:3c84"]
    assert cls["burst"] != 1540111  # tc read back 1540050 for the 1540111 planned
    assert plan(NIOC, rounded)["changes"] == []
    cls["burst"] = 64 * 1024  # `tc class change ... burst 64k` by hand
    planned = plan(NIOC, rounded)
    assert [(c["field"], c["before"], c["after"]) for c in planned["changes"]] == [
        ("classes.storage.burst", 65536, 1540111)
    ]
    assert [" ".join(s) for s in planned["steps"]] == [
        "tc class change dev eth1 parent 1:1 classid 1:3c84 htb rate 300mbit ceil 1000mbit"
        " prio 0 quantum 1638400 burst 1540111 cburst 4980786"
    ]


def test_a_jumbo_frame_device_gets_larger_quanta():
    facts = copy.deepcopy(recorded("shaping_none.json"))
    for link in facts["links"]:
        if link["ifname"] == "eth1":
            link["mtu"] = 9000
    steps = plan({"name": "eth1", "speed": 1000, "classes": [
        {"name": "a", "shares": 10, "match": [{"dscp": 1}]}]}, facts)["steps"]  # fmt: skip
    assert any(f" quantum {10 * 2 * 9014} " in " ".join(s) for s in steps)
