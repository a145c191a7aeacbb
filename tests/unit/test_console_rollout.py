"""The console for loops and rolling plays: each loop item is its own line with its own
diff; batches, passed gates and a stopped rollout are said, the stop once, with the
hosts it left untouched written compactly (not a line each)."""

from __future__ import annotations

import io

from rich.console import Console

from vnetctl.output.console import ConsoleReporter
from vnetctl.runner.results import ROLLOUT_LABEL, RunResult, Status, TaskResult


def reporter(show_diff: bool = True) -> tuple[ConsoleReporter, io.StringIO]:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, color_system=None, width=200)
    return ConsoleReporter(console, show_diff=show_diff), out


def item(label: str, changes: list[dict]) -> TaskResult:
    return TaskResult("h1", "bridges", 0, f"bridges (item={label})", "linux_bridge",
                      Status.CHANGED, changes=changes, resource=f"bridge {label}")  # fmt: skip


def test_diff_shows_each_loop_item_under_its_own_line():
    console, out = reporter()
    console.task_done(item("br-a", [{"field": "state", "before": "absent", "after": "present"}]))
    console.task_done(item("br-b", [{"field": "mtu", "before": 1500, "after": 9000}]))
    assert out.getvalue().splitlines() == [
        "changed: [h1] bridges (item=br-a)",
        "    state: absent -> present",
        "changed: [h1] bridges (item=br-b)",
        "    mtu: 1500 -> 9000",
    ]


def test_batches_gates_and_a_stopped_rollout_are_said():
    console, out = reporter()
    console.batch_started("mtu", 1, 3, ["h1"])
    console.gates_passed("batch 1 of 3 of play 'mtu'", ["reachable", "mesh_check"])
    console.batch_started("mtu", 2, 3, ["h2", "h3"])
    reason = "health gate mesh_check failed after batch 2 of 3 of play 'mtu' on h2"
    untouched = [f"h{i}" for i in range(4, 20)]
    for host in untouched:
        console.task_done(TaskResult(host, "mtu", -1, ROLLOUT_LABEL, "-", Status.NOT_STARTED,
                                     "not started: the rollout stopped"))  # fmt: skip
    console.rollout_stopped({"reason": reason, "gate": True, "rolled_back": ["h2", "h3"],
                             "changed": [], "not_started": untouched})  # fmt: skip
    console.recap(RunResult(hosts=["h1"]))
    lines = out.getvalue().splitlines()
    assert lines[:4] == [
        "BATCH 1/3 of mtu: h1",
        "health gates passed after batch 1 of 3 of play 'mtu': reachable, mesh_check",
        "BATCH 2/3 of mtu: h2, h3",
        f"rollout stopped: {reason}; rolled back by their hosts: h2, h3; "
        "not started: 16 hosts: h4 to h19",
    ]
    assert out.getvalue().count("rollout stopped") == 1
    assert "not started: [" not in out.getvalue()  # no line per host


def test_a_stopped_rollout_without_a_timer_says_how_to_undo_the_batch():
    console, out = reporter()
    reason = "health gate mesh_check failed after batch 1 of 3 of play 'mtu' on h1"
    console.rollout_stopped({"reason": reason, "gate": True, "rolled_back": [],
                             "changed": ["h1"], "not_started": ["h2", "h3"]})  # fmt: skip
    assert out.getvalue().splitlines() == [
        f"rollout stopped: {reason}; its changes stay on h1: to undo them, run the play "
        "again with the previous values on them (--limit h1); with confirm_timeout (or "
        "--confirm-timeout) a failed health gate has the batch roll back by itself; "
        "not started: 2 hosts: h2, h3"
    ]
