"""Benchmark results as JSON, Markdown tables with ratios and targets, and a PNG chart."""

from __future__ import annotations

import json
import time
from pathlib import Path

from bench.targets import markdown_rows

LEGEND = (
    "Wall: median seconds. CPU: controller user+system seconds (children included; the "
    "relay's own CPU is not). conn/sess: SSH connections and sessions per host, from the "
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
    lines = ["## Round trips", "", *ping_rows(doc), "", "## Targets (issue 19)", ""]
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
    for name, why in doc.get("unavailable", {}).items():
        lines.append(f"\n**{name}: unavailable** ({why})")
    lines += ["", "## Round trips", "", *ping_rows(doc)]
    lines += ["", "## Targets (issue 19)", "",
              "Medians of this run; `measured` is the other tool's wall time over vnetctl's "
              "(faster) or vnetctl's over the floor's.", "", *markdown_rows(results)]  # fmt: skip
    for workload in dict.fromkeys(r["workload"] for r in results):
        for rtt in sorted({r.get("rtt_ms", 0.0) for r in results if r["workload"] == workload}):
            rows = [r for r in results if r["workload"] == workload and r.get("rtt_ms", 0.0) == rtt]
            lines += ["", f"## {workload}, RTT {rtt:g} ms", "", *table(rows)]
    return "\n".join(lines) + "\n"


def table(rows: list[dict]) -> list[str]:
    lines = [
        "| N | tool | wall s | CPU s | conn/host | sess/host | trips/host | vnetctl/tool | runs |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["n"], r["tool"] != "vnetctl", r["tool"])):
        if not r["ok"] and r["wall_median"] is None:
            error = r["error"].replace("|", "/").replace("\n", " ")[:160]
            lines.append(f"| {r['n']} | {r['tool']} | failed: {error} ||||||")
            continue
        trips = r.get("round_trips_per_host")
        lines.append(
            f"| {r['n']} | {r['tool']} | {r['wall_median']:.2f} | {r['cpu_median']:.2f} | "
            f"{r['connections_per_host']:.1f} | {r['sessions_per_host']:.1f} | "
            f"{'-' if trips is None else f'{trips:.0f}'} | "
            f"{_ratio(r['vnetctl_over_this'])} | {len(r['runs'])} |"
        )
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def chart(doc: dict, path: Path) -> None:
    """Wall time against N per tool: a row per workload, a column per RTT."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = doc["results"]
    workloads = list(dict.fromkeys(r["workload"] for r in results))
    rtts = sorted({r.get("rtt_ms", 0.0) for r in results})
    fig, axes = plt.subplots(
        len(workloads), len(rtts), figsize=(4.5 * len(rtts), 3.6 * len(workloads)),
        squeeze=False, sharey="row",
    )  # fmt: skip
    tools = list(dict.fromkeys(r["tool"] for r in results))
    for row, workload in zip(axes, workloads, strict=True):
        for ax, rtt in zip(row, rtts, strict=True):
            for tool in tools:
                points = sorted(
                    (r["n"], r["wall_median"])
                    for r in results
                    if (r["workload"], r["tool"], r.get("rtt_ms", 0.0)) == (workload, tool, rtt)
                    and r["wall_median"]
                )
                if points:  # a tool keeps its colour in every panel
                    color = f"C{tools.index(tool) % 10}"
                    ax.plot(*zip(*points, strict=True), marker="o", label=tool, color=color)
            ax.set(title=f"{workload}, RTT {rtt:g} ms", xlabel="hosts (N)",
                   ylabel="wall time, s (median)")  # fmt: skip
            ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            if ax.has_data():
                ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_reports(doc: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ratios(doc["results"])
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "results.md").write_text(markdown(doc))
    chart(doc, out / "wall-time.png")
