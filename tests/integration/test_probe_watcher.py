"""path_probe's watcher (issue 29) on the loopback of a network namespace of the test's
own, no lab needed: bound before start() returns, each probe frame counted once per
sequence number, stopped once all are seen, a device it cannot watch reported, nothing
left behind. Run in a child process: the watcher is forked, never from pytest itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

MARKER = "feedc0de00000001"
ROOT = str(Path(__file__).parents[2])

SCRIPT = """
import json, socket, sys
sys.path[:0] = sys.argv[1:2]
from vnetctl.catalog import Catalog
module = Catalog().load("path_probe")
watch, frames = module.watch, module.frames
watch.STATE_ROOT = sys.argv[2]
marker = sys.argv[3]
ready = watch.start(marker, ["lo", "nosuch0"], 2, 5.0)
packet = {"src_mac": "02:00:00:00:00:01", "dst_mac": "02:00:00:00:00:02",
          "src_ip": "127.0.0.1", "dst_ip": "127.0.0.2", "proto": "udp", "port": 9, "size": 200}
with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
    sock.bind(("lo", 0))
    for frame in frames.frames(packet, marker, 2) * 2:  # each sent twice: counted once
        sock.send(frame)
result = watch.collect(marker)
print(json.dumps({"ready": ready, "result": result}))
"""


def test_the_watcher_counts_each_frame_once_and_stops_when_all_are_seen(lab_required, tmp_path):
    ns = f"vnt-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        root = str(tmp_path / "state")
        began = time.monotonic()
        done = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", SCRIPT, ROOT, root, MARKER],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        elapsed = time.monotonic() - began
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["ready"]["watched"] == ["lo"]
    assert "nosuch0" in got["ready"]["not_watched"]
    lo = got["result"]["devices"]["lo"]
    assert lo["count"] == 2 and got["result"]["end"] in ("all seen", "collected")
    assert elapsed < 5.0  # well inside the watcher's 5 s bound
    assert os.listdir(root) == []  # collect removed the watcher's state
