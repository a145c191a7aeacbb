"""What test_trace_cases_lab and test_trace_cases_ovs_lab share: the trace through the
command line with --probe, its probe's counts per device, both directions."""

from __future__ import annotations

import os
import sys

import pytest

from tests.integration.test_trace_ovs_lab import trace

BOTH = pytest.mark.parametrize("src", [1, 2], ids=["h1-to-h2", "h2-to-h1"])


def probed(capsys, lab, source, destination, *more) -> tuple[int, dict]:
    """`vnetctl trace SOURCE DESTINATION --probe --format json`: (exit code, document)."""
    code, doc = trace(capsys, lab, source, destination, "--probe", *more)
    probe = doc["probe"]
    with capsys.disabled():
        print(f"\ntrace {source} -> {destination}: verdict {doc['verdict']}, timing "
              f"{doc['timing']}, probe {probe['elapsed_s']} s, load {os.getloadavg()[0]:.1f}, "
              f"seen {[(s['host'], s['device'], s['count']) for s in probe['seen']]}, "
              f"last {probe['last_seen']}", file=sys.stderr)  # fmt: skip
    return code, doc


def seen(doc) -> dict:
    """{(host, device): how many probe frames it saw}."""
    return {(s["host"], s["device"]): s["count"] for s in doc["probe"]["seen"]}
