"""The alerts on shaping and on the overlay, live: Debian's Prometheus scrapes (through
node_exporter) the textfile `vnetctl stats -i INV PLAYBOOK` writes; with the shipped
rules (their `for:` shortened to a second: scrape.short_rules) nothing fires while the
fleet is healthy. A VM's UDP beyond the `storage` class's limit raises
VnetctlTcClassDrops for that host, device and class alone; a VXLAN mesh member losing
its fdb entry for one peer raises VnetctlOverlayPeerMissing for that device and peer and
VnetctlOverlayPeerLoss (the probe of `--probe`) for the two directions of that pair on
that segment alone; the entry back and the underlay from one VTEP to another dropped
instead, VnetctlOverlayPeerLoss for that pair on both segments and no peer missing. An
Open vSwitch bond member whose link goes down raises VnetctlBondMemberDown for that bond
and member on both hosts of the cable alone; the same pass reads the bridge's mirror
(its packets rising with mirrored traffic) and flow export."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.integration.scrape import prometheus, query, short_rules, wait_for_samples
from tests.integration.shaped_vm import LIMIT, shaping_playbook, udp_load, vm_behind
from tests.integration.test_ovs_teaming import MONITORED, TEAMING, ping, start_vms
from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec
from vnetctl.lab.ovs import wire_back_to_back

pytestmark = pytest.mark.lab
MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")
# VXLAN from one VTEP dropped on the underlay (a table of this test's own; the lab goes)
UNDERLAY_DROP = """nft add table inet vnetctl_test_underlay
nft add chain inet vnetctl_test_underlay input '{{ type filter hook input priority 0; }}'
nft add rule inet vnetctl_test_underlay input ip saddr {source} udp dport 4789 drop"""


def scraping(stack: ExitStack, folder: Path, stats: list[str], series: str, what: str):
    """`stats`' textfile written, Prometheus scraping it with the short rules and holding
    a few samples of `series`, no scrape error and no alert (the fleet is healthy yet);
    returns Prometheus's namespace and what writes the textfile again."""
    textfiles = folder / "textfile"
    textfiles.mkdir()

    def write() -> None:
        out = textfiles / "vnetctl-stats.prom"
        assert main([*stats, "--format", "prometheus", "-o", str(out)]) == 0

    write()
    ns = stack.enter_context(prometheus(folder, textfiles, short_rules(folder)))
    wait_for_samples(ns, series, what)
    assert query(ns, "node_textfile_scrape_error")[0]["value"][1] == "0"
    assert query(ns, "ALERTS") == []  # healthy: no alert, not even pending
    return ns, write


def test_a_class_dropping_raises_its_alert_and_a_healthy_fleet_none(lab_required, tmp_path):
    with ExitStack() as stack:
        lab = stack.enter_context(own_lab("alr", tmp_path / "lab", hosts=2))
        inventory, (host, other) = str(lab.inventory_path), lab.host_names[:2]
        book = str(shaping_playbook(tmp_path / "shaping.yml", host))
        assert main(["run", book, "-i", inventory]) == 0
        vm = stack.enter_context(vm_behind(lab, host, other))
        drops = f'vnetctl_tc_class_drops_total{{host="{host}",class="storage"}}'
        ns, write_stats = scraping(stack, tmp_path, ["stats", "-i", inventory, book, "--name",
                                   "shaping"], drops, "the class's drops")  # fmt: skip
        classes = query(ns, "vnetctl_tc_class_sent_packets_total")
        assert sorted(c["metric"]["class"] for c in classes) == ["storage", "vm"]

        udp_load(vm, lab.host(other).namespace, 5 * LIMIT, 3)
        write_stats()
        firing = 'ALERTS{alertname="VnetctlTcClassDrops",alertstate="firing"}'
        wait_until(lambda: query(ns, firing), 60, "VnetctlTcClassDrops to fire")
        alerts = [(a["metric"]["host"], a["metric"]["device"], a["metric"]["class"])
                  for a in query(ns, firing)]  # fmt: skip
        assert alerts == [(host, "eth1", "storage")]
        assert [a["metric"]["alertname"] for a in query(ns, "ALERTS")] == ["VnetctlTcClassDrops"]


