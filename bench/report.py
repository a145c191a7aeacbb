"""Benchmark results as JSON, Markdown tables with ratios and targets, and a PNG chart."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from bench.targets import markdown_rows
from vnetctl.drift.files import write_atomic

LEGEND = (
    "Wall: median seconds. CPU: controller user+system seconds (children included; the "
    "relay's own CPU is not); per host: over N. Peak RSS: the command's process tree, "
    "summed, MiB (median). conn/sess: SSH connections and sessions per host, from the "
    "sshd logs. trips: round trips per host, the request/response turns the lab's relay "
    "counted on the tool's connections (a turn is data from the host after data from the "
    "tool; requests sent without waiting count once), '-' without relay (RTT 0). "
    "vnetctl/tool: vnetctl's median wall over this tool's (below 1: vnetctl is faster)."
)


def ratios(results: list[dict]) -> None:
    """vnetctl's median over each other tool's, same workload, N and RTT (same session)."""
    index = {(r["tool"], r["workload"], r["n"], r.get("rtt_ms", 0.0)): r for r in results}
    for r in results:
        ours = index.get(("vnetctl", r["workload"], r["n"], r.get("rtt_ms", 0.0)))
        theirs = r["wall_median"]
        ok = ours and ours["wall_median"] and theirs
        r["vnetctl_over_this"] = round(ours["wall_median"] / theirs, 3) if ok else None


def ping_rows(doc: dict) -> list[str]:
    lines = [
        "A ping over SSH to the first host of each lab (bench/ping.py): a line echoed by "
        "`cat` in one session (one round trip), `true` run on the open connection (about "
        "two), and opening the connection.",
        "",
        "| N | RTT set, ms | echo, ms (median / min) | exec `true`, ms | connect, ms |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in doc.get("pings", []):
        lines.append(
            f"| {p['n']} | {p['rtt_ms']:g} | {p['echo_ms']:.1f} / {p['echo_min_ms']:.1f} | "
            f"{p['exec_ms']:.1f} | {p['connect_ms']:.0f} |"
        )
    return lines


def summary_text(doc: dict) -> str:
    """The ping and the targets, as printed at the end of a run."""
    lines = ["## Round trips", "", *ping_rows(doc), "", "## Targets (issues 19 and 28)", ""]
    return "\n".join(lines + markdown_rows(doc["results"])) + "\n"


def markdown(doc: dict) -> str:
    results = doc["results"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(doc["started"]))
    lines = [
        f"# vnetctl benchmark ({when}, {doc['duration'] / 60:.1f} min, median of "
        f"{doc['repeat']} runs unless noted)",
        "",
        LEGEND,
    ]
    if doc.get("partial"):
        lines.append(f"\n**Partial run: {doc['partial']}.**")
    for name, why in doc.get("unavailable", {}).items():
        lines.append(f"\n**{name}: unavailable** ({why})")
    lines += ["", "## Round trips", "", *ping_rows(doc)]
    lines += ["", "## Targets (issues 19 and 28)", "",
              "Medians of this run; `measured` is the other tool's wall time over vnetctl's "
              "(faster) or vnetctl's wall time, or controller CPU, over the floor's.", "",
              *markdown_rows(results)]  # fmt: skip
    for workload in dict.fromkeys(r["workload"] for r in results):
        for rtt in sorted({r.get("rtt_ms", 0.0) for r in results if r["workload"] == workload}):
            rows = [r for r in results if r["workload"] == workload and r.get("rtt_ms", 0.0) == rtt]
            lines += ["", f"## {workload}, RTT {rtt:g} ms", "", *table(rows)]
    return "\n".join(lines) + "\n"


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| N | tool | wall s | CPU s | CPU ms/host | peak RSS MiB | conn/host | sess/host "
        "| trips/host | vnetctl/tool | runs |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["n"], r["tool"] != "vnetctl", r["tool"])):
        if not r["ok"] and r["wall_median"] is None:
            error = r["error"].replace("|", "/").replace("\n", " ")[:160]
            lines.append(f"| {r['n']} | {r['tool']} | failed: {error} ||||||||")
            continue
        trips = r.get("round_trips_per_host")
        lines.append(
            f"| {r['n']} | {r['tool']} | {r['wall_median']:.2f} | {r['cpu_median']:.2f} | "
            f"{r['cpu_median'] * 1000 / r['n']:.1f} | {_mib(r.get('peak_rss_mib_median'))} | "
            f"{r['connections_per_host']:.1f} | {r['sessions_per_host']:.1f} | "
            f"{'-' if trips is None else f'{trips:.0f}'} | "
            f"{_ratio(r['vnetctl_over_this'])} | {len(r['runs'])} |"
        )
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _mib(value: float | None) -> str:
    return "-" if not value else f"{value:.0f}"


def chart(doc: dict, path: Path) -> None:
    """Wall time against N per tool: a row per workload, a column per RTT."""
    results = doc["results"]
    rtts = sorted({r.get("rtt_ms", 0.0) for r in results})
    panels = [(rtt, "wall_median", "wall time, s (median)", True) for rtt in rtts]
    _panels(results, panels, path)


def scale_chart(doc: dict, path: Path) -> None:
    """At the largest RTT (where the curve to the largest N runs), against N: the
    controller's CPU per host and the peak RSS, a row per workload (log scales: ansible's
    figures are tens of times the others')."""
    results = doc["results"]
    top = max((r.get("rtt_ms", 0.0) for r in results), default=0.0)
    panels = [(top, "cpu_per_host_ms", "controller CPU, ms per host", True),
              (top, "peak_rss_mib_median", "peak RSS, MiB (median)", True)]  # fmt: skip
    rows = [
        dict(r, cpu_per_host_ms=r["cpu_median"] * 1000 / r["n"] if r.get("cpu_median") else None)
        for r in results
    ]
    _panels(rows, panels, path)


