"""A host's SSH connection ends with its last play of the run (issue 28): on the lab's
real sshd, a host that only the first play names has no established SSH session while
the second play runs on the others, which keep theirs (one session each, reused).
Sessions of earlier tests are left out: one whose client vanished (a host cut off in
test_confirm) stays established on the host's side until sshd gives up on it."""

from __future__ import annotations

import pytest

from vnetctl.cli.main import main
from vnetctl.lab import host_exec
from vnetctl.runner.pool import ConnectionPool

pytestmark = pytest.mark.lab

BOOK = """\
- name: every host
  hosts: all
  tasks:
    - {name: lo state, link: {name: lo, admin_state: up}}
- name: all but the first
  hosts: all:!FIRST
  tasks:
    - {name: lo state, link: {name: lo, admin_state: up}}
"""


def sessions(lab, host: str) -> set[str]:
    """The peers of established TCP sessions to the host's sshd, as its own namespace
    sees them."""
    found = host_exec(lab.name, host, ["ss", "-Htn", "state", "established", "( sport = :22 )"],
                      check=True)  # fmt: skip
    return {line.split()[-1] for line in found.stdout.splitlines()}


def test_a_host_only_in_the_first_play_has_no_session_while_the_second_runs(
    fresh_hosts, tmp_path, monkeypatch
):
    lab = fresh_hosts
    first, *others = [h.name for h in lab.hosts]
    book = tmp_path / "book.yml"
    book.write_text(BOOK.replace("FIRST", first))
    seen: list[tuple[str, int, int]] = []  # (host reused, the run's sessions on first, on host)
    get = ConnectionPool.get
    before = {h.name: sessions(lab, h.name) for h in lab.hosts}

    def ours(host: str) -> int:
        return len(sessions(lab, host) - before[host])

    async def recording(pool, host):
        if host in pool.hosts:  # a connection kept from play 1: play 2 starts here
            seen.append((host, ours(first), ours(host)))
        return await get(pool, host)

    monkeypatch.setattr(ConnectionPool, "get", recording)
    assert main(["run", str(book), "-i", str(lab.inventory_path)]) == 0
    assert sorted(h for h, _, _ in seen) == sorted(others)
    assert [(on_first, on_host) for _, on_first, on_host in seen] == [(0, 1)] * len(others)
