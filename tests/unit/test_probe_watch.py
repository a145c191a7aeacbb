"""path_probe's watcher state (issue 29): collect without a watcher says so, stale state
is swept and fresh state is not, frames of another probe are not counted. The watcher on
real sockets: tests/integration/test_probe_watcher.py."""

from __future__ import annotations

import os
import socket
import time

import pytest

from vnetctl.catalog import Catalog

watch = Catalog().load("path_probe").watch
frames = Catalog().load("path_probe").frames
MARKER = "feedc0de00000001"


def test_collect_without_a_watcher_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(watch, "STATE_ROOT", str(tmp_path))
    with pytest.raises(OSError, match="no watcher for this probe here"):
        watch.collect(MARKER)


def test_only_stale_probe_state_is_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(watch, "STATE_ROOT", str(tmp_path))
    old, fresh, other = (tmp_path / MARKER), (tmp_path / "feedc0de00000002"), tmp_path / "x"
    for directory in (old, fresh, other):
        directory.mkdir()
        (directory / "result").write_text("{}")
    stale = time.time() - watch.STALE_S - 60
    os.utime(old, (stale, stale))
    os.utime(other, (stale, stale))
    watch.sweep()
    assert not old.exists() and fresh.exists() and other.exists()


def test_sequences_ignore_a_frame_of_another_probe():
    frame = frames.frames({"src_mac": "02:00:00:00:00:01", "dst_mac": "02:00:00:00:00:02"},
                          MARKER, 1)[0]  # fmt: skip
    assert frames.sequences(frame, bytes.fromhex(MARKER)) == {0}
    assert frames.sequences(frame, bytes.fromhex("feedc0de00000002")) == set()
    assert socket.htons(watch.ETH_P_ALL) == 0x0300