def test_a_lost_overlay_peer_raises_its_alerts_and_a_healthy_mesh_none(
    lab_required, tmp_path, capsys
):
    with ExitStack() as stack:
        lab = stack.enter_context(own_lab("ovl", tmp_path / "lab", hosts=3))
        inventory, (h1, h2, h3) = str(lab.inventory_path), lab.host_names
        assert main(["run", MESH, "-i", inventory]) == 0
        stats = ["stats", "-i", inventory, MESH, "--probe", "--probe-count", "3"]
        loss = f'vnetctl_overlay_probe_loss_ratio{{host="{h1}",peer="{h2}",vni="100"}}'
        ns, write_stats = scraping(stack, tmp_path, stats, loss, "the probe")
        assert len(query(ns, "vnetctl_overlay_probe_loss_ratio == 0")) == 12  # 6 pairs, 2 VNIs
        assert len(query(ns, "vnetctl_vxlan_peer_present == 1")) == 12  # 3 hosts, 2 devices, 2

        capsys.readouterr()
        code = main([*stats, "--format", "json"])
        vtep = json.loads(capsys.readouterr().out)["hosts"][h2]["vxlan_peers_declared"]
        assert code == 0
        vtep_h1 = next(p for p in vtep["vxlan100"] if p != lab.host(h3).address)
        assert vtep_h1 == lab.host(h1).address
        host_exec(lab.name, h2, ["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan100",
                                 "dst", vtep_h1], check=True)  # fmt: skip
        capsys.readouterr()
        assert main([*stats, "--format", "json"]) == 0  # a lossy pair is data, not an error
        doc = json.loads(capsys.readouterr().out)
        assert doc["hosts"][h2]["vxlan_peers_missing"] == {"vxlan100": [vtep_h1], "vxlan200": []}
        lossy = {(p["source"], p["target"], p["vni"]) for p in doc["overlay"]["pairs"]
                 if p["loss"] > 0}  # fmt: skip
        assert lossy == {(h1, h2, 100), (h2, h1, 100)}
        capsys.readouterr()  # --peers: the same comparison, nothing probed
        assert main(["stats", "-i", inventory, MESH, "--peers", "--format", "json"]) == 0
        compared = json.loads(capsys.readouterr().out)
        assert compared["overlay"] is None
        assert (
            compared["hosts"][h2]["vxlan_peers_missing"] == doc["hosts"][h2]["vxlan_peers_missing"]
        )
        write_stats()
        missing = 'ALERTS{alertname="VnetctlOverlayPeerMissing",alertstate="firing"}'
        lost = 'ALERTS{alertname="VnetctlOverlayPeerLoss",alertstate="firing"}'
        wait_until(lambda: query(ns, missing) and len(query(ns, lost)) == 2, 60,
                   "VnetctlOverlayPeerMissing and VnetctlOverlayPeerLoss to fire")  # fmt: skip
        assert [(a["metric"]["host"], a["metric"]["device"], a["metric"]["peer"])
                for a in query(ns, missing)] == [(h2, "vxlan100", vtep_h1)]  # fmt: skip
        pairs = [(a["metric"]["host"], a["metric"]["peer"], a["metric"]["vni"])
                 for a in query(ns, lost)]  # fmt: skip
        assert sorted(pairs) == sorted([(h1, h2, "100"), (h2, h1, "100")])
        # and the rule that needs no playbook: fewer peers than within the hour
        names = {a["metric"]["alertname"] for a in query(ns, 'ALERTS{alertstate="firing"}')}
        assert names <= {"VnetctlOverlayPeerMissing", "VnetctlOverlayPeerLoss",
                         "VnetctlOverlayPeerLost"}, names  # fmt: skip

        # the entry back, and the underlay path from h1 to h3 broken instead: every peer
        # is present, and the probe loses h1-h3 on both segments
        assert main(["run", MESH, "-i", inventory]) == 0
        host_exec(lab.name, h3, ["sh", "-c", UNDERLAY_DROP.format(
            source=lab.host(h1).address)], check=True)  # fmt: skip
        write_stats()
        both = sorted((a, b, vni) for a, b in ((h1, h3), (h3, h1)) for vni in ("100", "200"))

        def lost_pairs() -> list:
            return sorted((a["metric"]["host"], a["metric"]["peer"], a["metric"]["vni"])
                          for a in query(ns, lost))  # fmt: skip

        wait_until(lambda: lost_pairs() == both and not query(ns, missing), 60,
                   "VnetctlOverlayPeerLoss for h1-h3 alone, no peer missing")  # fmt: skip


