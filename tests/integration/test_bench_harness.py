"""The benchmark harness runs at N = 3, without and with an emulated round trip, and
writes well-formed results. It asserts what was measured, never how fast: timings
belong to bench/, not to tests."""

from __future__ import annotations

import json

import pytest

from bench.__main__ import main as bench_main
from vnetctl.lab import allocate_lab, lab_down

pytestmark = pytest.mark.lab
RTT = 20.0


def test_harness_measures_every_tool_at_three_hosts_and_two_rtts(lab_required, tmp_path):
    # scripts/setup.sh installs ansible-core and Mitogen: both must run the same modules
    # (pyinfra is installed by scripts/bench.sh alone, so it is not part of this test)
    tools = ["vnetctl", "floor", "ansible", "ansible-mitogen"]
    workloads = ["site-first", "ten-tasks", "drift"]
    lab = allocate_lab("bt", hosts=3).name  # the harness brings it up and takes it down
    try:
        bench_main([
            "--rtt", f"0,{RTT:g}ms", "--sizes", "3", "--curve", "", "--repeat", "1",
            "--tools", ",".join(tools), "--workloads", ",".join(workloads),
            "--out", str(tmp_path), "--lab", lab,
        ])  # fmt: skip
    finally:
        lab_down(lab)
    doc = json.loads((tmp_path / "results.json").read_text())
    rows = {(r["tool"], r["workload"], r["rtt_ms"]): r for r in doc["results"]}
    assert set(rows) == {(t, w, rtt) for t in tools for w in workloads for rtt in (0.0, RTT)}
    for (tool, _, rtt), row in rows.items():
        assert row["ok"], row["error"]
        assert row["n"] == 3 and row["wall_median"] > 0 and row["cpu_median"] > 0
        assert row["connections_per_host"] >= 1
        # round trips are counted by the relay: only where the lab adds one
        assert (row["round_trips_per_host"] is None) == (rtt == 0), (tool, rtt)
        assert rtt == 0 or row["round_trips_per_host"] >= 1
        assert row["vnetctl_over_this"] > 0
    for rtt in (0.0, RTT):
        # one connection and one remote process per host per run: what vnetctl is built on
        assert rows[("vnetctl", "ten-tasks", rtt)]["sessions_per_host"] == 1
        assert rows[("vnetctl", "ten-tasks", rtt)]["vnetctl_over_this"] == 1
    # ten tasks in one process make fewer round trips than ten sessions
    trips = {t: rows[(t, "ten-tasks", RTT)]["round_trips_per_host"] for t in tools}
    assert trips["vnetctl"] < trips["ansible"]
    # the ping proves the delay: an echo over SSH through the relay takes the RTT at least
    pings = {p["rtt_ms"]: p for p in doc["pings"]}
    assert set(pings) == {0.0, RTT} and pings[RTT]["echo_min_ms"] >= RTT
    markdown = (tmp_path / "results.md").read_text()
    for workload in workloads:
        assert f"## {workload}, RTT 0 ms" in markdown and f"## {workload}, RTT 20 ms" in markdown
    assert "| 3 | vnetctl |" in markdown and "## Targets (issues 19 and 28)" in markdown
    assert (tmp_path / "wall-time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
