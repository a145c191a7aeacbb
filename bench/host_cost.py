"""The host side's CPU per play: the exact process a host runs for a ten-task play
(`python3 -I -S -c STUB`, the stdin vnetctl sends), run here without SSH, its user+system
CPU (children included: `ip`) taken from getrusage. Prints the minimum and median of
plays on a host whose code cache holds the play's code (every play after the first),
and of first contacts (an empty cache: the code sent whole, compiled files kept), with
the bytes of stdin of each.

    python -m bench.host_cost [--runs 30] [--check] [--python /usr/bin/python3] [--own-netns]

The minimum is the figure to compare: on a shared 2-core machine the median carries
other processes' interference, the minimum the least of it. A play reads every link of
its network namespace (`ip -j -d link show`): on this machine, whose namespace holds
every lab's links, ~3.5 ms more per ~160 links. --own-netns runs each play in a network
namespace of its own (only `lo`, as repeatable as a quiet host); the figure printed
names the links either way.
"""

from __future__ import annotations

import argparse
import ctypes
import functools
import json
import os
import resource
import statistics
import subprocess
import tempfile

from vnetctl.catalog import Catalog
from vnetctl.runner.host_code import HostCode
from vnetctl.runner.payload import LockSpec, build_stdin, remote_command

TASKS = [{"index": i, "module": "link", "args": {"name": "lo"}} for i in range(10)]
TIMEOUT = 30.0  # seconds for one play


CLONE_NEWNET = 0x40000000


def own_netns() -> None:
    """In the child before exec: a network namespace of its own (no extra process, so
    nothing added to the CPU measured)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")


def cpu_ms(command: str, stdin: str, known: HostCode | None = None, netns: bool = False) -> float:
    """One play's CPU; what the host reports kept in its cache is learnt into `known`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        command, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        preexec_fn=own_netns if netns else None,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(stdin)
    proc.stdin.flush()
    for line in proc.stdout:  # the host keeps reading stdin until the play is done
        if '"need"' in line:
            raise SystemExit(f"the host's cache lacks code it was told it has: {line}")
        if '"cached"' in line and known is not None:
            known.learn(json.loads(line)["cached"])
        if '"done"' in line:
            break
    proc.stdin.close()
    proc.wait(timeout=TIMEOUT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return used * 1000


def figures(samples: list[float]) -> str:
    samples = sorted(samples)
    return f"min {samples[0]:.1f} ms, median {statistics.median(samples):.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--check", action="store_true", help="a check-mode play")
    parser.add_argument("--python", default="/usr/bin/python3")
    parser.add_argument("--own-netns", action="store_true",
                        help="each play in a network namespace of its own (only lo)")  # fmt: skip
    args = parser.parse_args()
    play = functools.partial(cpu_ms, netns=args.own_netns)
    runs = max(1, args.runs)
    catalog, command = Catalog(), remote_command(args.python)
    with tempfile.TemporaryDirectory() as tmp:
        lock = LockSpec(wait=1, directory=tmp)

        def stdin(known: HostCode) -> str:
            return build_stdin(catalog, TASKS, check=args.check, lock=lock, known=known)

        first, first_bytes = [], 0
        for n in range(max(1, runs // 3)):  # an empty cache each time
            fresh = HostCode(cache=f"{tmp}/cold{n}")
            text = stdin(fresh)
            first_bytes = len(text.encode())
            first.append(play(command, text, fresh))
        known = HostCode(cache=f"{tmp}/warm")
        play(command, stdin(known), known)  # the first contact fills the cache
        text = stdin(known)
        warm = [play(command, text) for _ in range(runs)]
    links = len(os.listdir("/sys/class/net"))
    where = "own network namespace, lo only" if args.own_netns else f"{links} links here"
    print(
        f"host CPU per ten-task play ({args.python}, {where}): cached code ({len(warm)} runs, "
        f"{len(text.encode())} bytes of stdin): {figures(warm)}; first contact "
        f"({len(first)} runs, {first_bytes} bytes): {figures(first)}"
    )


if __name__ == "__main__":
    main()
