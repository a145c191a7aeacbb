"""VXLAN meshes across full-kernel guests: the Linux dataplane with VTEPs on the underlay
(eth1), and Open vSwitch on its kernel datapath (the lab has only the userspace one),
each carrying traffic at the segment's full MTU, checked by `vnetctl mesh check` and by
pings between addresses on the overlay bridges."""

from __future__ import annotations

import json

import pytest

from tests.vagrant.guests import ROOT, report, vnetctl

pytestmark = pytest.mark.vagrant

LINUX_MESH = str(ROOT / "tests" / "vagrant" / "playbooks" / "vxlan-underlay.yml")
# playbooks/vxlan-mesh-ovs.yml suits the lab (netdev datapath, VTEP on an OVS bridge);
# this one puts the VTEPs on eth1's own address, as the kernel datapath allows
OVS_MESH = str(ROOT / "tests" / "vagrant" / "playbooks" / "vxlan-ovs-underlay.yml")


def ping_across(guests, prefix: str, bridge: str, payload: int, refuse_more: bool = True) -> None:
    """Addresses prefix.N on `bridge` of guest N; the first pings every other with DF at
    `payload` bytes (accepted) and, with refuse_more, one byte more (refused)."""
    for index, guest in enumerate(guests, start=1):
        # (an OVS bridge's own port starts down: it forwards without it, a ping needs it)
        guest.sh(f"ip addr add {prefix}.{index}/24 dev {bridge} && ip link set {bridge} up")
    first = guests[0]
    for index in range(2, len(guests) + 1):
        first.sh(f"ping -c 2 -W 5 -M do -s {payload} {prefix}.{index}")
    if refuse_more:
        too_big = first.run(f"ping -c 1 -W 5 -M do -s {payload + 1} {prefix}.2")
        assert too_big.returncode != 0


def mesh_check(capsys, playbook: str, inventory: str, *extra: str) -> dict:
    code, doc = vnetctl(capsys, "mesh", "check", playbook, "-i", inventory, *extra)
    assert code == 0, doc
    n = len({p["source"] for p in doc["pairs"]})
    assert len(doc["pairs"]) == 2 * n * (n - 1)
    assert {p["state"] for p in doc["pairs"]} == {"reachable"}
    return doc


def test_linux_mesh_on_the_underlay_carries_full_size_frames(clean, inventory, capsys):
    code, doc = vnetctl(capsys, "run", LINUX_MESH, "-i", inventory)
    assert code == 0, doc
    for guest in clean:
        peers = {g.underlay for g in clean if g is not guest}
        for vni in (100, 200):
            fdb = json.loads(guest.sh(f"bridge -j fdb show dev vxlan{vni}"))
            assert {e["dst"] for e in fdb if e["mac"] == "00:00:00:00:00:00"} == peers
            link = guest.link(f"vxlan{vni}")
            assert link["linkinfo"]["info_data"]["local"] == guest.underlay
            assert link["master"] == f"br-vx{vni}"
    code, doc = vnetctl(capsys, "run", LINUX_MESH, "-i", inventory)
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}

    mesh_check(capsys, LINUX_MESH, inventory)
    ping_across(clean, "192.168.100", "br-vx100", 1450 - 28)
    ping_across(clean, "192.168.200", "br-vx200", 8950 - 28)


def test_ovs_mesh_runs_on_the_kernel_datapath(clean, inventory, capsys):
    code, doc = vnetctl(capsys, "run", OVS_MESH, "-i", inventory)
    assert code == 0, doc
    for guest in clean:
        # the kernel datapath: one `system@ovs-system` datapath, the module loaded
        datapaths = guest.sh("ovs-appctl dpif/show")
        assert "system@ovs-system" in datapaths, (guest.name, datapaths)
        assert guest.run("test -d /sys/module/openvswitch").returncode == 0
        for bridge in ("br-ovs300", "br-ovs400"):
            kind = guest.sh(f"ovs-vsctl get bridge {bridge} datapath_type").strip()
            assert kind in ('""', "system"), (guest.name, bridge, kind)
        remotes = guest.sh(
            "ovs-vsctl --bare --columns=options find Interface type=vxlan "
            "external_ids:vnetctl-vni=300"
        )
        assert {g.underlay for g in clean if g is not guest} == {
            part.split("=")[1].strip('"')
            for part in remotes.replace(",", " ").split()
            if part.startswith("remote_ip=")
        }
    code, doc = vnetctl(capsys, "run", OVS_MESH, "-i", inventory)
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}

    mesh_check(capsys, OVS_MESH, inventory)
    # Full-size overlay frames pass. What is larger is not refused: on the OVS dataplane
    # the segment's mtu is checked against the underlay but not set on the bridge's own
    # port, which keeps OVS's default; reported, not asserted.
    ping_across(clean, "192.168.30", "br-ovs300", 1450 - 28, refuse_more=False)
    mtus = {g.name: g.link("br-ovs300")["mtu"] for g in clean}
    report(
        "vxlan-ovs-mtu.txt",
        f"OVS mesh (kernel datapath), segment VNI 300 declared mtu 1450: the bridge port "
        f"br-ovs300 has mtu {mtus} on the guests (vnetctl does not set it on OVS).",
    )
