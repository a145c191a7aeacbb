"""traffic_shaping's rates, quanta and bursts (vnet_tc_policy.sizing(), vnet_tc_guarantees),
planned on facts recorded on the lab (shaping_nioc.json: playbooks/nioc.yml applied, read
back by tc): a class's rate is its reservation and its shares of what the reservations
leave (kbit_per_share), so one class's new shares move every rate in tc but only that
class's words; quanta and bursts come from its own declaration and the link; bursts
cover a GSO packet and a round of the others; a burst tc rounded on the way back plans
nothing, one changed by hand is drift, and so is a rate; the state says why."""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import yaml

from vnetctl.catalog import Catalog

CATALOG = Catalog()
lib = CATALOG.host_lib()
module = CATALOG.load("traffic_shaping")
FIXTURES = Path(__file__).parent / "fixtures"
tc_numbers = sys.modules["vnet_tc_guarantees"].tc_numbers
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
    other class's quantum. Now a class's shares or reservation move kbit_per_share, so
    every class's rate in tc (the commands say so), and only that class's words."""
    facts = recorded("shaping_nioc.json")
    ids = {"management": "1:a4ff", "migration": "1:e092", "storage": "1:3c84", "vm": "1:2"}
    for name, change, unit in (
        ("management", {"shares": 1}, True),
        ("storage", {"shares": 30}, True),
        ("migration", {"limit": 100}, False),
        ("storage", {"reservation": 200}, True),
        ("vm", {"shares": "low"}, True),
    ):
        planned = plan(with_class(name, **change), facts)
        fields = [c["field"] for c in planned["changes"]]
        touched = {f.split(".")[1] for f in fields if f.startswith("classes.")}
        assert touched == {name}, (name, change, fields)
        assert ("sizing.kbit_per_share" in fields) is unit, fields
        steps = [" ".join(s) for s in planned["steps"]]
        assert all(s.startswith("tc class change dev eth1 parent 1:1 classid 1:") for s in steps)
        moved = {s.split()[8] for s in steps}
        assert moved == (set(ids.values()) if unit else {ids[name]}), (name, steps)


def test_rates_are_reservations_and_shares_of_what_reservations_leave():
    """Before, a class without reservation had a floor of speed/1000 and everything else
    was lent by quanta: shares 100:1 measured 4:1 to 70:1 on the lab (TCP Small Queues
    empty the big class's queue many times a round)."""
    params = {"name": "eth1", "speed": 100, "classes": [
        {"name": "small", "shares": 1, "match": [{"dscp": 2}]},
        {"name": "large", "shares": 100, "match": [{"dscp": 3}]},
        {"name": "held", "shares": 1, "reservation": 20, "limit": 30,
         "match": [{"dscp": 4}]}]}  # fmt: skip
    planned = plan(params, recorded("shaping_none.json"))
    # (100000 - 20000) kbit/s / (1 + 100 + 1 + 50, the implicit default) shares
    assert planned["desired"]["sizing"]["kbit_per_share"] == 80000 // 152 == 526
    steps = [" ".join(s).split() for s in planned["steps"]]
    rates = {s[8]: s[11] for s in steps if s[1:3] == ["class", "add"] and s[6] == "1:1"}
    ids = {c: planned["desired"]["classes"][c]["id"] for c in ("small", "large", "held", "default")}
    assert rates == {ids["small"]: "526kbit", ids["large"]: "52600kbit",
                     ids["held"]: "20526kbit", ids["default"]: "26300kbit"}  # fmt: skip
    words = {n: {k: c[k] for k in ("reservation", "limit", "shares", "rate")}
             for n, c in planned["desired"]["classes"].items()}  # fmt: skip
    assert words["held"] == {"reservation": 20, "limit": 30, "shares": 1, "rate": None}
    assert words["small"] == {"reservation": None, "limit": None, "shares": 1, "rate": None}


def test_the_words_read_back_are_the_words_declared():
    """Reservations are read back from tc's rates alone (the unit the unreserved classes
    give): every declaration reads back as itself, so it plans nothing the second time."""
    policy = sys.modules["vnet_tc_policy"]
    sizes = {"frame": 1514, "packet": 65536}
    for speed in (10, 100, 1000, 10000):
        for shares in ((1, 100), (3, 1, 1), (100, 99, 2, 1), (25, 75, 1, 50, 7)):
            classes = [{"name": f"c{i}", "shares": s, "match": [{"dscp": i + 1}],
                        **({"reservation": speed // 10 * (i % 2)} if i % 2 else {})}
                       for i, s in enumerate(shares)]  # fmt: skip
            state = policy.policy(classes, speed * 1000, sizes, "pfifo", None)
            rows = {n: {"rate": policy.kbit(r["rate"]), "ceil": policy.kbit(r["ceil"]),
                        "quantum": r["quantum"]}
                    for n, r in tc_numbers(state).items()}  # fmt: skip
            model = dict(state["sizing"])
            read = policy.nioc(rows, speed * 1000, model)
            for name, cls in state["classes"].items():
                assert cls["rate"] is None, (speed, shares, name, cls)
                assert {k: cls[k] for k in read[name]} == read[name], (speed, shares, name)
            assert model["kbit_per_share"] == state["sizing"]["kbit_per_share"]


def test_a_rate_set_by_hand_is_drift_and_one_class_change_puts_it_back():
    facts = copy.deepcopy(recorded("shaping_nioc.json"))
    facts["tc"]["classes"]["eth1"]["1:2"]["rate"] = 100000  # `tc class change ... rate 100mbit`
    planned = plan(NIOC, facts)
    assert [(c["field"], c["before"], c["after"]) for c in planned["changes"]] == [
        ("classes.vm.rate", 100, None)
    ]
    assert [" ".join(s) for s in planned["steps"]] == [
        "tc class change dev eth1 parent 1:1 classid 1:2 htb rate 216600kbit ceil 1000mbit"
        " prio 0 quantum 1638400 burst 4980786 cburst 4980786"
    ]


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
    assert classes["capped"]["burst"] == classes["capped"]["cburst"]  # both at its ceil
    assert classes["big"]["burst"] == 100000 * 125 * 393216 // 10**6 + 65536
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
    assert cls["burst"] != 4980786  # tc read back 4980625 for the 4980786 planned
    assert plan(NIOC, rounded)["changes"] == []
    cls["burst"] = 64 * 1024  # `tc class change ... burst 64k` by hand
    planned = plan(NIOC, rounded)
    assert [(c["field"], c["before"], c["after"]) for c in planned["changes"]] == [
        ("classes.storage.burst", 65536, 4980786)
    ]
    assert [" ".join(s) for s in planned["steps"]] == [
        "tc class change dev eth1 parent 1:1 classid 1:3c84 htb rate 516600kbit ceil 1000mbit"
        " prio 0 quantum 1638400 burst 4980786 cburst 4980786"
    ]


def test_a_jumbo_frame_device_gets_larger_quanta():
    facts = copy.deepcopy(recorded("shaping_none.json"))
    for link in facts["links"]:
        if link["ifname"] == "eth1":
            link["mtu"] = 9000
    steps = plan({"name": "eth1", "speed": 1000, "classes": [
        {"name": "a", "shares": 10, "match": [{"dscp": 1}]}]}, facts)["steps"]  # fmt: skip
    assert any(f" quantum {10 * 2 * 9014} " in " ".join(s) for s in steps)
