"""The benchmark's report from recorded results (no lab): the targets of issue 19 met
or not from the medians, a table per workload and RTT with round trips, the ping, and
the plan of labs a run brings up."""

from __future__ import annotations

import pytest

from bench.__main__ import parse_args, plan
from bench.report import markdown, ratios, summary_text
from bench.targets import TARGETS, evaluate
from bench.tools import TOOLS


def row(tool: str, workload: str, n: int, rtt: float, wall: float, trips=None) -> dict:
    return {
        "tool": tool, "workload": workload, "n": n, "rtt_ms": rtt, "runs": [{}],
        "ok": True, "error": "", "wall_median": wall, "cpu_median": wall / 2,
        "connections_per_host": 1.0, "sessions_per_host": 1.0, "round_trips_per_host": trips,
    }  # fmt: skip


def test_each_target_is_met_or_not_from_the_medians_of_its_own_rtt():
    results = [
        row("vnetctl", "ten-tasks", 50, 0, 1.0), row("ansible", "ten-tasks", 50, 0, 31.0),
        row("vnetctl", "ten-tasks", 50, 25, 2.0), row("ansible", "ten-tasks", 50, 25, 40.0),
        row("pyinfra", "ten-tasks", 50, 25, 9.0), row("floor", "ten-tasks", 50, 25, 1.5),
        row("vnetctl", "drift", 50, 25, 2.0), row("floor", "drift", 50, 25, 1.5),
    ]  # fmt: skip
    verdicts = {
        (r["target"].other, r["target"].workload, r["target"].rtt_ms): (r["ratio"], r["met"])
        for r in evaluate(results)
    }
    assert verdicts[("ansible", "ten-tasks", 0)] == (31.0, True)
    assert verdicts[("ansible", "ten-tasks", 25)] == (20.0, False)  # 30x is the goal
    assert verdicts[("ansible", "ten-tasks", 5)] == (None, None)  # not in this run
    assert verdicts[("pyinfra", "ten-tasks", 25)] == (4.5, True)
    assert verdicts[("pyinfra", "ten-tasks", 0)] == (None, None)
    ratio, met = verdicts[("floor", "ten-tasks", 25)]
    assert ratio == pytest.approx(4 / 3) and met  # at most 1.5x the floor
    ratio, met = verdicts[("floor", "drift", 25)]
    assert ratio == pytest.approx(4 / 3) and not met  # at most 1.3x
    assert len(TARGETS) == 7


def test_markdown_has_the_ping_the_targets_and_a_table_per_workload_and_rtt():
    results = [
        row("vnetctl", "ten-tasks", 3, 0, 1.0), row("floor", "ten-tasks", 3, 0, 0.5),
        row("vnetctl", "ten-tasks", 3, 25, 1.2, trips=4.0),
        row("floor", "ten-tasks", 3, 25, 0.6, trips=9.0),
    ]  # fmt: skip
    doc = {
        "started": 0, "duration": 60, "repeat": 1, "results": results,
        "pings": [{"n": 3, "rtt_ms": 25.0, "echo_ms": 26.1, "echo_min_ms": 25.4,
                   "exec_ms": 52.0, "connect_ms": 230.0}],
    }  # fmt: skip
    ratios(results)
    text = markdown(doc)
    assert "| 3 | 25 | 26.1 / 25.4 | 52.0 | 230 |" in text
    assert "## ten-tasks, RTT 0 ms" in text and "## ten-tasks, RTT 25 ms" in text
    at_25 = text.split("## ten-tasks, RTT 25 ms")[1]
    assert "| 3 | vnetctl | 1.20 | 0.60 | 1.0 | 1.0 | 4 | 1.00 | 1 |" in at_25
    assert "| 3 | floor | 0.60 | 0.30 | 1.0 | 1.0 | 9 | 2.00 | 1 |" in at_25
    at_0 = text.split("## ten-tasks, RTT 0 ms")[1].split("##")[0]
    assert "| 3 | floor | 0.50 | 0.25 | 1.0 | 1.0 | - | 2.00 | 1 |" in at_0
    assert "| vnetctl vs ansible-playbook (pipelining) | ten-tasks | 50 | 5 | not measured" in text
    assert "## Targets (issue 19)" in summary_text(doc)


def test_the_plan_runs_every_tool_at_every_rtt_and_the_curve_at_the_largest():
    args = parse_args(["--rtt", "25,0,5ms", "--sizes", "10,50", "--curve", "100"])
    steps = [(n, rtt, [t.name for t in tools]) for n, rtt, tools in plan(args, TOOLS.values())]
    everyone = list(TOOLS)
    assert steps == [
        (10, 0.0, everyone), (10, 5.0, everyone), (10, 25.0, everyone),
        (50, 0.0, everyone), (50, 5.0, everyone), (50, 25.0, everyone),
        (100, 25.0, ["vnetctl", "vnetctl-workers", "pyinfra", "floor"]),
    ]  # fmt: skip


def test_vnetctl_with_workers_runs_only_when_asked():
    assert "vnetctl-workers" not in parse_args([]).tools.split(",")
    assert parse_args(["--tools", "vnetctl,vnetctl-workers"]).tools == "vnetctl,vnetctl-workers"


@pytest.mark.parametrize("argv", [["--rtt", "fast"], ["--rtt", ""], ["--tools", "chef"]])
def test_bad_arguments_are_usage_errors(argv):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
