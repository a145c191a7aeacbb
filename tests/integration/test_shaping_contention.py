"""Rates, bursts and quanta on the lab's real kernel (issue 26): tc holds exactly the
numbers the planner chose (bursts within tc's own rounding: it stores them as times), a
burst or a rate changed by hand is drift and is put back, under contention a limited
class is not starved, and a class of one share beside one of 100 gets its share. The
figures (±10 %, ratios, three repeats) are the benchmark's: `python -m bench.shaping`;
this only asserts what holds on two loaded cores.

Two hosts of the module's own lab (the allocator's), h1 shaping its eth1 at a declared
100 Mbit/s, iperf3 from h1 to h2 across it, each run bounded."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from bench.iperf import flows
from tests.labhosts import own_lab
from vnetctl.cli.main import main

pytestmark = pytest.mark.lab

NET = "192.168.227"  # inside this lab's own namespaces: h1 .1, h2 .2 on eth1
SECONDS = 4
CLASSES = [
    {"name": "migration", "limit": 30, "match": [{"protocol": "tcp", "dport": 5301}]},
    {"name": "storage", "shares": 75, "reservation": 20,
     "match": [{"protocol": "tcp", "dport": 5302}]},
    {"name": "vm", "shares": 25},
]  # fmt: skip
# planned for eth1 (MTU 1500, gso_max_size 65536) at 100 Mbit/s: quantum = shares x 16384;
# rate = reservation + shares x (100000 - 20000) // 150 shares = 533 kbit/s per share;
# bursts at the ceil: ceil x 262144 us (two other classes at shares 100: 2 x 1638400 B at
# 12.5 MB/s) + 65536; migration 1:e092, storage 1:3c84, vm the default 1:2
ROUND_US = 262144
PLANNED = {
    "1:1": {"rate": 100000, "ceil": 100000},
    "1:e092": {"rate": 50 * 533, "ceil": 30000, "quantum": 50 * 16384},
    "1:3c84": {"rate": 20000 + 75 * 533, "ceil": 100000, "quantum": 75 * 16384},
    "1:2": {"rate": 25 * 533, "ceil": 100000, "quantum": 25 * 16384},
}


def planned_burst(kbit: int) -> int:
    return kbit * 125 * ROUND_US // 10**6 + 65536


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with own_lab("sz", tmp_path_factory.mktemp("sz"), hosts=2) as state:
        h1, h2 = (state.host(h) for h in state.host_names[:2])
        for index, host in enumerate((h1, h2), start=1):
            in_ns(host.namespace, "ip", "addr", "add", f"{NET}.{index}/24", "dev", "eth1")
        yield state


def in_ns(namespace: str, *argv: str) -> str:
    done = subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True,
                          text=True, timeout=30)  # fmt: skip
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout


def playbook(tmp_path, host: str) -> str:
    book = tmp_path / "contention.yml"
    task = {"name": "eth1", "speed": 100, "classes": CLASSES}
    book.write_text(json.dumps([{"hosts": host, "tasks": [{"traffic_shaping": task}]}]))
    return str(book)


def run_json(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def tc_classes(namespace: str) -> dict[str, dict]:
    """{classid: {rate, ceil (kbit/s), quantum, burst, cburst (bytes)}} as tc prints them."""
    out = {}
    for line in in_ns(namespace, "tc", "-d", "class", "show", "dev", "eth1").splitlines():
        words = line.split()
        if words[:2] != ["class", "htb"]:
            continue
        pairs = dict(zip(words[3::1], words[4::1], strict=False))
        info = {"quantum": int(pairs["quantum"]) if "quantum" in pairs else None}
        for key in ("rate", "ceil"):
            number, unit = re.fullmatch(r"([\d.]+)([KMG])bit", pairs[key]).groups()
            info[key] = round(float(number) * {"K": 1, "M": 1000, "G": 10**6}[unit])
        for key in ("burst", "cburst"):  # "66786b/1", or "704Kb/1" where it is whole KiB
            number, unit = re.fullmatch(r"(\d+)([KM]?)b/\d+", pairs[key]).groups()
            info[key] = int(number) * {"": 1, "K": 1024, "M": 1024**2}[unit]
        out[words[2]] = info
    return out


def test_tc_holds_the_planned_numbers_and_hand_changed_bursts_and_rates_are_drift(
    lab, capsys, tmp_path
):
    h1 = lab.host(lab.host_names[0])
    inv, book = str(lab.inventory_path), playbook(tmp_path, h1.name)
    code, first = run_json(capsys, "run", book, "-i", inv)
    assert code == 0, first
    (result,) = first["results"]
    assert "sizing" in json.dumps(result["diff"]["after"])  # the numbers and why, in the diff
    live = tc_classes(h1.namespace)
    for cid, want in PLANNED.items():
        got = live[cid]
        assert {k: got[k] for k in want} == want, (cid, got)
        for key in ("burst", "cburst"):
            kbit = want["ceil"]
            # tc keeps a burst as a time: a few bytes per microsecond come back different
            assert abs(got[key] - planned_burst(kbit)) <= max(64, kbit // 2000), (cid, key, got)
    history = ["--history", str(tmp_path / "h.sqlite")]
    assert run_json(capsys, "drift", book, "-i", inv, *history)[0] == 0

    in_ns(h1.namespace, "tc", "class", "change", "dev", "eth1", "parent", "1:1", "classid",
          "1:e092", "htb", "rate", f"{50 * 533}kbit", "ceil", "30mbit", "prio", "0", "quantum",
          str(50 * 16384), "burst", str(planned_burst(30000)), "cburst", "64k")  # fmt: skip
    code, doc = run_json(capsys, "drift", book, "-i", inv, *history)
    assert code == 2, doc
    items = {(i["field"], i["declared"], i["actual"]) for h in doc["hosts"] for i in h["items"]}
    assert items == {("classes.migration.cburst", planned_burst(30000), 65536)}, items

    code, repaired = run_json(capsys, "run", book, "-i", inv)
    assert code == 0 and [c["field"] for c in repaired["results"][0]["changes"]] == [
        "classes.migration.cburst"
    ], repaired
    assert run_json(capsys, "drift", book, "-i", inv, *history)[0] == 0

    # a rate set by hand: no whole reservation and no share explain it, drift says `rate`
    # (and the reservation it would hold beyond storage's shares: 50000 - 75 x 533)
    storage = PLANNED["1:3c84"]
    in_ns(h1.namespace, "tc", "class", "change", "dev", "eth1", "parent", "1:1", "classid",
          "1:3c84", "htb", "rate", "50mbit", "ceil", "100mbit", "prio", "0", "quantum",
          str(storage["quantum"]), "burst", str(planned_burst(100000)), "cburst",
          str(planned_burst(100000)))  # fmt: skip
    code, doc = run_json(capsys, "drift", book, "-i", inv, *history)
    assert code == 2, doc
    items = {(i["field"], i["declared"], i["actual"]) for h in doc["hosts"] for i in h["items"]}
    assert items == {("classes.storage.rate", None, 50), ("classes.storage.reservation", 20, 10)}
    code, repaired = run_json(capsys, "run", book, "-i", inv)
    assert code == 0 and [c["field"] for c in repaired["results"][0]["changes"]] == [
        "classes.storage.rate",
        "classes.storage.reservation",
    ], repaired
    assert tc_classes(h1.namespace)["1:3c84"]["rate"] == storage["rate"]
    assert run_json(capsys, "drift", book, "-i", inv, *history)[0] == 0


def iperf(lab, ports: list[int]) -> dict[int, float]:
    """Mbit/s of TCP payload per port, all flows at the same time, h1 to h2."""
    h1, h2 = (lab.host(h).namespace for h in lab.host_names[:2])
    return flows(h1, h2, f"{NET}.2", ports, SECONDS)


def test_a_limited_class_is_not_starved_by_a_competing_one(lab, capsys, tmp_path):
    """Before bursts were sized, migration (limit 30) got 7.4-8.9 Mbit/s beside one busy
    class: tc's default burst (1600 B) lost the time it waited for its turn. Coarse on
    purpose (at least half its limit, never above it): the exact figures are the bench's."""
    h1 = lab.host_names[0]
    inv = str(lab.inventory_path)
    assert run_json(capsys, "run", playbook(tmp_path, h1), "-i", inv)[0] == 0
    rates = iperf(lab, [5301, 5302])
    migration, storage = rates[5301], rates[5302]
    assert 15 <= migration <= 30 * 1.05, rates
    assert storage > migration, rates  # the contention was real


