"""`--workers N|auto`: the hosts of a run spread over N worker processes, each with its
own event loop and SSH connections, so a controller uses all its cores
(vnetctl.fleet.workers.parent). One process up to AUTO_FROM hosts with `auto`: on the
2-core lab two workers never paid up to 500 hosts (README, "All the controller's cores").
"""

from __future__ import annotations

import argparse
import os

AUTO = 0  # RunOptions.workers: decided from the fleet's size and the cores
# with `auto`, workers above this many hosts
AUTO_FROM = 1000
MAX_WORKERS = 64


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def parse_workers(text: str) -> int:
    """An argparse type: `auto` (AUTO) or 1..MAX_WORKERS."""
    if text == "auto":
        return AUTO
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"expected auto or 1..{MAX_WORKERS}, got {text!r}")
    return value


def worker_count(asked: int, hosts: int) -> int:
    """How many worker processes a run of `hosts` hosts uses (1: no worker, the runner
    in this process)."""
    if asked == AUTO:
        asked = cores() if hosts > AUTO_FROM else 1
    return max(1, min(asked, hosts))
