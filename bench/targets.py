"""The project's performance goals (issues 19 and 28), checked against one run's medians.

At N = 50, ten tasks: vnetctl at least 30x faster than ansible-playbook with pipelining
at every RTT; at least 2x faster than pyinfra at RTT 0 and 4x at RTT 25 ms; at most 1.5x
the bare-SSH floor at RTT 25 ms. A no-op drift check of 50 hosts at most 1.3x the floor
at RTT 25 ms. The controller's CPU per host at most 1.3x the floor's, every workload, at
RTT 0 and 25 ms (same N, so the ratio of CPU seconds). Ratios come from the same run
(same session, runs interleaved).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Target:
    what: str
    workload: str
    n: int
    rtt_ms: float
    other: str  # the tool vnetctl is compared with
    goal: float
    faster: bool  # True: other/vnetctl >= goal; False: vnetctl/other <= goal
    measure: str = "wall_median"  # or "cpu_median": the controller's CPU seconds

    @property
    def goal_text(self) -> str:
        if self.faster:
            return f">= {self.goal:g}x faster"
        return f"<= {self.goal:g}x its {'CPU' if self.measure == 'cpu_median' else 'time'}"


TARGETS = [
    *(
        Target(
            "vnetctl vs ansible-playbook (pipelining)", "ten-tasks", 50, rtt, "ansible", 30, True
        )  # fmt: skip
        for rtt in (0.0, 5.0, 25.0)
    ),
    Target("vnetctl vs pyinfra", "ten-tasks", 50, 0.0, "pyinfra", 2, True),
    Target("vnetctl vs pyinfra", "ten-tasks", 50, 25.0, "pyinfra", 4, True),
    Target("vnetctl vs the bare-SSH floor", "ten-tasks", 50, 25.0, "floor", 1.5, False),
    Target("no-op drift: vnetctl drift vs the floor", "drift", 50, 25.0, "floor", 1.3, False),
    *(
        Target(
            "controller CPU per host vs the floor's",
            workload,
            50,
            rtt,
            "floor",
            1.3,
            False,
            "cpu_median",
        )  # fmt: skip
        for workload in ("site-first", "site-noop", "ten-tasks", "drift")
        for rtt in (0.0, 25.0)
    ),
]


def evaluate(results: list[dict]) -> list[dict]:
    """Each target with `ratio` (None when not measured in this run) and `met`."""
    medians = {
        (r["tool"], r["workload"], r["n"], float(r.get("rtt_ms", 0.0))): r
        for r in results
        if r.get("wall_median")
    }
    out = []
    for t in TARGETS:
        ours = medians.get(("vnetctl", t.workload, t.n, t.rtt_ms), {}).get(t.measure)
        theirs = medians.get((t.other, t.workload, t.n, t.rtt_ms), {}).get(t.measure)
        ratio = met = None
        if ours and theirs:
            ratio = theirs / ours if t.faster else ours / theirs
            met = ratio >= t.goal if t.faster else ratio <= t.goal
        out.append({"target": t, "ratio": ratio, "met": met})
    return out


def markdown_rows(results: list[dict]) -> list[str]:
    lines = [
        "| target | workload | N | RTT ms | measured | goal | |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for row in evaluate(results):
        t, ratio = row["target"], row["ratio"]
        measured = "not measured" if ratio is None else f"{ratio:.2f}x"
        verdict = {None: "-", True: "met", False: "**not met**"}[row["met"]]
        lines.append(
            f"| {t.what} | {t.workload} | {t.n} | {t.rtt_ms:g} | {measured} | {t.goal_text} "
            f"| {verdict} |"
        )
    return lines
