"""The Vagrant tier's guests, as the tests see them: vagrant/inventory.yml (written by
vagrant/write_inventory.py), commands over real OpenSSH with strict host keys, root via
sudo, and the host side of each NIC in libvirt (to pull a cable or reboot a domain).

Every wait is bounded in count and time."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = Path(os.environ.get("VNETCTL_VAGRANT_INVENTORY", ROOT / "vagrant" / "inventory.yml"))
VIRSH = ["virsh", "-q", "-c", "qemu:///system"]


@dataclass
class Guest:
    name: str
    address: str
    port: int
    user: str
    key_file: str
    known_hosts: str
    underlay: str
    domain: str
    nics: dict[str, dict[str, str]] = field(default_factory=dict)

    def ssh_argv(self, command: str, connect_timeout: int = 60) -> list[str]:
        return [
            "ssh", "-F", "/dev/null", "-i", self.key_file, "-p", str(self.port),
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={connect_timeout}",
            "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=6",
            # one connection per guest for all the commands of a run: a handshake costs
            # seconds under software emulation (close_master() ends it)
            "-o", "ControlMaster=auto", "-o", f"ControlPath={self.control_path}",
            "-o", "ControlPersist=120",
            f"{self.user}@{self.address}", command,
        ]  # fmt: skip

    @property
    def control_path(self) -> str:
        return f"/tmp/vnetctl-vagrant-ssh-{os.getuid()}-{self.name}-{self.address}"

    def close_master(self) -> None:
        """Ends the shared SSH connection, if one is open."""
        if Path(self.control_path).exists():
            subprocess.run(
                ["ssh", "-o", f"ControlPath={self.control_path}", "-O", "exit", self.address],
                capture_output=True, timeout=30,
            )  # fmt: skip

    def run(self, script: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`script` as root on the guest (sh -c under sudo)."""
        command = "sudo -n sh -c " + shlex.quote(script)
        return subprocess.run(
            self.ssh_argv(command), capture_output=True, text=True, timeout=timeout
        )

    def sh(self, script: str, timeout: float = 120) -> str:
        """`script` as root; its stdout. A failure fails the test with stderr."""
        done = self.run(script, timeout)
        assert done.returncode == 0, f"{self.name}: {script!r} exited {done.returncode}: " + (
            done.stderr.strip() or done.stdout.strip()
        )
        return done.stdout

    def reachable(self, connect_timeout: int = 30) -> bool:
        try:
            done = subprocess.run(
                self.ssh_argv("true", connect_timeout),
                capture_output=True, text=True, timeout=connect_timeout + 10,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0

    def links(self) -> dict[str, dict]:
        return {link["ifname"]: link for link in json.loads(self.sh("ip -j -d link show"))}

    def link(self, name: str) -> dict:
        return json.loads(self.sh(f"ip -j -d link show dev {name}"))[0]

    def ifname_of(self, nic: str) -> str:
        """The guest's name for the NIC libvirt lists as `nic` (by MAC)."""
        mac = self.nics[nic]["mac"].lower()
        for name, link in self.links().items():
            if link.get("address", "").lower() == mac:
                return name
        raise AssertionError(f"{self.name}: no interface with MAC {mac} ({nic})")

    def boot_id(self) -> str:
        return self.sh("cat /proc/sys/kernel/random/boot_id").strip()

    def reboot(self, timeout: float = 900) -> float:
        """Reboots the guest from inside and waits, bounded, until SSH answers with a new
        boot id; returns the seconds from the reboot command to that answer."""
        before = self.boot_id()
        started = time.monotonic()
        # the session may die before reboot returns: its exit status means nothing
        subprocess.run(self.ssh_argv("sudo -n systemctl reboot"), capture_output=True, timeout=60)
        self.close_master()  # the shared connection dies with the old boot
        deadline = started + timeout
        while time.monotonic() < deadline:
            time.sleep(5)
            try:
                done = self.run("cat /proc/sys/kernel/random/boot_id", timeout=30)
            except subprocess.TimeoutExpired:
                continue
            if done.returncode == 0 and done.stdout.strip() not in ("", before):
                return time.monotonic() - started
        raise AssertionError(f"{self.name} did not come back within {timeout:.0f} s")

    def set_cable(self, nic: str, up: bool) -> None:
        """Plugs or pulls the virtual cable of `nic` on the host side (libvirt link state):
        the guest sees carrier go down or up, as with a real cable."""
        mac = self.nics[nic]["mac"]  # a udp wire has no host-side device: by MAC
        state = "up" if up else "down"
        done = subprocess.run(
            [*VIRSH, "domif-setlink", self.domain, mac, state],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr


def load_guests(path: Path = INVENTORY) -> list[Guest]:
    doc = yaml.safe_load(path.read_text())
    common = doc["all"].get("vars", {})
    guests = []
    for name, hv in doc["all"]["hosts"].items():
        guests.append(
            Guest(
                name=name,
                address=hv["ansible_host"],
                port=int(hv.get("ansible_port", 22)),
                user=hv.get("ansible_user", "vagrant"),
                key_file=hv["ansible_ssh_private_key_file"],
                known_hosts=common["vnetctl_known_hosts"],
                underlay=hv["underlay_address"],
                domain=hv["vagrant_domain"],
                nics=hv.get("vagrant_nics", {}),
            )
        )
    return guests


def wait_until(what: str, check, timeout: float = 60, interval: float = 1):
    """check() until truthy, bounded by `timeout` seconds; the last value, or fails."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {value!r})")


def vnetctl(capsys, *argv: str) -> tuple[int, Any]:
    """`vnetctl ARGV --format json` in this process: (exit code, the JSON document, or
    stderr when it printed none)."""
    from vnetctl.cli.main import main

    capsys.readouterr()  # what the test printed before (a report) is not this output
    code = main([*argv, "--format", "json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if out.strip() else err


def report(name: str, text: str) -> None:
    """A finding worth reading after the run (what a reboot lost, a failover's gap):
    printed, and kept for scripts/vagrant/tier.sh to show at the end."""
    print(text)
    directory = os.environ.get("VNETCTL_VAGRANT_REPORTS")
    if directory:
        Path(directory, name).write_text(text + "\n")
