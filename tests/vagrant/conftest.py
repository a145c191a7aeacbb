"""The Vagrant tier's tests (README, "The Vagrant tier"): full-kernel Debian 12 guests
under libvirt, reached through vagrant/inventory.yml.

They are marked `vagrant` and run by scripts/vagrant/tier.sh once the guests are up.
Anywhere else (./scripts/test.sh, CI) each is skipped with the reason: no inventory, not
root, or which guest does not answer. The tier sets VNETCTL_VAGRANT_REQUIRED=1, and then
guests that are not up fail the tests instead of skipping them."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from functools import cache

import pytest

from tests.vagrant.guests import INVENTORY, Guest, load_guests

TIER = "run scripts/vagrant/tier.sh (README, 'The Vagrant tier')"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "vagrant: needs the Vagrant tier's full-kernel guests (scripts/vagrant/tier.sh)"
    )


@cache
def unavailable() -> str | None:
    """Why the tier's guests cannot be used now, or None when they can."""
    if not INVENTORY.is_file():
        return f"the Vagrant tier's guests are not up (no {INVENTORY}): {TIER}"
    if os.geteuid() != 0:
        return "the Vagrant tier's tests need root (libvirt's qemu:///system)"
    try:
        guests = load_guests()
    except (OSError, KeyError, TypeError, ValueError) as exc:
        return f"{INVENTORY} is not a Vagrant tier inventory ({exc}): {TIER}"
    silent = [g.name for g in guests if not g.reachable()]
    if silent:
        return f"Vagrant guests {', '.join(silent)} do not answer over SSH: {TIER}"
    return None


@pytest.fixture(scope="session")
def guests() -> Iterator[list[Guest]]:
    reason = unavailable()
    if reason:
        if os.environ.get("VNETCTL_VAGRANT_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    found = load_guests()
    try:
        yield found
    finally:
        for guest in found:
            guest.close_master()


@pytest.fixture(scope="session")
def inventory(guests: list[Guest]) -> str:
    return str(INVENTORY)


@pytest.fixture(scope="session")
def two(guests: list[Guest]) -> tuple[Guest, Guest]:
    """h1 and h2: the pair cabled back to back (eth4, eth5) as well."""
    if len(guests) < 2:
        pytest.fail(f"the Vagrant tier's tests need 2 guests or more, not {len(guests)}")
    return guests[0], guests[1]


# What the tests make on a guest, removed so each test starts from the box's networking:
# the boot configuration vnetctl wrote (README, "Boot persistence": its files, and
# networkd reloaded when a boot gave it some of them, so neither a reboot nor networkd
# brings an earlier test's devices back; a reload networkd does not need is not asked
# for, as it could touch the management NIC), every bridge, bond, VLAN, VXLAN, dummy and
# IFB device, every OVS bridge, the root qdisc of the spare NICs, and MTU 1500, up, no
# address on eth2..eth5.
RESET = r"""
loaded=$(grep -l vnetctl /run/systemd/netif/links/* 2>/dev/null)
rm -rf /etc/systemd/network/10-vnetctl-* /etc/vnetctl/boot.d
rm -f /etc/systemd/network/*.network.d/10-vnetctl-*.conf \
    /etc/systemd/system/vnetctl-reapply.service \
    /etc/systemd/system/multi-user.target.wants/vnetctl-reapply.service
rmdir /etc/systemd/network/*.network.d 2>/dev/null || true
[ -z "$loaded" ] || networkctl reload || true
for kind in bridge bond vlan vxlan dummy ifb; do
    for dev in $(ip -o link show type $kind | awk -F': ' '{print $2}' | cut -d@ -f1); do
        ip link del "$dev" 2>/dev/null || true
    done
done
for br in $(ovs-vsctl list-br); do ovs-vsctl --if-exists del-br "$br"; done
for nic in eth2 eth3 eth4 eth5; do
    ip link show "$nic" >/dev/null 2>&1 || continue
    tc qdisc del dev "$nic" root 2>/dev/null || true
    ip addr flush dev "$nic"
    ip link set dev "$nic" mtu 1500 up
done
"""


@pytest.fixture
def clean(guests: list[Guest]) -> list[Guest]:
    """Every guest as the box booted it, networking-wise (see RESET)."""
    for guest in guests:
        guest.sh(RESET)
    return guests


@pytest.fixture
def on_each() -> Callable[[list[Guest], str], list[str]]:
    """on_each(guests, script) -> each guest's stdout, in order."""

    def run(guests: list[Guest], script: str) -> list[str]:
        return [g.sh(script) for g in guests]

    return run


def virsh(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virsh", "-q", "-c", "qemu:///system", *args],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
