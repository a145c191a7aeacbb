"""`vnetctl mesh check` at fleet size: each member probes a bounded sample of its peers
per segment (a ring's successor and K-1 drawn from a printed seed), covering every
member as source and target and every segment; --full probes every ordered pair; the
report counts the pairs not probed, never calling them reachable."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from vnetctl.fleet.mesh.probe import ProbeLayout, Segment, chosen_pairs, pair_counts, probe_plans
from vnetctl.fleet.mesh.sample import PairSample

HOSTS = [f"h{i:03d}" for i in range(200)]


def layout(segments: dict[int, list[str]]) -> ProbeLayout:
    out = ProbeLayout()
    for vni, members in segments.items():
        for host in members:
            out.segments[host][str(vni)] = Segment(vni, f"br-vx{vni}", 1450)
    for index, host in enumerate(sorted(out.segments)):
        out.address[host] = f"169.254.0.{index + 1}"
    return out


def test_every_member_is_source_and_target_in_every_segment_and_the_count_is_bounded():
    fleet = layout({100: HOSTS, 200: HOSTS[::3], 300: HOSTS[:2]})
    chosen = chosen_pairs(fleet, PairSample(3, seed=11))
    for key, members in (("100", HOSTS), ("200", HOSTS[::3]), ("300", HOSTS[:2])):
        per_source = chosen[key]
        assert sorted(per_source) == sorted(members)  # every member a source
        targets = Counter(t for ts in per_source.values() for t in ts)
        assert set(targets) == set(members)  # every member a target
        for src, ts in per_source.items():
            assert src not in ts and len(ts) == len(set(ts))
            assert set(ts) <= set(members)
            assert len(ts) == min(3, len(members) - 1)
    assert chosen["300"] == {"h000": ["h001"], "h001": ["h000"]}
    probed, total = pair_counts(fleet, chosen)
    assert probed == 200 * 3 + 67 * 3 + 2 and total == 200 * 199 + 67 * 66 + 2


def test_the_same_seed_chooses_the_same_pairs_another_seed_others():
    fleet = layout({100: HOSTS})
    once = chosen_pairs(fleet, PairSample(4, seed=42))
    assert chosen_pairs(fleet, PairSample(4, seed=42)) == once
    assert chosen_pairs(fleet, PairSample(4, seed=43)) != once


def test_the_seed_repeats_across_processes_whatever_the_hash_seed():
    code = ("from tests.unit.test_mesh_sample import HOSTS, layout;"
            "from vnetctl.fleet.mesh.probe import chosen_pairs;"
            "from vnetctl.fleet.mesh.sample import PairSample;"
            "import json;"
            "print(json.dumps(chosen_pairs(layout({100: HOSTS}), PairSample(3, 5))))")  # fmt: skip
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout  # fmt: skip
        for seed in ("1", "2")
    }
    assert len(outs) == 1 and json.loads(outs.pop())["100"]["h000"][0] == "h001"


def test_a_small_segment_and_full_probe_every_pair():
    small = layout({100: HOSTS[:4]})
    assert pair_counts(small, chosen_pairs(small, PairSample(3, seed=1))) == (12, 12)
    fleet = layout({100: HOSTS[:50]})
    assert pair_counts(fleet, chosen_pairs(fleet, PairSample(None))) == (50 * 49, 50 * 49)


def test_the_ping_play_sends_each_member_its_sampled_targets_only():
    fleet = layout({100: HOSTS[:20]})
    sample = PairSample(2, seed=3)
    ping = probe_plans(fleet, 1, sample)[1]
    chosen = chosen_pairs(fleet, sample)["100"]
    for host, (task,) in ping.tasks.items():
        assert [t["host"] for t in task.args["targets"]] == chosen[host]
    everything = probe_plans(fleet, 1)[1]  # the health gate's: every pair
    assert all(len(t.args["targets"]) == 19 for (t,) in everything.tasks.values())


def test_the_description_counts_what_was_not_probed():
    assert PairSample(3, seed=9).describe(600, 39800) == {
        "mode": "sample", "peers_per_member": 3, "seed": 9, "pairs_probed": 600,
        "pairs_total": 39800, "pairs_not_probed": 39200}  # fmt: skip
    assert PairSample(None).describe(12, 12)["mode"] == "full"


@pytest.mark.parametrize("args", [["--sample", "0"], ["--sample", "2", "--full"]])
def test_a_sample_of_nothing_or_with_full_is_a_usage_error(args, capsys):
    from vnetctl.cli.main import main

    assert main(["mesh", "check", "p.yml", "-i", "i.yml", *args]) == 1  # a usage error
    assert "vnetctl mesh check: error: argument --" in capsys.readouterr().err


def test_a_segment_too_wide_for_a_matrix_is_counted_and_its_bad_pairs_listed(capsys):
    from vnetctl.cli.mesh_cmd import print_matrix  # noqa: PLC0415

    def pair(src, dst, state="reachable"):
        return {"source": src, "target": dst, "vni": 100, "state": state, "mtu": 1450}

    ring = HOSTS[:40]
    pairs = [pair(a, ring[(i + 1) % 40]) for i, a in enumerate(ring)]
    pairs[3] = pair(ring[3], ring[4], "unreachable")
    print_matrix(pairs, {})
    out = capsys.readouterr().out
    assert "VNI 100 (MTU 1450): 40 members, 40 pairs probed, 39 reachable, 1 not:" in out
    assert "  h003 -> h004: unreachable" in out and "from row to column" not in out
    print_matrix(pairs[:5], {})  # six members: the matrix, a dot where not probed
    out = capsys.readouterr().out
    assert "from row to column" in out and "·" in out
