"""What the lab's tests share besides fixtures: a lab of a test's own (its name and subnet
from the allocator, vnetctl.lab.allocate), why the lab cannot run here, and an OpenSSH
call to a lab host. A module of its own, imported as
`tests.labhosts`, because a bare `from conftest import` finds whichever conftest.py
pytest loaded last (tests/vagrant/ has one too)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from vnetctl.lab import LabState, allocate_lab, lab_down, lab_up


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


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> None:
    """Wait for `condition()` to be true, checking every 50 ms; fail naming `what` when
    it is still false after `timeout` seconds. Tests wait for conditions, never sleep."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:g}s for {what}"
        time.sleep(0.05)


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
def own_lab(prefix: str, folder: Path, hosts: int, **options) -> Iterator[LabState]:
    """A lab of a test's own: named `prefix` and a number, on a subnet nothing on this
    machine holds (other labs, a second test run's, a user's own, are left alone), its
    inventory in `folder`; removed afterwards, also on failure. One a killed run left
    behind is removed by the next allocation."""
    reserved = allocate_lab(prefix, hosts)
    try:
        yield lab_up(reserved.name, hosts=hosts, inventory_path=folder / "lab.yml", **options)
    finally:
        lab_down(reserved.name)


def inventory_with(lab: LabState, path: Path, vars_of: Callable[[str], dict]) -> Path:
    """A copy of the lab's inventory at `path`, each host with `vars_of(host)` added."""
    doc = yaml.safe_load(lab.inventory_path.read_text())
    for name, host_vars in doc["all"]["children"]["lab"]["hosts"].items():
        host_vars.update(vars_of(name))
    path.write_text(yaml.safe_dump(doc))
    return path


def vm_veth(lab: LabState, host: str, name: str, mac: str, mtu: int = 1450) -> str:
    """A VM-like port on `host`: a veth whose end `name` plays the guest (its MAC, up) and
    whose end `name`p is the port a bridge takes; returns the port's name."""
    from vnetctl.lab import host_exec

    port = name + "p"
    for argv in (["ip", "link", "add", name, "type", "veth", "peer", "name", port],
                 ["ip", "link", "set", name, "address", mac, "mtu", str(mtu), "up"],
                 ["ip", "link", "set", port, "mtu", str(mtu), "up"]):  # fmt: skip
        host_exec(lab.name, host, argv, check=True)
    return port
