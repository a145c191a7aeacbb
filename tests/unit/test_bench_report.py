"""The benchmark's report from recorded results (no lab): the targets of issue 19 met
or not from the medians, a table per workload and RTT with round trips, the ping, and
the plan of labs a run brings up."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from bench.__main__ import parse_args, plan
from bench.report import markdown, ratios, summary_text, write_reports
from bench.targets import TARGETS, evaluate
from bench.tools import TOOLS


def row(tool: str, workload: str, n: int, rtt: float, wall: float, trips=None) -> dict:
    return {
        "tool": tool, "workload": workload, "n": n, "rtt_ms": rtt, "runs": [{}],
        "ok": True, "error": "", "wall_median": wall, "cpu_median": wall / 2,
        "peak_rss_mib_median": 80.0,
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
        if r["target"].measure == "wall_median"
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


def test_controller_cpu_per_host_is_held_to_the_floors_on_every_workload():
    results = [
        row("vnetctl", w, 50, rtt, 2.0) for w in ("ten-tasks", "drift") for rtt in (0, 25)
    ] + [row("floor", w, 50, rtt, 1.0) for w in ("ten-tasks", "drift") for rtt in (0, 25)]
    results[0]["cpu_median"] = 0.6  # ten tasks at RTT 0: 0.6 s against the floor's 0.5
    cpu = {
        (r["target"].workload, r["target"].rtt_ms): (r["ratio"], r["met"])
        for r in evaluate(results)
        if r["target"].measure == "cpu_median"
    }
    assert cpu[("ten-tasks", 0)] == (pytest.approx(1.2), True)
    assert cpu[("ten-tasks", 25)] == (pytest.approx(2.0), False)
    assert cpu[("site-first", 0)] == (None, None)  # not in this run
    assert len(cpu) == 8 and len(TARGETS) == 15


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
    assert "| 3 | vnetctl | 1.20 | 0.60 | 200.0 | 80 | 1.0 | 1.0 | 4 | 1.00 | 1 |" in at_25
    assert "| 3 | floor | 0.60 | 0.30 | 100.0 | 80 | 1.0 | 1.0 | 9 | 2.00 | 1 |" in at_25
    at_0 = text.split("## ten-tasks, RTT 0 ms")[1].split("##")[0]
    assert "| 3 | floor | 0.50 | 0.25 | 83.3 | 80 | 1.0 | 1.0 | - | 2.00 | 1 |" in at_0
    assert "| vnetctl vs ansible-playbook (pipelining) | ten-tasks | 50 | 5 | not measured" in text
    assert "| controller CPU per host vs the floor's | drift | 50 | 0 | not measured" in text
    assert "## Targets (issues 19 and 28)" in summary_text(doc)
    assert "Partial run" not in text
    cut_short = markdown(dict(doc, partial="1 of 3 labs measured"))
    assert "**Partial run: 1 of 3 labs measured.**" in cut_short


def test_reports_are_written_whole_with_both_charts(tmp_path):
    results = [row(t, "ten-tasks", n, 25, n / 10) for t in ("vnetctl", "floor") for n in (50, 100)]
    doc = {"started": 0, "duration": 60, "repeat": 1, "results": results, "pings": []}
    write_reports(doc, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "results.json", "results.md", "scale.png", "wall-time.png"
    ]  # fmt: skip
    assert (tmp_path / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


def test_a_run_cut_short_keeps_the_labs_it_measured(tmp_path, monkeypatch):
    import bench.__main__ as harness

    steps = []

    def lab_up(name, hosts, **_):
        if steps:  # the second lab fails to come up
            raise KeyboardInterrupt
        steps.append(hosts)
        return SimpleNamespace(inventory_path=tmp_path / "lab.yml", hosts=["h"] * hosts)

    monkeypatch.setattr(harness, "lab_up", lab_up)
    monkeypatch.setattr(harness, "lab_down", lambda name: None)
    monkeypatch.setattr(harness, "load_state", lambda name: None)
    reserved = []
    monkeypatch.setattr(harness.allocate, "reserve",
                        lambda name, hosts, subnet: reserved.append((hosts, subnet)))  # fmt: skip
    monkeypatch.setattr(harness, "compileall", SimpleNamespace(compile_dir=lambda *a, **k: 0))
    monkeypatch.setattr(harness, "RelayTurns", lambda lab: SimpleNamespace(per_host=dict))
    ping = {"echo_ms": 0.3, "echo_min_ms": 0.2, "exec_ms": 3.0, "connect_ms": 40.0}
    monkeypatch.setattr(harness, "ping", lambda inventory: ping)
    measured = lambda w, tools, lab, *a: [row(t.name, w, 10, 0, 1.0) for t in tools]  # noqa: E731
    monkeypatch.setattr(harness, "run_workload", measured)
    argv = ["--rtt", "0", "--sizes", "10,50", "--curve", "", "--tools", "vnetctl,floor",
            "--workloads", "ten-tasks", "--out", str(tmp_path)]  # fmt: skip
    with pytest.raises(KeyboardInterrupt):
        harness.main(argv)
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["partial"] == "1 of 2 labs measured"
    assert [(r["tool"], r["n"]) for r in doc["results"]] == [("vnetctl", 10), ("floor", 10)]
    assert "**Partial run: 1 of 2 labs measured.**" in (tmp_path / "results.md").read_text()
    # the lab is resized and keeps its subnet: one large enough for the last, largest N
    assert reserved == [(50, "auto")]
