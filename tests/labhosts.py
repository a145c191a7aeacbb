"""What the lab's tests share besides fixtures: the test lab's name and subnet, why the lab
cannot run here, and an OpenSSH call to a lab host. A module of its own, imported as
`tests.labhosts`, because a bare `from conftest import` finds whichever conftest.py
pytest loaded last (tests/vagrant/ has one too)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from vnetctl.lab import LabState, lab_down, lab_up

# Not the default 10.213.0.0/16, so the tests can run beside a lab someone brought up by
# hand; two test runs at once on one machine each need their own (VNETCTL_TEST_LAB=name
# VNETCTL_TEST_SUBNET=10.x.y.0/24).
LAB3_NAME = os.environ.get("VNETCTL_TEST_LAB", "it")
LAB3_SUBNET = os.environ.get("VNETCTL_TEST_SUBNET", "10.214.0.0/24")


def lab_skip_reason() -> str | None:
    """Why lab tests cannot run on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, mounts, sshd)"
    if not os.access("/usr/sbin/sshd", os.X_OK):
        return "the lab needs OpenSSH's /usr/sbin/sshd (apt-get install openssh-server)"
    for tool in ("ip", "tc", "unshare", "nsenter", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            return f"the lab needs {tool}"
    return None


def ssh_argv(state: LabState, address: str, command: str) -> list[str]:
    """A real OpenSSH client call to a lab host, checking its host key strictly."""
    return [
        "ssh", "-F", "/dev/null",
        "-i", str(state.key_path),
        "-o", f"UserKnownHostsFile={state.known_hosts_path}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=5",
        f"root@{address}", command,
    ]  # fmt: skip


@contextmanager
def own_lab(name: str, subnet: str, folder: Path, hosts: int, **options) -> Iterator[LabState]:
    """A lab of a test module's own (its name and subnet, the inventory in `folder`): one
    an interrupted run left goes first, and it is removed afterwards, also on failure."""
    lab_down(name)
    state = lab_up(name, hosts=hosts, subnet=subnet, inventory_path=folder / "lab.yml", **options)
    try:
        yield state
    finally:
        lab_down(name)