def _panels(results: list[dict], panels: list[tuple], path: Path) -> None:
    """One row per workload, one panel per (RTT, field, label, log scale): each tool's
    median of `field` against N, a tool keeping its colour in every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(dict.fromkeys(r["workload"] for r in results))
    fig, axes = plt.subplots(
        len(workloads), len(panels), figsize=(4.5 * len(panels), 3.6 * len(workloads)),
        squeeze=False,
    )  # fmt: skip
    tools = list(dict.fromkeys(r["tool"] for r in results))
    for row, workload in zip(axes, workloads, strict=True):
        for ax, (rtt, field, label, log) in zip(row, panels, strict=True):
            for tool in tools:
                points = sorted(
                    (r["n"], r[field])
                    for r in results
                    if (r["workload"], r["tool"], r.get("rtt_ms", 0.0)) == (workload, tool, rtt)
                    and r.get(field)
                )
                if points:
                    color = f"C{tools.index(tool) % 10}"
                    ax.plot(*zip(*points, strict=True), marker="o", label=tool, color=color)
            ax.set(title=f"{workload}, RTT {rtt:g} ms", xlabel="hosts (N)", ylabel=label)
            if log:
                ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            if ax.has_data():
                ax.legend(fontsize=7)
    fig.tight_layout()
    with tempfile.NamedTemporaryFile(suffix=".png", dir=path.parent, delete=False) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)


def write_reports(doc: dict, out: Path) -> None:
    """Each file whole or not at all: written after every lab step, so that a run cut
    short keeps what it measured."""
    out.mkdir(parents=True, exist_ok=True)
    ratios(doc["results"])
    write_atomic(out / "results.json", json.dumps(doc, indent=2) + "\n")
    write_atomic(out / "results.md", markdown(doc))
    chart(doc, out / "wall-time.png")
    scale_chart(doc, out / "scale.png")
