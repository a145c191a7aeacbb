"""Issue 29's broken layers on Open vSwitch (userspace datapath), each found statically and
with `--probe` through the command line, h1 -> h2 and h2 -> h1: the underlay MTU below
the overlay's need, port security (ovs_port_group) against a forged source MAC, a bond
member down and all down, a missing tunnel peer, a port in another VLAN. The labs are
test_trace_ovs_lab's (a VXLAN mesh, and two hosts with an LACP bond back to back)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from tests.integration import test_trace_ovs_lab as ovs
from tests.integration.test_trace_lab import class_drops, host_of
from tests.integration.test_trace_ovs_lab import dropped, trace
from tests.integration.trace_cases import BOTH, probed, seen
from tests.labhosts import wait_until
from vnetctl.cli.main import main
from vnetctl.lab.lab import in_host_argv

pytestmark = pytest.mark.lab

mesh, pair, ovs_sh = ovs.mesh, ovs.pair, ovs.sh  # the labs: test_trace_ovs_lab's fixtures


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
def test_a_deleted_tunnel_peer_is_named_and_the_probe_stays_on_the_source(mesh, capsys, src):
    """The source host's tunnel port to the other VTEP deleted: statically the vxlan hop's
    remote_ip; the probe's frames enter the VM's port and leave the host by nothing."""
    here, there = mesh.host_names[src - 1], mesh.host_names[2 - src]
    path = (f"{here}:ov{src}", f"{there}:ov{3 - src}")
    _, healthy = trace(capsys, mesh, *path)
    tunnel = next(h for h in healthy["hops"] if h["layer"] == "vxlan" and h["host"] == here)
    ovs_sh(mesh, here, "ovs-vsctl", "del-port", "br-ovs300", tunnel["device"])
    try:
        code, doc = probed(capsys, mesh, *path)
    finally:
        ovs.apply(mesh, ovs.MESH)  # the mesh puts its peer back
        capsys.readouterr()
    hop = dropped(doc)
    remote = tunnel["detail"]["remote"]
    assert code == 2 and (hop["host"], hop["layer"]) == (here, "vxlan") and remote in hop["reason"]
    assert hop["detail"]["setting"] == "remote_ip"
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert set(seen(doc)) == {(here, f"ov{src}p")} and probe["last_seen"]["hop"] == 0


@BOTH
def test_a_vlan_over_a_trunk_tunnel_needs_four_bytes_more_and_another_vlan_is_named(
    mesh, capsys, src
):
    """Both ports in VLAN 10: the tunnel port, a trunk, carries the frame tagged inside
    VXLAN, so a 1450-byte packet needs 1450 + 54 on the underlay: statically the mtu hop
    at eth1 (largest 1446), and the probe's frames leave by nothing (the trace said they
    passed before it counted the tag); 1446 bytes are delivered. Then the destination's
    port in VLAN 20: statically its vlan hop with its tag; the probe's frames leave the
    source host by its underlay port eth1 and are not seen at the destination port (its
    tunnel port is no device a watcher can open in the userspace datapath)."""
    here, there = mesh.host_names[src - 1], mesh.host_names[2 - src]
    mine, theirs = f"ov{src}p", f"ov{3 - src}p"
    path = (f"{here}:ov{src}", f"{there}:ov{3 - src}")
    ovs_sh(mesh, here, "ovs-vsctl", "set", "port", mine, "tag=10")
    ovs_sh(mesh, there, "ovs-vsctl", "set", "port", theirs, "tag=10")
    try:
        code_big, big = probed(capsys, mesh, *path)
        code_fits, fits = probed(capsys, mesh, *path, "--size", "1446")
        ovs_sh(mesh, there, "ovs-vsctl", "set", "port", theirs, "tag=20")
        code, doc = probed(capsys, mesh, *path, "--size", "1400")
    finally:
        for host, port in ((here, mine), (there, theirs)):
            ovs_sh(mesh, host, "ovs-vsctl", "remove", "port", port, "tag", "10", "--",
                   "remove", "port", port, "tag", "20")  # fmt: skip
    hop = dropped(big)
    assert code_big == 2 and (hop["host"], hop["layer"], hop["device"]) == (here, "mtu", "eth1")
    assert (hop["detail"]["overhead"], hop["detail"]["largest"]) == (54, 1446)
    assert big["probe"]["delivered"] is False and set(seen(big)) == {(here, mine)}
    assert code_fits == 0 and fits["probe"]["delivered"] is True, fits["hops"]
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (there, "vlan", theirs)
    assert hop["detail"] == {"tag": 20, "vlan": 10, "setting": "tag"}
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert seen(doc) == {(here, mine): 3, (here, "eth1"): 3}
    assert (probe["last_seen"]["host"], probe["last_seen"]["device"]) == (here, "eth1")


@BOTH
def test_a_tc_class_at_its_limit_on_an_ovs_port_is_named(mesh, capsys, src):
    """The destination's OVS port with an HTB class that drains nothing (8 bit/s, a pfifo
    of 2) under a flood ping (a static neighbour: ARP would not pass the class either):
    statically the class with its drops rising; the probe's frames leave the source host
    by its underlay port and are never sent out of the destination port."""
    here, there = mesh.host_names[src - 1], mesh.host_names[2 - src]
    dst, port = 3 - src, f"ov{3 - src}p"
    address = f"192.168.30.{dst}"
    ovs_sh(mesh, here, "ip", "addr", "add", f"192.168.30.{src}/24", "dev", f"ov{src}")
    ovs_sh(mesh, here, "ip", "neigh", "replace", address, "lladdr", ovs.MACS[dst], "dev",
           f"ov{src}", "nud", "permanent")  # fmt: skip
    for argv in (f"qdisc add dev {port} root handle 1: htb default 10",
                 f"class add dev {port} parent 1: classid 1:10 htb rate 8bit ceil 8bit burst 2k",
                 f"qdisc add dev {port} parent 1:10 handle 10: pfifo limit 2"):  # fmt: skip
        ovs_sh(mesh, there, "tc", *argv.split())
    flood = in_host_argv(*host_of(mesh, here), ["ping", "-f", "-q", "-s", "1000", "-w", "30",
                                                address])  # fmt: skip
    try:
        with subprocess.Popen(flood, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as p:
            try:
                wait_until(lambda: class_drops(mesh, there, port) > 0, 10, "drops in 1:10")
                code, doc = probed(capsys, mesh, f"{here}:ov{src}", f"{there}:ov{dst}")
            finally:
                p.terminate()
    finally:
        ovs_sh(mesh, there, "tc", "qdisc", "del", "dev", port, "root")
        ovs_sh(mesh, here, "ip", "addr", "flush", "dev", f"ov{src}")
        ovs_sh(mesh, here, "ip", "neigh", "flush", "dev", f"ov{src}")
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (there, "tc", port)
    assert hop["detail"]["class"] == "1:10" and hop["detail"]["drops_rising"] > 0
    probe = doc["probe"]
    assert probe["errors"] == {} and probe["delivered"] is False
    assert seen(doc) == {(here, f"ov{src}p"): 3, (here, "eth1"): 3}
    assert "bare Ethernet frame" in probe["frame"]  # the destination VM has no address
