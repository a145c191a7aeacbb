"""Benchmark results as JSON, a Markdown table with ratios, and a PNG chart."""

from __future__ import annotations

import json
import time
from pathlib import Path

PEERS = ("vnetctl-drift", "ansible", "ansible-mitogen", "pyinfra", "floor")


def ratios(results: list[dict]) -> None:
    """vnetctl's median over each other tool's, same workload and N (same session)."""
    index = {(r["tool"], r["workload"], r["n"]): r for r in results}
    for r in results:
        ours = index.get(("vnetctl", r["workload"], r["n"]))
        theirs = r["wall_median"]
        ok = ours and ours["wall_median"] and theirs
        r["vnetctl_over_this"] = round(ours["wall_median"] / theirs, 3) if ok else None


def markdown(doc: dict) -> str:
    results = doc["results"]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(doc["started"]))
    lines = [
        f"# vnetctl benchmark ({when}, {doc['duration'] / 60:.1f} min, median of "
        f"{doc['repeat']} runs unless noted)",
        "",
        "Wall: median seconds. CPU: controller user+system seconds (children included). "
        "conn/sess: SSH connections and sessions per host, from the sshd logs. "
        "vnetctl/tool: vnetctl's median wall over this tool's (below 1: vnetctl is faster).",
    ]
    for name, why in doc.get("unavailable", {}).items():
        lines.append(f"\n**{name}: unavailable** ({why})")
    for workload in dict.fromkeys(r["workload"] for r in results):
        lines += ["", f"## {workload}", "",
                  "| N | tool | wall s | CPU s | conn/host | sess/host | vnetctl/tool | runs |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in sorted((r for r in results if r["workload"] == workload),
                        key=lambda r: (r["n"], r["tool"] != "vnetctl", r["tool"])):  # fmt: skip
            if not r["ok"] and r["wall_median"] is None:
                error = r["error"].replace("|", "/").replace("\n", " ")[:160]
                lines.append(f"| {r['n']} | {r['tool']} | failed: {error} |||||")
                continue
            lines.append(
                f"| {r['n']} | {r['tool']} | {r['wall_median']:.2f} | {r['cpu_median']:.2f} | "
                f"{r['connections_per_host']:.1f} | {r['sessions_per_host']:.1f} | "
                f"{_ratio(r['vnetctl_over_this'])} | {len(r['runs'])} |"
            )
    return "\n".join(lines) + "\n"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def chart(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = doc["results"]
    workloads = list(dict.fromkeys(r["workload"] for r in results))
    fig, axes = plt.subplots(1, len(workloads), figsize=(5 * len(workloads), 4), squeeze=False)
    for ax, workload in zip(axes[0], workloads, strict=True):
        for tool in dict.fromkeys(r["tool"] for r in results):
            points = sorted(
                (r["n"], r["wall_median"])
                for r in results
                if r["workload"] == workload and r["tool"] == tool and r["wall_median"]
            )
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=tool)
        ax.set(title=workload, xlabel="hosts (N)", ylabel="wall time, s (median)")
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(doc: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ratios(doc["results"])
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "results.md").write_text(markdown(doc))
    chart(doc, out / "wall-time.png")
