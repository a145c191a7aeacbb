"""The alerts on shaping and on the overlay, live: Debian's Prometheus scrapes (through
node_exporter) the textfile `vnetctl stats -i INV PLAYBOOK` writes; with the shipped
rules (their `for:` shortened to a second: scrape.short_rules) nothing fires while the
fleet is healthy. A VM's UDP beyond the `storage` class's limit raises
VnetctlTcClassDrops for that host, device and class alone; a VXLAN mesh member losing
its fdb entry for one peer raises VnetctlOverlayPeerMissing for that device and peer and
VnetctlOverlayPeerLoss (the probe of `--probe`) for the two directions of that pair on
that segment alone."""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.integration.scrape import prometheus, query, short_rules, wait_for_samples
from tests.integration.shaped_vm import LIMIT, shaping_playbook, udp_load, vm_behind
from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab
MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")


def test_a_class_dropping_raises_its_alert_and_a_healthy_fleet_none(lab_required, tmp_path):
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    with ExitStack() as stack:
        lab = stack.enter_context(own_lab("alr", tmp_path / "lab", hosts=2))
        inventory, (host, other) = str(lab.inventory_path), lab.host_names[:2]
        book = str(shaping_playbook(tmp_path / "shaping.yml", host))
        assert main(["run", book, "-i", inventory]) == 0
        vm = stack.enter_context(vm_behind(lab, host, other))

        def write_stats() -> None:
            out = textfiles / "vnetctl-stats-shaping.prom"
            assert main(["stats", "-i", inventory, book, "--format", "prometheus",
                         "-o", str(out), "--name", "shaping"]) == 0  # fmt: skip

        write_stats()
        ns = stack.enter_context(prometheus(tmp_path, textfiles, short_rules(tmp_path)))
        drops = f'vnetctl_tc_class_drops_total{{host="{host}",class="storage"}}'
        wait_for_samples(ns, drops, "the class's drops")
        assert query(ns, "node_textfile_scrape_error")[0]["value"][1] == "0"
        classes = query(ns, "vnetctl_tc_class_sent_packets_total")
        assert sorted(c["metric"]["class"] for c in classes) == ["storage", "vm"]
        assert query(ns, "ALERTS") == []  # healthy: no alert, not even pending

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
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    with ExitStack() as stack:
        lab = stack.enter_context(own_lab("ovl", tmp_path / "lab", hosts=3))
        inventory, (h1, h2, h3) = str(lab.inventory_path), lab.host_names
        assert main(["run", MESH, "-i", inventory]) == 0
        stats = ["stats", "-i", inventory, MESH, "--probe", "--probe-count", "3"]

        def write_stats() -> None:
            out = textfiles / "vnetctl-stats-mesh.prom"
            assert main([*stats, "--format", "prometheus", "-o", str(out)]) == 0

        write_stats()
        ns = stack.enter_context(prometheus(tmp_path, textfiles, short_rules(tmp_path)))
        loss = f'vnetctl_overlay_probe_loss_ratio{{host="{h1}",peer="{h2}",vni="100"}}'
        wait_for_samples(ns, loss, "the probe")
        assert len(query(ns, "vnetctl_overlay_probe_loss_ratio == 0")) == 12  # 6 pairs, 2 VNIs
        assert len(query(ns, "vnetctl_vxlan_peer_present == 1")) == 12  # 3 hosts, 2 devices, 2
        assert query(ns, "ALERTS") == []

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
