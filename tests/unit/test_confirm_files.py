"""Commit confirmed's directory on the host (vnetctl.hostside.confirm_files), on a
directory of the test's own: a journal entry is whole or absent and one that does not
check out is never read; the result fits in the space reserved for it; a watchdog that
died is said, never waited for; what an earlier run left is collected once."""

from __future__ import annotations

import binascii
import fcntl
import json
import os
from pathlib import Path

import pytest
from full_disk import FullDisk

from vnetctl.hostside import confirm_files as files
from vnetctl.runner.confirm import earlier
from vnetctl.runner.host_play import HostPlay


def entry(task: int) -> dict:
    return {"task": task, "module": "link", "params": {"name": "eth1"}, "before": {"mtu": 1500}}


def test_entries_are_framed_and_read_back(tmp_path):
    journal = files.Journal()
    journal.record(entry(0))  # in memory until attached
    journal.attach(str(tmp_path / "journal"))
    journal.record(entry(1))
    assert files.read_journal(tmp_path) == ([entry(0), entry(1)], 0)
    line = (tmp_path / "journal").read_bytes().splitlines()[0]
    assert line.split(b" ", 1)[0] == b"%08x" % binascii.crc32(line[9:])


def test_a_line_that_does_not_check_out_is_damage_a_torn_last_one_is_left_out(tmp_path):
    journal = files.Journal()
    journal.attach(str(tmp_path / "journal"))
    for task in range(3):
        journal.record(entry(task))
    data = (tmp_path / "journal").read_bytes()
    lines = data.splitlines(keepends=True)
    flipped = lines[1].replace(b'"mtu": 1500', b'"mtu": 9000')  # the checksum says no
    (tmp_path / "journal").write_bytes(lines[0] + flipped + lines[2] + lines[2][:30])
    assert files.read_journal(tmp_path) == ([entry(0), entry(2)], 1)


def test_an_entry_the_disk_cannot_hold_is_cut_off_again_and_refused(tmp_path, monkeypatch):
    journal = files.Journal()
    journal.attach(str(tmp_path / "journal"))
    journal.record(entry(0))
    before = (tmp_path / "journal").read_bytes()
    monkeypatch.setattr(files, "os", FullDisk(20))  # part of the entry fits
    with pytest.raises(files.JournalError, match="No space left on device"):
        journal.record(entry(1))
    assert (tmp_path / "journal").read_bytes() == before
    assert journal.entries == [entry(0)]  # not kept in memory either


def test_the_result_goes_into_the_reserve_shortened_to_fit(tmp_path):
    """(That a full disk cannot stop it: tests/integration/test_host_faults.py.)"""
    files.reserve(tmp_path)
    assert (tmp_path / "reserve").stat().st_size == files.RESERVE
    result = {"rolled_back": False, "left": [f"difference {i}" * 50 for i in range(2000)]}
    files.write_result(tmp_path, result)
    written = json.loads((tmp_path / "result").read_text())
    assert len((tmp_path / "result").read_bytes()) <= files.RESERVE
    assert written["left"][-1].startswith("... and ") and written["rolled_back"] is False
    assert not (tmp_path / "reserve").exists()


def test_a_watchdog_that_died_is_said_and_its_directory_removed(tmp_path):
    directory = tmp_path / "vnetctl-confirm-abc"
    directory.mkdir()
    (directory / "expired").touch()
    watching = files.hold(directory)  # as the watchdog does
    try:
        assert files.watched(directory)
        assert files.collect(str(directory)) == {"pending": True}
    finally:
        os.close(watching)  # the watchdog is gone
    assert not files.watched(directory)
    assert files.collect(str(directory)) == {"died": "expired"}
    assert not directory.exists()


def test_a_confirmation_whose_watchdog_died_cleans_up_itself(tmp_path):
    directory = tmp_path / "vnetctl-confirm-abc"
    directory.mkdir()
    (directory / "armed").touch()
    assert files.confirm(str(directory)) == {"confirmed": True, "cleaned": True}


def test_leftovers_are_collected_once_and_live_watchdogs_left_alone(tmp_path):
    done, alive = tmp_path / "vnetctl-confirm-done", tmp_path / "vnetctl-confirm-alive"
    for directory in (done, alive):
        directory.mkdir()
    files.write_result(done, {"rolled_back": True, "after_task": 1, "owner": "me: vnetctl run"})
    watching = files.hold(alive)
    try:
        assert files.leftovers(str(tmp_path)) == [
            {"rolled_back": True, "after_task": 1, "owner": "me: vnetctl run", "play": "done"}
        ]
        assert files.leftovers(str(tmp_path)) == []
        assert alive.exists()
    finally:
        os.close(watching)


def test_an_earlier_rollback_is_said_as_a_note_and_kept_for_the_json():
    notes = []
    play = HostPlay("h1", "p", [], lambda r: None, lambda host, text: notes.append((host, text)))
    found = {"rolled_back": True, "left": [], "problems": [], "after_task": 2,
             "after_module": "link", "owner": "root@ctl pid 7: vnetctl run site.yml",
             "armed_at": 0, "at": 60, "play": "abc"}  # fmt: skip
    play.record(json.dumps({"earlier": [found]}))
    assert [e["msg"] for e in play.earlier] == [notes[0][1]] and notes[0][0] == "h1"
    assert notes[0][1] == earlier(found)
    assert notes[0][1].startswith("rolled back: an earlier run (`root@ctl pid 7: vnetctl run "
                                  "site.yml`) armed a rollback timer at ")  # fmt: skip
    assert notes[0][1].endswith("from its task #2 (link); the host's state equals the state "
                                "before that play")  # fmt: skip


def test_held_flock_is_what_says_a_watchdog_lives(tmp_path: Path):
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert files.watched(tmp_path)
    finally:
        os.close(fd)
    assert not files.watched(tmp_path)
