"""After the tier's teardown (scripts/vagrant/down.sh), nothing of it is left: no domain,
network, volume or pool in libvirt, no qemu or dnsmasq process of it, no inventory.

scripts/vagrant/tier.sh runs this file alone, after the teardown and before it stops the
libvirtd it started (virsh needs it); it sets VNETCTL_VAGRANT_PHASE=teardown. At any other
time the guests may rightly exist, so the test is skipped with that reason."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.vagrant.conftest import virsh
from tests.vagrant.guests import INVENTORY, ROOT

pytestmark = pytest.mark.vagrant

OURS = "vnetctl-vagrant-"  # domains vnetctl-vagrant-hN, the pool vnetctl-vagrant
NETWORKS = {"vnetctl-mgmt", "vnetctl-underlay", "vnetctl-team"}
POOL = os.environ.get("VNETCTL_VAGRANT_POOL", "vnetctl-vagrant")


@pytest.fixture(scope="module")
def after_teardown() -> None:
    if os.environ.get("VNETCTL_VAGRANT_PHASE") != "teardown":
        pytest.skip(
            "checks what the tier's teardown left: scripts/vagrant/tier.sh runs it after "
            "scripts/vagrant/down.sh (VNETCTL_VAGRANT_PHASE=teardown)"
        )
    if virsh("version").returncode != 0:
        pytest.fail("libvirtd is not reachable: the teardown check needs it (virsh)")


def names(*args: str) -> list[str]:
    done = virsh(*args)
    assert done.returncode == 0, done.stderr
    return [line.split()[0] for line in done.stdout.splitlines() if line.strip()]


def test_no_domain_network_volume_or_pool_of_the_tier_is_left(after_teardown):
    assert [d for d in names("list", "--all", "--name") if d.startswith(OURS)] == []
    assert sorted(NETWORKS & set(names("net-list", "--all", "--name"))) == []
    pools = names("pool-list", "--all", "--name")
    assert POOL not in pools
    for pool in pools:  # no volume of ours hides in another pool either
        if virsh("pool-info", pool).stdout.split("State:")[-1].split()[0] != "running":
            continue
        volumes = names("vol-list", pool)  # first column: the name
        assert [v for v in volumes if v.startswith(("vnetctl-", OURS))] == [], pool


def test_no_process_of_the_tier_is_left(after_teardown):
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    qemu = [line for line in out.splitlines() if "qemu" in line and f"guest={OURS}" in line]
    assert qemu == []
    dnsmasq = [
        line
        for line in out.splitlines()
        if "dnsmasq" in line and any(f"/{net}.conf" in line for net in NETWORKS)
    ]
    assert dnsmasq == []


def test_no_inventory_or_vagrant_state_is_left(after_teardown):
    assert not INVENTORY.exists()
    assert not (ROOT / "vagrant" / "known_hosts").exists()
    assert not Path(ROOT / "vagrant" / ".vagrant").exists()