def test_an_ovs_bond_member_down_raises_its_alert_and_mirrors_and_exports_are_read(
    lab_required, tmp_path, capsys
):
    with ExitStack() as stack:
        lab = stack.enter_context(own_lab("obd", tmp_path / "lab", hosts=2, ovs=True))
        wire_back_to_back(lab, *lab.host_names)
        inventory, (h1, h2) = str(lab.inventory_path), lab.host_names
        collector = lab.host(h2).address  # declared only: nothing listens
        book = [MONITORED, "-e", f"collector={collector}"]
        assert main(["run", TEAMING, "-i", inventory]) == 0
        start_vms(lab)  # the VM ports the mirror selects, as test_ovs_teaming's fixture does
        assert main(["run", *book, "-i", inventory]) == 0
        stats = ["stats", "-i", inventory, *book]

        def read() -> dict:
            capsys.readouterr()
            assert main([*stats, "--format", "json"]) == 0
            return json.loads(capsys.readouterr().out)["hosts"]

        def both_enabled(host: str) -> bool:
            members = read()[host]["ovs_bonds"]["uplink"]["members"]
            return set(members) == {"eth1", "eth2"} and all(m["enabled"] for m in members.values())

        wait_until(lambda: both_enabled(h1) and both_enabled(h2), 30, "both members enabled")
        before = read()[h1]
        assert {"eth1", "eth2", "br-vm", "web1", "db1"} <= set(before["ports"])
        assert "eth0" not in before["ports"]  # no task names it
        bridge = before["ovs_bridges"]["br-vm"]
        assert bridge["sflow"]["targets"] == [f"{collector}:6343"]
        assert bridge["ipfix"]["state"] == bridge["netflow"]["state"] == "present"
        span = bridge["mirrors"]["span-web"]
        assert span["src"] == span["dst"] == ["web1"] and span["output_vlan"] == 30
        assert ping(lab, h1, "web1", "192.168.10.2", count=3)
        sent = (span["tx_packets"] or 0) + 6  # 3 requests, 3 replies mirrored

        def mirrored() -> int:  # None until OVS first counts a new mirror's statistics
            return read()[h1]["ovs_bridges"]["br-vm"]["mirrors"]["span-web"]["tx_packets"] or 0

        # OVS refreshes a mirror's statistics every 5 s (stats-update-interval)
        wait_until(lambda: mirrored() >= sent, 20, "the mirror's packets to rise")

        member = f'vnetctl_bond_member_up{{host="{h1}",bond="uplink",port="eth2"}}'
        ns, write_stats = scraping(stack, tmp_path, stats, member, "the bond's members")
        assert len(query(ns, "vnetctl_bond_member_up == 1")) == 4
        assert len(query(ns, "vnetctl_ovs_flow_export_targets == 1")) == 6  # 2 hosts, 3 kinds

        host_exec(lab.name, h1, ["ip", "link", "set", "eth2", "down"], check=True)
        wait_until(lambda: not read()[h1]["ovs_bonds"]["uplink"]["members"]["eth2"]["enabled"],
                   30, "OVS to disable eth2")  # fmt: skip
        write_stats()
        down = 'ALERTS{alertname="VnetctlBondMemberDown",alertstate="firing"}'
        wait_until(lambda: len(query(ns, down)) == 2, 60, "VnetctlBondMemberDown to fire")
        alerts = sorted((a["metric"]["host"], a["metric"]["bond"], a["metric"]["port"])
                        for a in query(ns, down))  # fmt: skip
        assert alerts == [(h1, "uplink", "eth2"), (h2, "uplink", "eth2")]  # the cable's ends
        names = {a["metric"]["alertname"] for a in query(ns, 'ALERTS{alertstate="firing"}')}
        assert names == {"VnetctlBondMemberDown"}
