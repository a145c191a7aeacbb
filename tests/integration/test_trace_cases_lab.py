"""Issue 29's broken layers, each found statically and with `--probe` through the command
line (`vnetctl trace ... --probe --format json`), both ways where the layer is on both
hosts: port security against a forged source MAC (port_group on a Linux bridge), a tc
class at its limit (Linux bridge), the underlay MTU below the overlay's need (Open
vSwitch). The labs are test_trace_lab's (Linux bridges, VXLAN) and test_trace_ovs_lab's
(OVS VXLAN mesh, OVS LACP bond)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from tests.integration import test_trace_lab as linux
from tests.integration import test_trace_ovs_lab as ovs
from tests.integration.test_trace_lab import MACS, class_drops, host_of
from tests.integration.test_trace_ovs_lab import dropped, trace
from tests.labhosts import wait_until
from vnetctl.cli.main import main
from vnetctl.lab.lab import in_host_argv

pytestmark = pytest.mark.lab

lab, mesh, pair = linux.lab, ovs.mesh, ovs.pair  # the labs: their modules' fixtures
lab_sh, ovs_sh = linux.sh, ovs.sh

BOTH = pytest.mark.parametrize("src", [1, 2], ids=["h1-to-h2", "h2-to-h1"])


def probed(capsys, lab, source, destination, *more) -> tuple[int, dict]:
    code, doc = trace(capsys, lab, source, destination, "--probe", *more)
    probe = doc["probe"]
    with capsys.disabled():
        print(f"\ntrace {source} -> {destination}: verdict {doc['verdict']}, timing "
              f"{doc['timing']}, probe {probe['elapsed_s']} s, load {os.getloadavg()[0]:.1f}, "
              f"seen {[(s['host'], s['device'], s['count']) for s in probe['seen']]}, "
              f"last {probe['last_seen']}", file=sys.stderr)  # fmt: skip
    return code, doc


def seen(doc) -> dict:
    return {(s["host"], s["device"]): s["count"] for s in doc["probe"]["seen"]}


@BOTH
def test_a_forged_mac_stops_at_its_port_by_port_groups_rule(lab, capsys, tmp_path, src):
    """The source port guarded by port_group, declaring another MAC than the VM sends
    from: statically the rule `ether-source` at that port; the probe's frames enter the
    port and are seen nowhere after it."""
    here, there = lab.host_names[src - 1], lab.host_names[2 - src]
    group = {"name": "web", "bridge": "br-vx100", "ports": [f"vm{src}p"],
             "port_security": True,
             "guests": [{"port": f"vm{src}p", "mac": "52:54:00:66:66:66"}]}  # fmt: skip
    playbook = tmp_path / "guard.yml"
    tasks = [{"name": "guard", "port_group": group}]
    playbook.write_text(yaml.safe_dump([{"name": "g", "hosts": here, "tasks": tasks}]))
    assert main(["run", str(playbook), "-i", str(lab.inventory_path), "--format", "json"]) == 0
    capsys.readouterr()
    try:
        code, doc = probed(capsys, lab, f"{here}:{MACS[src]}", f"{there}:vm{3 - src}")
    finally:
        lab_sh(lab, here, "nft", "delete", "table", "bridge", "vnetctl")
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (
        here,
        "security",
        f"vm{src}p",
    )
    assert hop["detail"]["rule"] == "ether-source" and MACS[src] in hop["reason"]
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert probe["last_seen"] == {"host": here, "device": f"vm{src}p", "hop": 0}
    assert seen(doc) == {(here, f"vm{src}p"): 3}


def limited(lab, capsys, src, rate, *more) -> tuple[int, dict]:
    """The trace with --probe while the destination port's only HTB class (`rate`, a
    pfifo of 2 packets) is at its limit under a flood ping from the source host."""
    here, there = lab.host_names[src - 1], lab.host_names[2 - src]
    dst, port = 3 - src, f"vm{3 - src}p"
    for argv in (f"qdisc add dev {port} root handle 1: htb default 10",
                 f"class add dev {port} parent 1: classid 1:10 htb rate {rate} ceil {rate} "
                 "burst 2k",
                 f"qdisc add dev {port} parent 1:10 handle 10: pfifo limit 2"):  # fmt: skip
        lab_sh(lab, there, "tc", *argv.split())
    flood = in_host_argv(*host_of(lab, here), ["ping", "-f", "-q", "-s", "1000", "-w", "30",
                                               f"192.168.100.{dst}"])  # fmt: skip
    try:
        with subprocess.Popen(flood, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as p:
            try:
                wait_until(lambda: class_drops(lab, there, port) > 0, 10, "drops in 1:10")
                return probed(capsys, lab, f"{here}:vm{src}", f"{there}:vm{dst}", *more)
            finally:
                p.terminate()
    finally:
        lab_sh(lab, there, "tc", "qdisc", "del", "dev", port, "root")


@BOTH
def test_a_tc_class_whose_queue_is_full_drops_the_probe_at_the_destination_port(
    lab,
    capsys,
    src,
):
    """The destination port's HTB class at its limit: its queue (pfifo, 2 packets) full
    under a flood ping and drained at 8 bit/s, so every frame more is dropped. Statically
    the class with its drops rising; the probe's frames reach the destination host's
    VXLAN device and are never sent out of the port (a packet socket sees a frame leave
    after the qdisc passed it)."""
    there, port = lab.host_names[2 - src], f"vm{3 - src}p"
    code, doc = limited(lab, capsys, src, "8bit")
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (there, "tc", port)
    assert hop["detail"]["class"] == "1:10" and hop["detail"]["drops_rising"] > 0
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert seen(doc)[(there, "vxlan100")] == 3 and (there, port) not in seen(doc)
    assert probe["last_seen"]["host"] == there and probe["last_seen"]["device"] == "vxlan100"


@BOTH
def test_an_ovs_underlay_mtu_below_the_overlays_need_is_named_and_stops_the_probe(
    mesh,
    capsys,
    src,
):
    """The source host's underlay port (eth1, br-underlay's) at 1400 under a 1450 overlay:
    statically the mtu hop with the largest packet that passes; the probe's 1450-byte
    packets (don't-fragment) leave the VM and go no further than the source host."""
    here, there = mesh.host_names[src - 1], mesh.host_names[2 - src]
    code, healthy = trace(capsys, mesh, f"{here}:ov{src}", f"{there}:ov{3 - src}")
    mtu = next(h for h in healthy["hops"] if h["layer"] == "mtu")
    underlay = mtu["device"]
    assert code == 0 and (mtu["host"], mtu["decision"], underlay) == (here, "pass", "eth1")
    ovs_sh(mesh, here, "ip", "link", "set", "dev", underlay, "mtu", "1400")
    try:
        code, doc = probed(capsys, mesh, f"{here}:ov{src}", f"{there}:ov{3 - src}")
    finally:
        ovs_sh(mesh, here, "ip", "link", "set", "dev", underlay, "mtu", "1500")
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (here, "mtu", underlay)
    assert hop["detail"]["underlay_mtu"] == 1400 and hop["detail"]["largest"] == 1350
    probe = doc["probe"]
    assert probe["delivered"] is False and probe["errors"] == {}, (hop, mtu)
    assert not any(s["host"] == there for s in probe["seen"]), probe["seen"]
    assert probe["last_seen"]["host"] == here


@BOTH
def test_an_ovs_underlay_bridges_own_mtu_does_not_limit_the_tunnel(mesh, capsys, src):
    """In the userspace datapath the tunnel's frames leave by br-underlay's port eth1, not
    through br-underlay's own tap: that tap at 1400 with eth1 at 1500 is no drop, as the
    probe shows (the trace named br-underlay's MTU before it looked at the ports)."""
    here, there = mesh.host_names[src - 1], mesh.host_names[2 - src]
    ovs_sh(mesh, here, "ip", "link", "set", "dev", "br-underlay", "mtu", "1400")
    try:
        code, doc = probed(capsys, mesh, f"{here}:ov{src}", f"{there}:ov{3 - src}")
    finally:
        ovs_sh(mesh, here, "ip", "link", "set", "dev", "br-underlay", "mtu", "1500")
    mtu = next(h for h in doc["hops"] if h["layer"] == "mtu")
    assert code == 0 and doc["verdict"] == "delivered", doc["hops"]
    assert (mtu["device"], mtu["decision"], mtu["detail"]["egress"]) == (
        "eth1",
        "pass",
        {"eth1": 1500},
    )
    assert doc["probe"]["delivered"] is True and (here, "eth1") in seen(doc)


def ovs_guard(mesh, tmp_path, host, port, state="present") -> None:
    task = {"name": "sec", "bridge": "br-ovs300", "ports": [port], "port_security": True,
            "state": state}  # fmt: skip
    play = {"name": "g", "hosts": host, "tasks": [{"name": "g", "ovs_port_group": task}]}
    playbook = tmp_path / f"guard-{state}.yml"
    playbook.write_text(yaml.safe_dump([play]))
    assert main(["run", str(playbook), "-i", str(mesh.inventory_path), "--format", "json"]) == 0


@BOTH
def test_a_forged_mac_stops_at_its_port_by_ovs_port_groups_rule(mesh, capsys, tmp_path, src):
    """On the VXLAN mesh's own bridge: libvirt's MAC for the VM (attached-mac) is not the
    one it sends from; statically the dropping rule by vnetctl's cookie at the source
    host's bridge, the probe's frames seen entering the port and nowhere after it."""
    here, there = mesh.host_names[src - 1], mesh.host_names[2 - src]
    port = f"ov{src}p"
    ovs_sh(mesh, here, "ovs-vsctl", "set", "interface", port,
           "external_ids:attached-mac=52:54:00:66:66:66")  # fmt: skip
    try:
        ovs_guard(mesh, tmp_path, here, port)
        capsys.readouterr()
        code, doc = probed(capsys, mesh, f"{here}:ov{src}", f"{there}:ov{3 - src}")
    finally:
        ovs_guard(mesh, tmp_path, here, port, "absent")
        ovs_sh(mesh, here, "ovs-vsctl", "remove", "interface", port, "external_ids",
               "attached-mac")  # fmt: skip
        capsys.readouterr()
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (
        here,
        "security",
        "br-ovs300",
    )
    assert "vnetctl's port security" in hop["reason"] and hop["detail"]["rule"]["cookie"]
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert probe["last_seen"] == {"host": here, "device": port, "hop": 0}
    assert seen(doc) == {(here, port): 3}
    code, healthy = trace(capsys, mesh, f"{here}:ov{src}", f"{there}:ov{3 - src}")
    assert code == 0, healthy["hops"]  # the group gone: delivered again


@BOTH
def test_an_ovs_bond_member_down_is_named_and_the_probe_takes_the_other(pair, capsys, src):
    """The source host's LACP bond `uplink` (eth1, eth2): one member down, the static
    trace names the other and the probe's frames leave by it and are delivered; both down,
    the bond is the dropping hop and the frames, seen entering the VM's port, leave by
    neither member (both watched: the probe watches a bond hop's members)."""
    here, there = pair.host_names[src - 1], pair.host_names[2 - src]
    path = (f"{here}:web1", f"{there}:web1")
    try:
        ovs_sh(pair, here, "ip", "link", "set", "eth2", "down")
        wait_until(lambda: ovs.bond_members(pair, here).get("eth2") == "disabled", 10, "eth2")
        code, one = probed(capsys, pair, *path)
        ovs_sh(pair, here, "ip", "link", "set", "eth1", "down")
        wait_until(lambda: ovs.bond_members(pair, here).get("eth1") == "disabled", 10, "eth1")
        code_none, none = probed(capsys, pair, *path)
    finally:
        for nic in ("eth1", "eth2"):
            ovs_sh(pair, here, "ip", "link", "set", nic, "up")
        wait_until(lambda: set(ovs.bond_members(pair, here).values()) == {"enabled"}, 30,
                   "the bond's members enabled again")  # fmt: skip
    bond = next(h for h in one["hops"] if h["layer"] == "bond")
    assert code == 0 and (bond["host"], bond["device"]) == (here, "uplink"), one["hops"]
    assert bond["detail"]["disabled"] == ["eth2"] and "member eth1" in bond["reason"]
    assert one["probe"]["delivered"] is True and one["probe"]["errors"] == {}, one["probe"]
    assert seen(one)[(here, "eth1")] == 3 and (here, "eth2") not in seen(one)
    hop = dropped(none)
    assert code_none == 2 and (hop["host"], hop["layer"], hop["device"]) == (here, "bond", "uplink")
    assert "no member enabled" in hop["reason"]
    probe = none["probe"]
    assert probe["delivered"] is False and probe["last_seen"]["host"] == here
    assert probe["last_seen"]["device"] == "web1" and set(seen(none)) == {(here, "web1")}
    watched = {w["device"] for w in probe["watched"] if w["host"] == here}
    assert {"eth1", "eth2"} <= watched, probe["watched"]


@BOTH
def test_a_tc_class_at_its_limit_that_still_passes_some_shows_per_hop_counts(lab, capsys, src):
    """A class that still passes 64 kbit/s under the flood: the static trace names it
    (drops rising); the probe's frames all reach the destination host's VXLAN device and
    at most all leave by the port. They arrive together, within a millisecond, at a queue
    the flood keeps full: in the lab none of 20 passed (4 runs, both ways), but one can
    slip in as a slot frees, so the probe is no verdict on such a class: its counts per
    hop say how many of its own frames passed, the static trace why."""
    there, port = lab.host_names[2 - src], f"vm{3 - src}p"
    code, doc = limited(lab, capsys, src, "64kbit", "--probe-count", "20")
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (there, "tc", port)
    counts = seen(doc)
    assert counts[(there, "vxlan100")] == 20 and counts.get((there, port), 0) <= 20