def test_classes_of_one_share_beside_one_of_100_get_their_shares_not_its_turns(
    lab, capsys, tmp_path
):
    """Four classes of shares 1 beside one of 100 and the default class (shares 50), all
    busy: each class's rate is its share of 154 (payload 0.62 Mbit/s for a class of 1).
    Before rates came from shares, what the rates left was lent by quanta: the big
    class's queue (a host's own TCP flow: about two GSO packets, TCP Small Queues) ran
    empty many times a round and each time a small class took a turn (measured on the
    lab: the four took 6.5, 22.6 and 35 Mbit/s together, one alone 25.6; now 2.8 to 3.2).
    Coarse on purpose, well clear of noise on two loaded cores: together at most twice
    their shares; the exact ratios are the bench's."""
    h1 = lab.host_names[0]
    book = tmp_path / "ones-and-100.yml"
    small_ports = [5310, 5311, 5312, 5313]
    classes = [{"name": "large", "shares": 100, "match": [{"protocol": "tcp", "dport": 5306}]}]
    classes += [{"name": f"small{i}", "shares": 1, "match": [{"protocol": "tcp", "dport": p}]}
                for i, p in enumerate(small_ports)]  # fmt: skip
    task = {"name": "eth1", "speed": 100, "classes": classes}
    book.write_text(json.dumps([{"hosts": h1, "tasks": [{"traffic_shaping": task}]}]))
    assert run_json(capsys, "run", str(book), "-i", str(lab.inventory_path))[0] == 0
    rates = iperf(lab, [5306, *small_ports, 5399])  # 5399 matches nothing: the default class
    one_share = 100 * 1448 / 1514 / 154
    assert sum(rates[p] for p in small_ports) <= 2 * 4 * one_share, rates
    assert rates[5306] >= 0.9 * 100 * one_share and rates[5399] >= 0.9 * 50 * one_share, rates
