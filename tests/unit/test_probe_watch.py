"""path_probe's watcher state (issue 29): collect without a watcher says so, stale state
is swept and fresh state is not, frames of another probe are not counted. The watcher on
real sockets: tests/integration/test_probe_watcher.py."""

from __future__ import annotations

import json
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


def test_collect_and_the_sweep_remove_the_links_a_tap_inject_recorded(tmp_path, monkeypatch):
    """An inject cut off after making its pair: collect removes it by its recorded name,
    and so does the sweep of a state no collect took; a recorded name no command may
    take is never run."""
    monkeypatch.setattr(watch, "STATE_ROOT", str(tmp_path))
    deleted = []
    monkeypatch.setattr(watch.tap.core, "run_status",
                        lambda argv, **_: (deleted.append(argv), (0, "", ""))[1])  # fmt: skip
    recorded = {MARKER: ["vprfeedc0de00s"], "feedc0de00000002": ["vprfeedc0de01s", "x;reboot"]}
    for marker, names in recorded.items():
        (tmp_path / marker).mkdir()
        (tmp_path / marker / "result").write_text('{"end": "time", "devices": {}}')
        (tmp_path / marker / "helpers").write_text(json.dumps({"links": names}))
    assert watch.collect(MARKER)["end"] == "time"
    assert deleted == [["ip", "link", "del", "dev", "vprfeedc0de00s"]]
    stale = time.time() - watch.STALE_S - 60
    os.utime(tmp_path / "feedc0de00000002", (stale, stale))
    watch.sweep()
    assert deleted[1:] == [["ip", "link", "del", "dev", "vprfeedc0de01s"]]
    assert list(tmp_path.iterdir()) == []
