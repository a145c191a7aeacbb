"""Tiny guests on a lab host, for tests: define, start, wait until they answer, stop,
undefine; libvirt networks in bridge mode beside them. Everything goes through the
host's own libvirtd (`lab up --libvirt`) with `virsh`, as an operator on the host would.

    vms = LabGuests(state.name, "lab-h1")
    guest = Guest("web1", Nic(bridge="br0"), addresses=("10.50.0.21/24",))
    with vms.running(guest) as started:       # defined and started; removed afterwards
        vms.wait_ping("10.50.0.21", 30)        # from the host, bounded
        print(time.monotonic() - started)      # seconds from `virsh start` to the answer

Every wait is bounded; every name is checked (domain_xml) before it reaches a command.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from vnetctl.lab.lab import in_host_argv, restart_libvirt
from vnetctl.lab.proc import LabError, run
from vnetctl.lab.state import load_state
from vnetctl.lab.vm.domain_xml import Guest, domain_xml, libvirt_name, network_xml
from vnetctl.lab.vm.guest_init import READY
from vnetctl.lab.vm.image import GuestImage, guest_image
from vnetctl.lab.vm.libvirtd import URI, console_log, install_hook

VIRSH_TIMEOUT = 60.0
CONSOLE_IN_HOST = "/var/log/libvirt/qemu/{}.console.log"


class LabGuests:
    """The guests and libvirt networks of one lab host."""

    def __init__(self, lab: str, host: str, image: GuestImage | None = None) -> None:
        state = load_state(lab)
        if state is None or not state.libvirt:
            raise LabError(f"lab {lab!r} runs no libvirt: `vnetctl lab up --name {lab} --libvirt`")
        self.lab, self.host = lab, state.host(host)
        self.image = image or guest_image()

    # ---- running commands in the host ---------------------------------------------------
    def _argv(self, argv: list[str]) -> list[str]:
        state = load_state(self.lab)  # the sshd (whose namespaces we join) may have changed
        assert state is not None
        return in_host_argv(state, state.host(self.host.name), argv)

    def sh(
        self, script: str, check: bool = True, args: Sequence[str] = ()
    ) -> subprocess.CompletedProcess[str]:
        """Run a shell script in the host (its network and mount namespaces); `args` are
        its $1, $2... (never parsed as shell)."""
        argv = ["sh", "-c", script, "sh", *args]
        return run(self._argv(argv), check=check, timeout=VIRSH_TIMEOUT)

    def virsh(self, *args: str, input: str | None = None, check: bool = True) -> str:
        argv = self._argv(["virsh", "-q", "-c", URI, *args])
        return run(argv, input=input, check=check, timeout=VIRSH_TIMEOUT).stdout

    # ---- guests ---------------------------------------------------------------------------
    def define(self, guest: Guest) -> None:
        console = CONSOLE_IN_HOST.format(guest.name)
        xml = domain_xml(guest, str(self.image.kernel), str(self.image.initrd), console)
        self.virsh("define", "/dev/stdin", input=xml)

    def start(self, name: str) -> float:
        """Start a defined guest; the monotonic time just before `virsh start`. Its
        console log starts empty (libvirt appends to it)."""
        console_log(self.host, libvirt_name(name)).unlink(missing_ok=True)
        started = time.monotonic()
        self.virsh("start", libvirt_name(name))
        return started

    def boot(self, guest: Guest) -> float:
        self.define(guest)
        return self.start(guest.name)

    @contextmanager
    def running(self, guest: Guest) -> Iterator[float]:
        """The guest defined and started (yields the start time); destroyed and
        undefined afterwards, also when the test fails."""
        try:
            yield self.boot(guest)
        finally:
            self.remove(guest.name)

    def remove(self, name: str) -> None:
        """Destroy (if running) and undefine a guest; nothing if there is no such guest."""
        libvirt_name(name)
        if name in self.names(running=True):
            self.virsh("destroy", name)
        if name in self.names():
            self.virsh("undefine", name)

    def names(self, running: bool = False) -> list[str]:
        return self.virsh("list", "--name", *([] if running else ["--all"])).split()

    def state(self, name: str) -> str:
        return self.virsh("domstate", libvirt_name(name)).strip()

    def taps(self, name: str) -> list[str]:
        """The host-side devices of the guest's NICs (vnetN, or the tap name asked for)."""
        lines = self.virsh("domiflist", libvirt_name(name)).splitlines()
        return [line.split()[0] for line in lines if line.strip() and line.split()[0] != "-"]

    def console(self, name: str) -> str:
        """What the guest wrote on its serial console so far."""
        try:
            return console_log(self.host, libvirt_name(name)).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_console(self, name: str, marker: str = READY, timeout: float = 60.0) -> float:
        """Wait until the console holds `marker` (default: the guest's ready line); the
        monotonic time it was seen. Fails early when the guest stopped."""
        deadline = time.monotonic() + timeout
        while marker not in self.console(name):
            if time.monotonic() > deadline:
                raise LabError(f"guest {name}: no {marker!r} after {timeout:g}s; console: "
                               f"{self.console(name)[-300:]!r}")  # fmt: skip
            if name not in self.names(running=True):
                raise LabError(f"guest {name} stopped; console: {self.console(name)[-300:]!r}")
            time.sleep(0.1)
        return time.monotonic()

    def wait_ping(self, address: str, timeout: float = 60.0) -> float:
        """Ping `address` from the host until it answers (one ping at most every 0.25 s,
        in one shell in the host); the monotonic time of the answer. The host's
        neighbour entry for the address is flushed between tries: the kernel would
        otherwise ask ARP only once a second, and that would be all this can measure."""
        quoted = shlex.quote(_ipv4(address))
        script = f"""\
end=$(($(date +%s) + {max(1, round(timeout))}))
until ping -n -q -c 1 -W 0.2 {quoted} >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || exit 1
    ip neigh flush to {quoted} 2>/dev/null
done
"""
        done = run(self._argv(["sh", "-c", script]), check=False, timeout=timeout + 10)
        if done.returncode != 0:
            raise LabError(f"{address} did not answer ping from {self.host.name} in {timeout:g}s")
        return time.monotonic()

    def rss_kib(self, name: str) -> int:
        """The resident memory of the guest's qemu process (from its pidfile)."""
        pid = self.sh(f"cat /run/libvirt/qemu/{libvirt_name(name)}.pid").stdout.strip()
        status = Path(f"/proc/{int(pid)}/status").read_text()
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) if found else 0

    # ---- networks and hooks -----------------------------------------------------------
    def define_network(
        self, name: str, bridge: str, ovs: bool = False, portgroups: dict | None = None
    ) -> None:
        """Define and start a libvirt network in bridge mode on an existing bridge."""
        self.virsh("net-define", "/dev/stdin", input=network_xml(name, bridge, ovs, portgroups))
        self.virsh("net-start", name)

    def remove_network(self, name: str) -> None:
        libvirt_name(name, "network name")
        if name in self.virsh("net-list", "--name").split():
            self.virsh("net-destroy", name)
        if name in self.virsh("net-list", "--all", "--name").split():
            self.virsh("net-undefine", name)

    def install_hook(self, script: str, driver: str = "qemu") -> None:
        """Install /etc/libvirt/hooks/DRIVER and restart libvirtd, which finds hooks only
        when it starts (running guests go on running)."""
        state = load_state(self.lab)
        assert state is not None
        host = state.host(self.host.name)
        install_hook(host, partial(in_host_argv, state), script, driver)
        restart_libvirt(self.lab, [host.name])


def _ipv4(address: str) -> str:
    if not re.fullmatch(r"\d{1,3}(\.\d{1,3}){3}", address):
        raise LabError(f"bad IPv4 address {address!r}")
    return address
