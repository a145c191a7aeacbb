"""Universal ranges (MTU 68..65535 here) are refused on the controller: exit 1, the
playbook's file:line, and no host contacted. The host is a TCP listener that counts the
connections it gets; a valid run against it proves it would have seen one."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def vnetctl(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="120", NO_COLOR="1")
    argv = [sys.executable, "-m", "vnetctl", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


@pytest.fixture
def listener():
    """A "host" on 127.0.0.1 that accepts and closes connections, counting them."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    seen, stop = [], threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            seen.append(1)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(timeout=5)
    server.close()


@pytest.mark.parametrize(
    ("mtu", "inventory_vars"),
    [("70000", ""), ('"{{ jumbo }}"', ", jumbo: 70000")],
    ids=["literal", "rendered per host"],
)
def test_mtu_70000_exits_1_with_file_line_and_contacts_no_host(
    tmp_path, listener, mtu, inventory_vars
):
    port, seen = listener
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(
        "all:\n  hosts:\n    kvm1: {ansible_host: 127.0.0.1, ansible_port: "
        f"{port}, ansible_timeout: 2{inventory_vars}}}\n"
    )
    book = tmp_path / "book.yml"
    book.write_text(f"- hosts: all\n  tasks:\n    - link: {{name: eth1, mtu: {mtu}}}\n")
    run = vnetctl("run", str(book), "-i", str(hosts), "--retries", "0")
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"{book}:3: " in run.stderr
    assert "argument 'mtu' of module 'link': 70000 is not within 68..65535" in run.stderr
    assert seen == []

    book.write_text("- hosts: all\n  tasks:\n    - link: {name: eth1, mtu: 9000}\n")
    control = vnetctl("run", str(book), "-i", str(hosts), "--retries", "0")
    assert control.returncode == 3, control.stdout + control.stderr  # unreachable: contacted
    assert seen != []
