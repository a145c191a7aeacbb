"""python -m bench [--sizes 10,50,100] [--curve 10,50,100,200] [--repeat 3] [--tools ...]

Brings up one lab per size (resizing the same lab), runs every workload through every
tool, interleaved run by run so that a slower moment of the shared machine hits all
tools alike, and writes JSON, Markdown and a PNG chart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import close_control_masters, run_timed
from bench.report import write_reports
from bench.tools import ROOT, TOOLS, VNETCTL, WORKLOADS
from vnetctl.lab import lab_down, lab_up, reset_hosts


def sizes(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--sizes", type=sizes, default=[10, 50, 100], help="N for all tools")
    parser.add_argument("--curve", type=sizes, default=[10, 50, 100, 200],
                        help="N for vnetctl and the floor only (the cost curve)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool, size, workload")
    parser.add_argument(
        "--peer-repeat", type=int, help="runs for ansible/pyinfra (default: --repeat)"
    )
    parser.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--lab", default="bn", help="lab name (default bn)")
    parser.add_argument("--subnet", default="10.230.0.0/16")
    return parser.parse_args(argv)


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    chosen = [TOOLS[name] for name in args.tools.split(",")]
    workloads = args.workloads.split(",")
    unavailable = {t.name: why for t in chosen if (why := t.available())}
    for name, why in unavailable.items():
        say(f"{name}: unavailable ({why})")
    tools = [t for t in chosen if t.name not in unavailable]
    results: list[dict] = []
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="vnetctl-bench-") as tmp:
        work = Path(tmp)
        try:
            for n in sorted(set(args.sizes) | set(args.curve)):
                here = [t for t in tools if n in args.sizes or (t.curve and n in args.curve)]
                say(f"N={n}: lab up; tools {', '.join(t.name for t in here)}")
                lab = lab_up(args.lab, hosts=n, subnet=args.subnet,
                             inventory_path=work / "lab.yml")  # fmt: skip
                for workload in workloads:
                    results += run_workload(workload, here, lab, work, args)
        finally:
            lab_down(args.lab)
    doc = {
        "started": started,
        "duration": time.time() - started,
        "repeat": args.repeat,
        "unavailable": unavailable,
        "results": results,
    }
    write_reports(doc, args.out)
    say(f"results in {args.out}")
    return doc


def run_workload(workload: str, tools: list, lab, work: Path, args) -> list[dict]:
    commands = {t.name: t.command(workload, lab, work) for t in tools}
    commands = {name: cmd for name, cmd in commands.items() if cmd is not None}
    peer_repeat = args.peer_repeat or args.repeat
    repeats = {
        name: args.repeat if name.startswith(("vnetctl", "floor")) else peer_repeat
        for name in commands
    }
    samples: dict[str, list] = {name: [] for name in commands}
    if workload != "site-first":  # converge first: these workloads change nothing
        converge = [str(VNETCTL), "run", str(ROOT / "playbooks" / "site.yml"), "-i",
                    str(lab.inventory_path), "--forks", str(len(lab.hosts))]  # fmt: skip
        run_timed(converge, {}, lab, ROOT)
    for rep in range(max(repeats.values(), default=0)):
        for name, (argv, env, ok_codes) in commands.items():
            if rep >= repeats[name] or (samples[name] and not samples[name][-1].ok):
                continue
            if workload == "site-first":
                reset_hosts(lab.name)
            close_control_masters(work / "cp")
            sample = run_timed(argv, env, lab, ROOT, ok_codes)
            samples[name].append(sample)
            state = "ok" if sample.ok else f"FAILED: {sample.error}"
            say(f"N={len(lab.hosts)} {workload} {name} run {rep + 1}: {sample.wall:.2f}s {state}")
    return [summarize(name, workload, len(lab.hosts), runs) for name, runs in samples.items()]


def summarize(tool: str, workload: str, n: int, runs: list) -> dict:
    good = [r for r in runs if r.ok]
    median = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
    return {
        "tool": tool,
        "workload": workload,
        "n": n,
        "runs": [r.__dict__ for r in runs],
        "ok": bool(good) and len(good) == len(runs),
        "error": next((r.error for r in runs if not r.ok), ""),
        "wall_median": median([r.wall for r in good]),
        "cpu_median": median([r.cpu for r in good]),
        "connections_per_host": median([r.connections for r in good]),
        "sessions_per_host": median([r.sessions for r in good]),
    }


if __name__ == "__main__":
    json.dumps(main())
