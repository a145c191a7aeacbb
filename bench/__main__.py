"""python -m bench [--rtt 0,5,25] [--sizes 10,50] [--curve 100] [--repeat 3] [--tools ...]

For each N (the lab resized as few times as it can) and each round-trip time, brings up
the lab with that RTT (`lab up --rtt`: a relay delays every host's SSH path, for every
tool alike; 0 is the lab without relay), measures a ping over SSH, then runs every
workload through every tool, interleaved run by run so that a slower moment of the
shared machine hits all tools alike. Writes JSON, Markdown (with the targets of issue
19, met or not) and a PNG chart (one panel per RTT and workload).
"""

from __future__ import annotations

import argparse
import compileall
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import RelayTurns, close_control_masters, run_timed
from bench.ping import ping
from bench.report import summary_text, write_reports
from bench.tools import OPT_IN, ROOT, TOOLS, VNETCTL, WORKLOADS, Tool
from vnetctl.errors import InputError
from vnetctl.lab import allocate, lab_down, lab_up, reset_hosts
from vnetctl.lab.state import load_state, parse_rtt


def sizes(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def rtts(text: str) -> list[float]:
    try:
        found = sorted({parse_rtt(x) for x in text.split(",") if x.strip()})
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not found:
        raise argparse.ArgumentTypeError("give at least one round-trip time (0: no relay)")
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rtt", type=rtts, default=[0.0, 5.0, 25.0],
                        help="round-trip times to emulate, ms (default 0,5,25)")  # fmt: skip
    parser.add_argument("--sizes", type=sizes, default=[10, 50],
                        help="N for every tool at every RTT (default 10,50)")  # fmt: skip
    parser.add_argument("--curve", type=sizes, default=[100],
                        help="N for vnetctl, pyinfra and the floor only, at the largest RTT "
                        "(default 100; '' for none)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool, size, workload")
    parser.add_argument(
        "--peer-repeat", type=int, help="runs for ansible/pyinfra (default: --repeat)"
    )
    parser.add_argument("--tools", default=",".join(t for t in TOOLS if t not in OPT_IN),
                        help="comma-separated subset (vnetctl-workers: vnetctl --workers "
                        "N, N = the cores, only when named)")  # fmt: skip
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--lab", default="bn", help="lab name (default bn)")
    parser.add_argument("--subnet", default="auto",
                        help="the lab's subnet (default: auto, a free one)")  # fmt: skip
    args = parser.parse_args(argv)
    unknown = set(args.tools.split(",")) - set(TOOLS)
    unknown |= set(args.workloads.split(",")) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown tool or workload: {', '.join(sorted(unknown))}")
    return args


