"""`mesh check` at fleet size probes a sample of pairs: a broken pair inside the sample
is found (exit 2), one outside it is counted as not probed (never reachable) and found
by --full."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")
UNDERLAY_DROP = """nft add table inet vnetctl_test_sample
nft add chain inet vnetctl_test_sample input '{{ type filter hook input priority 0; }}'
nft add rule inet vnetctl_test_sample input ip saddr {source} udp dport 4789 drop"""
SAMPLE = ["--sample", "1", "--seed", "1"]  # one peer per member: its ring successor


@pytest.fixture(scope="module")
def five(tmp_path_factory):
    with own_lab("ms", tmp_path_factory.mktemp("ms"), hosts=5) as state:
        yield state


def check(inventory: str, *args: str, capsys) -> tuple[int, dict]:
    code = main(["mesh", "check", MESH, "-i", inventory, "--format", "json", *args])
    return code, json.loads(capsys.readouterr().out)


def unreachable(doc: dict) -> list[tuple]:
    return sorted((p["source"], p["target"], p["vni"]) for p in doc["pairs"]
                  if p["state"] != "reachable")  # fmt: skip


def drop_underlay(lab, on: str, source: str) -> None:
    script = UNDERLAY_DROP.format(source=lab.host(source).address)
    host_exec(lab.name, on, ["sh", "-c", script], check=True)


def test_a_broken_pair_outside_the_sample_is_not_probed_and_full_finds_it(five, capsys):
    inv = str(five.inventory_path)
    assert main(["run", MESH, "-i", inv]) == 0
    capsys.readouterr()
    ring = sorted(five.host_names)
    code, doc = check(inv, *SAMPLE, capsys=capsys)
    assert code == 0
    assert doc["sample"] == {"mode": "sample", "peers_per_member": 1, "seed": 1,
                             "pairs_probed": 10, "pairs_total": 40,
                             "pairs_not_probed": 30}  # fmt: skip
    successors = {(a, ring[(i + 1) % 5]) for i, a in enumerate(ring)}
    assert {(p["source"], p["target"]) for p in doc["pairs"]} == successors

    drop_underlay(five, on=ring[2], source=ring[0])  # ring[0] <-> ring[2]: no ring pair
    assert main(["mesh", "check", MESH, "-i", inv, *SAMPLE]) == 0
    out = capsys.readouterr().out
    assert "10 of 10 pairs reachable" in out
    assert "sampled: 10 of 40 pairs probed" in out and "30 not probed" in out
    assert "repeat with --seed 1" in out and "·" in out  # a pair not probed: a dot, not ok

    code, doc = check(inv, "--full", capsys=capsys)
    assert code == 2 and doc["sample"]["mode"] == "full"
    assert doc["sample"]["pairs_not_probed"] == 0 and len(doc["pairs"]) == 40
    assert unreachable(doc) == sorted(
        (a, b, vni) for a, b in ((ring[0], ring[2]), (ring[2], ring[0])) for vni in (100, 200)
    )


def test_a_broken_pair_inside_the_sample_is_found(five, capsys):
    inv = str(five.inventory_path)
    ring = sorted(five.host_names)
    drop_underlay(five, on=ring[4], source=ring[3])  # ring[3] -> ring[4]: a ring pair
    code, doc = check(inv, *SAMPLE, capsys=capsys)
    assert code == 2
    assert unreachable(doc) == [(ring[3], ring[4], 100), (ring[3], ring[4], 200)]
    assert doc["sample"]["pairs_not_probed"] == 30
