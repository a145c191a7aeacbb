"""The benchmark harness runs at N = 3 and writes well-formed results. It asserts what
was measured, never how fast: timings belong to bench/, not to tests."""

from __future__ import annotations

import json
import os

import pytest

from bench.__main__ import main as bench_main

pytestmark = pytest.mark.lab


def test_harness_measures_every_tool_at_three_hosts(lab_required, tmp_path):
    # scripts/setup.sh installs ansible-core and Mitogen: both must run the same modules
    tools = ["vnetctl", "vnetctl-drift", "floor", "ansible", "ansible-mitogen"]
    bench_main([
        "--sizes", "3", "--curve", "3", "--repeat", "1", "--tools", ",".join(tools),
        "--workloads", "site-first,ten-tasks", "--out", str(tmp_path),
        "--lab", f"bt{os.getpid() % 1000}", "--subnet", f"10.232.{os.getpid() % 250}.0/24",
    ])  # fmt: skip
    doc = json.loads((tmp_path / "results.json").read_text())
    rows = {(r["tool"], r["workload"]): r for r in doc["results"]}
    # drift has no first apply to do; every other pair ran once, successfully
    expected = {(t, w) for t in tools for w in ("site-first", "ten-tasks")}
    assert set(rows) == expected - {("vnetctl-drift", "site-first")}
    for row in rows.values():
        assert row["ok"], row["error"]
        assert row["n"] == 3 and row["wall_median"] > 0 and row["cpu_median"] > 0
        assert row["connections_per_host"] >= 1
    # one connection and one remote process per host per run: what vnetctl is built on
    assert rows[("vnetctl", "ten-tasks")]["sessions_per_host"] == 1
    assert rows[("vnetctl", "ten-tasks")]["vnetctl_over_this"] == 1
    assert rows[("floor", "ten-tasks")]["vnetctl_over_this"] > 0
    markdown = (tmp_path / "results.md").read_text()
    assert "## ten-tasks" in markdown and "| 3 | vnetctl |" in markdown
    assert (tmp_path / "wall-time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