def plan(args: argparse.Namespace, tools: list[Tool]) -> list[tuple[int, float, list[Tool]]]:
    """(N, RTT, tools) in the order they run: N outer, so the lab is resized least."""
    top = max(args.rtt)
    steps = []
    for n in sorted(set(args.sizes) | set(args.curve)):
        for rtt in args.rtt:
            curve = n in args.curve and rtt == top
            here = [t for t in tools if n in args.sizes or (t.curve and curve)]
            if here:
                steps.append((n, rtt, here))
    return steps


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
    # as installed from a wheel: vnetctl's bytecode compiled once, not at every run (a
    # source checkout under PYTHONDONTWRITEBYTECODE compiles ~120 modules a run, 150 ms)
    for package in ("vnetctl", "bench"):
        compileall.compile_dir(str(ROOT / package), quiet=1)
    results: list[dict] = []
    pings: list[dict] = []
    started = time.time()
    steps = plan(args, tools)

    def document(done: int) -> dict:
        doc = {"started": started, "duration": time.time() - started, "repeat": args.repeat,
               "rtts_ms": args.rtt, "unavailable": unavailable, "pings": pings,
               "results": results}  # fmt: skip
        if done < len(steps):  # cut short, or a step's figures written as they come
            doc["partial"] = f"{done} of {len(steps)} labs measured"
        return doc

    with tempfile.TemporaryDirectory(prefix="vnetctl-bench-") as tmp:
        work = Path(tmp)
        try:
            if args.subnet == "auto" and steps and load_state(args.lab) is None:
                # the lab grows from step to step and keeps its subnet: one for the largest
                allocate.reserve(args.lab, max(n for n, _, _ in steps), "auto")
            for done, (n, rtt, here) in enumerate(steps):
                say(f"N={n} RTT={rtt:g} ms: lab up; tools {', '.join(t.name for t in here)}")
                lab = lab_up(args.lab, hosts=n, subnet=args.subnet, rtt=rtt,
                             inventory_path=work / "lab.yml")  # fmt: skip
                turns = RelayTurns(lab)
                pings.append({"n": n, "rtt_ms": rtt, **ping(str(lab.inventory_path))})
                turns.per_host()  # the ping's connection is not a tool's
                p = pings[-1]
                say(f"N={n} RTT={rtt:g} ms: ping over SSH: echo {p['echo_ms']:.1f} ms "
                    f"(min {p['echo_min_ms']:.1f}), exec true {p['exec_ms']:.1f} ms")  # fmt: skip
                for workload in workloads:
                    results += run_workload(workload, here, lab, work, args, turns)
                write_reports(document(done + 1), args.out)  # kept if a later step fails
        finally:
            lab_down(args.lab)
    doc = document(len(steps))
    write_reports(doc, args.out)
    print(summary_text(doc))
    say(f"results in {args.out}")
    return doc


def run_workload(
    workload: str, tools: list, lab, work: Path, args, turns: RelayTurns
) -> list[dict]:
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
        run_timed(converge, {}, lab, ROOT, turns=turns)
    rtt = lab.rtt_ms
    for rep in range(max(repeats.values(), default=0)):
        for name, (argv, env, ok_codes) in commands.items():
            if rep >= repeats[name] or (samples[name] and not samples[name][-1].ok):
                continue
            if workload == "site-first":
                reset_hosts(lab.name)
            close_control_masters(work / "cp")
            sample = run_timed(argv, env, lab, ROOT, ok_codes, work / "cp", turns)
            samples[name].append(sample)
            state = "ok" if sample.ok else f"FAILED: {sample.error}"
            trips = "" if sample.round_trips is None else f", {sample.round_trips:.0f} round trips"
            say(f"N={len(lab.hosts)} RTT={rtt:g} {workload} {name} run {rep + 1}: "
                f"{sample.wall:.2f}s, CPU {sample.cpu:.2f}s, peak RSS "
                f"{sample.peak_rss_mib:.0f} MiB (PSS {sample.peak_pss_mib:.0f}){trips} "
                f"{state}")  # fmt: skip
    return [summarize(name, workload, len(lab.hosts), rtt, runs) for name, runs in samples.items()]


def summarize(tool: str, workload: str, n: int, rtt: float, runs: list) -> dict:
    good = [r for r in runs if r.ok]
    median = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
    trips = [r.round_trips for r in good if r.round_trips is not None]
    return {
        "tool": tool,
        "workload": workload,
        "n": n,
        "rtt_ms": rtt,
        "runs": [r.__dict__ for r in runs],
        "ok": bool(good) and len(good) == len(runs),
        "error": next((r.error for r in runs if not r.ok), ""),
        "wall_median": median([r.wall for r in good]),
        "cpu_median": median([r.cpu for r in good]),
        "connections_per_host": median([r.connections for r in good]),
        "sessions_per_host": median([r.sessions for r in good]),
        "round_trips_per_host": median(trips),
        "peak_rss_mib_median": median([r.peak_rss_mib for r in good]),
        "peak_pss_mib_median": median([r.peak_pss_mib for r in good]),
    }


if __name__ == "__main__":
    json.dumps(main())
