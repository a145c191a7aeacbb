"""Fixtures shared by the tests that run on the lab of real SSH hosts (docs/architecture.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator

import pytest

from vnetctl.lab import LabState, lab_down, lab_up, load_state, reset_hosts, start_sshd

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


@pytest.fixture(scope="session")
def lab_required() -> None:
    """Skips the test, with the reason, where the lab cannot run."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def lab3(lab_required: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabState]:
    """A 3-host lab named `it`, its inventory in a temporary directory; removed at the end."""
    inventory = tmp_path_factory.mktemp("lab") / "lab.yml"
    lab_down(LAB3_NAME)  # left over by an interrupted run
    state = lab_up(LAB3_NAME, hosts=3, inventory_path=inventory, subnet=LAB3_SUBNET)
    try:
        yield state
    finally:
        lab_down(LAB3_NAME)


@pytest.fixture
def fresh_hosts(lab3: LabState) -> LabState:
    """lab3 with every sshd running and every host's links as `lab up` made them."""
    for host in lab3.host_names:
        start_sshd(lab3.name, host)
    reset_hosts(lab3.name)
    return load_state(lab3.name) or lab3


@pytest.fixture
def lab_ssh() -> Callable[..., subprocess.CompletedProcess[str]]:
    """lab_ssh(state, host_name, command) -> CompletedProcess, over real OpenSSH."""

    def run(state: LabState, host: str, command: str) -> subprocess.CompletedProcess[str]:
        argv = ssh_argv(state, state.host(host).address, command)
        return subprocess.run(argv, capture_output=True, text=True, timeout=30)

    return run
