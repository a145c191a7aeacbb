"""The host side's CPU per play: the exact process a host runs for a ten-task play
(`python3 -I -S -c STUB`, the stdin vnetctl sends), run here without SSH, its user+system
CPU (children included: `ip`) taken from getrusage. Prints the minimum and median.

    python -m bench.host_cost [--runs 30] [--check] [--python /usr/bin/python3]

The minimum is the figure to compare: on a shared 2-core machine the median carries
other processes' interference, the minimum the least of it.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import tempfile

from vnetctl.catalog import Catalog
from vnetctl.runner.payload import LockSpec, build_stdin, remote_command

TASKS = [{"index": i, "module": "link", "args": {"name": "lo"}} for i in range(10)]
TIMEOUT = 30.0  # seconds for one play


def cpu_ms(command: str, stdin: str) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(stdin)
    proc.stdin.flush()
    for line in proc.stdout:  # the host keeps reading stdin until the play is done
        if '"done"' in line:
            break
    proc.stdin.close()
    proc.wait(timeout=TIMEOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return used * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--check", action="store_true", help="a check-mode play")
    parser.add_argument("--python", default="/usr/bin/python3")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as lock_dir:
        lock = LockSpec(wait=1, directory=lock_dir)
        stdin = build_stdin(Catalog(), TASKS, check=args.check, lock=lock)
        command = remote_command(args.python)
        samples = sorted(cpu_ms(command, stdin) for _ in range(max(1, args.runs)))
    print(
        f"host CPU per ten-task play ({args.python}, {len(samples)} runs): "
        f"min {samples[0]:.1f} ms, median {statistics.median(samples):.1f} ms"
    )


if __name__ == "__main__":
    main()
