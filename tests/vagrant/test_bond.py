"""Linux bonds on full-kernel guests (issue 15's live tests): active-backup failing over
while traffic flows when the active member's cable is pulled, and 802.3ad negotiated
between two guests over two back-to-back wires, surviving the loss of one."""

from __future__ import annotations

import re
import threading
import time

import pytest

from tests.vagrant.guests import ROOT, report, vnetctl, wait_until

pytestmark = pytest.mark.vagrant

PLAYBOOKS = ROOT / "tests" / "vagrant" / "playbooks"
PING_INTERVAL = 0.2  # seconds
PING_COUNT = 75  # 15 s of traffic
MAX_LOST = 10  # 2 s: miimon 100 ms finds a dead link at once; slack for emulation


def bonding(guest, bond: str) -> str:
    return guest.sh(f"cat /proc/net/bonding/{bond}")


def active_slave(guest, bond: str) -> str:
    return guest.sh(f"cat /sys/class/net/{bond}/bonding/active_slave").strip()


def ping_in_background(guest, address: str) -> tuple[threading.Thread, dict]:
    """PING_COUNT pings at PING_INTERVAL in a thread; the result lands in the dict."""
    result: dict = {}

    def run() -> None:
        result["done"] = guest.run(
            f"ping -n -i {PING_INTERVAL} -c {PING_COUNT} -W 1 {address}",
            timeout=PING_COUNT * PING_INTERVAL + 60,
        )

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


def lost(ping_output: str) -> int:
    match = re.search(r"(\d+) packets transmitted, (\d+) received", ping_output)
    assert match, ping_output
    return int(match[1]) - int(match[2])


def test_active_backup_fails_over_under_traffic(clean, inventory, capsys):
    code, doc = vnetctl(capsys, "run", str(PLAYBOOKS / "bond-active-backup.yml"), "-i", inventory)
    assert code == 0, doc
    h1, h2 = clean[0], clean[1]
    for index, guest in enumerate((h1, h2), start=1):
        guest.sh(f"ip addr add 192.168.60.{index}/24 dev bond0 && ip link set bond0 up")
        assert active_slave(guest, "bond0") == "eth2"
    h1.sh("ping -c 3 -W 5 192.168.60.2")

    thread, result = ping_in_background(h1, "192.168.60.2")
    try:
        time.sleep(4)  # traffic flows before the cable goes
        h1.set_cable("eth2", up=False)
        wait_until("failover to eth3", lambda: active_slave(h1, "bond0") == "eth3", 30)
        thread.join(PING_COUNT * PING_INTERVAL + 90)
    finally:
        h1.set_cable("eth2", up=True)
    done = result["done"]
    missing = lost(done.stdout)
    report(
        "bond-failover.txt",
        f"active-backup failover on {h1.name} (cable of eth2 pulled under traffic): "
        f"{missing} of {PING_COUNT} pings lost at {PING_INTERVAL} s intervals",
    )
    assert missing <= MAX_LOST, done.stdout
    eth2 = bonding(h1, "bond0").split("Slave Interface: eth2")[1].split("\n\n")[0]
    assert int(re.search(r"Link Failure Count: (\d+)", eth2)[1]) >= 1


def aggregator(guest, bond: str) -> tuple[str, set[str], str]:
    """(active aggregator id, the members in it, the partner's MAC) from /proc."""
    text = bonding(guest, bond)
    active = re.search(r"Active Aggregator Info:\s+Aggregator ID: (\d+).*?Partner Mac "
                       r"Address: ([0-9a-f:]+)", text, re.S)  # fmt: skip
    if not active:
        return "", set(), ""
    members = set()
    for block in text.split("Slave Interface: ")[1:]:
        name = block.split("\n", 1)[0].strip()
        agg = re.search(r"Aggregator ID: (\d+)", block)
        if agg and agg[1] == active[1] and "MII Status: up" in block:
            members.add(name)
    return active[1], members, active[2]


def test_lacp_between_two_guests_aggregates_both_wires_and_survives_one(
    clean, two, inventory, capsys
):
    h1, h2 = two
    # A virtio NIC reports no speed or duplex unless told, and 802.3ad leaves a port
    # without full duplex out of LACP: the "cable" says 10G full duplex, as a real one would.
    for guest in two:
        guest.sh("for nic in eth4 eth5; do ethtool -s $nic speed 10000 duplex full; done")
    code, doc = vnetctl(
        capsys, "run", str(PLAYBOOKS / "bond-lacp.yml"), "-i", inventory,
        "--limit", f"{h1.name},{h2.name}",
    )  # fmt: skip
    assert code == 0, doc
    macs = {g.name: g.link("bond1")["address"] for g in two}
    for guest, peer in ((h1, h2), (h2, h1)):
        agg = wait_until(
            f"{guest.name}: both wires in one aggregator with {peer.name}",
            lambda g=guest, p=peer: (lambda a: a if a[1] == {"eth4", "eth5"} and
                                     a[2] == macs[p.name] else None)(aggregator(g, "bond1")),
            90, interval=3,
        )  # fmt: skip
        assert agg[2] == macs[peer.name]
    for index, guest in enumerate(two, start=1):
        guest.sh(f"ip addr add 192.168.61.{index}/24 dev bond1")
    h1.sh("ping -c 3 -W 5 192.168.61.2")

    h1.set_cable("eth4", up=False)
    try:
        wait_until(
            "one wire left in the aggregator",
            lambda: aggregator(h2, "bond1")[1] == {"eth5"},
            60, interval=3,
        )  # fmt: skip
        h1.sh("ping -c 3 -W 5 192.168.61.2")
    finally:
        h1.set_cable("eth4", up=True)
    wait_until("both wires back", lambda: aggregator(h1, "bond1")[1] == {"eth4", "eth5"}, 90, 3)
