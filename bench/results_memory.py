"""The controller memory a run keeps per host for its recap and report: a lab host's
recorded records (tests/unit/fixtures/results/*.json) fed for N hosts through the code
a run's records take (HostPlay.record, Runner._emit), the memory still allocated
afterwards measured with tracemalloc. No lab, no SSH: the hosts' part is replayed.

    python -m bench.results_memory [--hosts 100] [--workload ten_tasks] [--keep all]

--keep: what the run keeps of each result (vnetctl.runner.results.Keep): `all` (drift,
facts: every field as the host said it), `report` (`run --format json`), `recap` (`run`
with the console). Without --keep, each of them.
"""

from __future__ import annotations

import argparse
import gc
import json
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

from vnetctl.runner.control import NullEvents, RunOptions
from vnetctl.runner.host_play import HostPlay
from vnetctl.runner.results import Keep, RunResult
from vnetctl.runner.runner import Runner

FIXTURES = Path(__file__).resolve().parent.parent / "tests/unit/fixtures/results"


def recorded(workload: str) -> dict:
    return json.loads((FIXTURES / f"{workload}.json").read_text())


def replay(workload: dict, hosts: list[str], keep: Keep = Keep.ALL) -> RunResult:
    """Each host's recorded records, as a run reads them: the RunResult it keeps."""
    runner = Runner(None, {}, RunOptions(), NullEvents())  # type: ignore[arg-type]
    runner.result.keep = keep
    tasks = [SimpleNamespace(index=i, name=name, module=module)
             for i, name, module in workload["tasks"]]  # fmt: skip
    for host in hosts:
        play = HostPlay(host, workload["play"], tasks, runner._emit, lambda _h, _t: None)
        for line in workload["lines"]:
            play.record(line)
    runner.result.hosts = list(hosts)
    return runner.result


def retained_kib(workload: dict, count: int, keep: Keep = Keep.ALL) -> float:
    """KiB per host still allocated once `count` hosts' records were read."""
    hosts = [f"host-{n:05d}" for n in range(count)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = replay(workload, hosts, keep)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del result
    return (after - before) / 1024 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--workload", default="ten_tasks", choices=["ten_tasks", "site"])
    parser.add_argument("--keep", choices=list(Keep))
    args = parser.parse_args()
    for keep in [Keep(args.keep)] if args.keep else list(Keep):
        kib = retained_kib(recorded(args.workload), args.hosts, keep)
        print(f"{args.workload}, keep {keep}: {args.hosts} hosts, {kib:.1f} KiB kept per host")


if __name__ == "__main__":
    main()
