"""Peak memory of a command and every process under it (vnetctl's worker processes),
sampled from /proc while it runs: the largest sum of their resident sets (RSS: pages
a fork shares are counted in every process that maps them) and of their proportional
sets (PSS: shared pages divided among them, the memory the tree really costs)."""

from __future__ import annotations

import threading
from pathlib import Path

INTERVAL = 0.05  # seconds between samples


def tree(pid: int) -> list[int]:
    """`pid` and its descendants alive now."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo += [int(k) for k in kids]
    return found


def _kib(pid: int, path: str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


class PeakMemory:
    """Samples the tree under `pid` in a thread until stop(); peaks in MiB."""

    def __init__(self, pid: int):
        self.pid = pid
        self.rss_mib = 0.0
        self.pss_mib = 0.0
        self.processes = 0  # the most processes seen at once
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(INTERVAL):
            pids = tree(self.pid)
            self.processes = max(self.processes, len(pids))
            rss = sum(_kib(p, "status", "VmRSS") for p in pids) / 1024
            pss = sum(_kib(p, "smaps_rollup", "Pss") for p in pids) / 1024
            self.rss_mib, self.pss_mib = max(self.rss_mib, rss), max(self.pss_mib, pss)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
