"""`vnetctl stats PLAYBOOK --probe`: the overlay probe's loss and round trip per pair
(read from `ping -q`'s summary on the host), the peers each mesh task declares per
device (vxlan_mesh's own peer_devices()), compared with those present, and their
Prometheus gauges."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import jsonschema
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.catalog import Catalog
from vnetctl.cli.main import main
from vnetctl.fleet.mesh.sample import PairSample
from vnetctl.playbook.render import HostTask
from vnetctl.stats.declared import declared
from vnetctl.stats.formats import render
from vnetctl.stats.gather import StatsReport
from vnetctl.stats.overlay import compare_peers, peer_devices

CATALOG = Catalog()
probe = CATALOG.load("overlay_probe")
SCHEMA = Path(__file__).parents[2] / "vnetctl" / "output" / "schema" / "stats.schema.json"
MESH = {"name": "tenants", "segments": [{"vni": 100, "bridge": "br-vx100"}],
        "local": "10.0.0.1", "peers": ["10.0.0.3", "10.0.0.2"]}  # fmt: skip


def plan(host: str, args: dict) -> SimpleNamespace:
    return SimpleNamespace(hosts=[host], tasks={host: [HostTask(0, "m", "vxlan_mesh", args, None)]})


def test_loss_and_round_trip_from_pings_summary():
    ok = ("--- 169.254.0.2 ping statistics ---\n"
          "5 packets transmitted, 4 received, 20% packet loss, time 811ms\n"
          "rtt min/avg/max/mdev = 0.061/0.118/0.201/0.040 ms\n")  # fmt: skip
    assert probe.ping_summary(ok) == (0.2, 0.118)
    lost = "5 packets transmitted, 0 received, +5 errors, 100% packet loss, time 820ms\n"
    assert probe.ping_summary(lost) == (1.0, None)
    assert probe.ping_summary("") == (1.0, None)  # killed, or printed nothing


def test_a_verdict_carries_the_small_pings_loss_and_round_trip():
    target = {"host": "h2", "vni": 100, "mtu": 1450}
    summary = (
        "2 packets transmitted, 2 received, 0% packet loss\nrtt min/avg/max/mdev = 1/2.5/3/0 ms"
    )
    found = probe._verdict(target, (True, summary), (False, ""))
    assert found == {"host": "h2", "vni": 100, "state": "mtu-broken", "mtu": 1450,
                     "loss": 0.0, "rtt_ms": 2.5}  # fmt: skip


def test_the_peers_a_mesh_declares_per_device_linux_and_ovs():
    assert peer_devices([plan("h1", MESH)], CATALOG) == {
        "h1": {"vxlan100": ["10.0.0.2", "10.0.0.3"]}}  # fmt: skip
    ovs = peer_devices([plan("h1", dict(MESH, dataplane="ovs"))], CATALOG)["h1"]
    assert sorted(ovs.values()) == [["10.0.0.2"], ["10.0.0.3"]]
    assert all(name.startswith("vx100-") and len(name) <= 15 for name in ovs)
    # rendered, not yet expanded: the device is declared, its peers not yet known
    rendered = {k: v for k, v in MESH.items() if k not in ("local", "peers")}
    assert declared([plan("h1", rendered)], CATALOG)["h1"].vxlan == {"vxlan100"}


def report() -> StatsReport:
    host = {"ports": {}, "ovs": None, "tc_classes": {}, "ovs_bridges": None, "ovs_bonds": None,
            "vxlan_peers": {"vxlan100": ["10.0.0.3"]}}  # fmt: skip
    pairs = [{"source": "h1", "target": "h2", "vni": 100, "state": "unreachable", "mtu": 1450,
              "loss": 1.0, "rtt_ms": None},
             {"source": "h1", "target": "h3", "vni": 100, "state": "reachable", "mtu": 1450,
              "loss": 0.0, "rtt_ms": 0.25}]  # fmt: skip
    out = StatsReport("inventory/prod.yml", 1_790_000_000.0, 0.5, hosts={"h1": host})
    sample = PairSample(1, seed=7).describe(probed=2, total=6)  # h1's ring of h1..h3
    out.overlay = {"pairs": pairs, "sample": sample, "errors": {}, "not_applied": {}}
    compare_peers(out, peer_devices([plan("h1", MESH)], CATALOG))
    return out


def test_declared_peers_against_present_and_the_probe_as_gauges():
    doc = json.loads(render(report(), "json"))
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert doc["hosts"]["h1"]["vxlan_peers_missing"] == {"vxlan100": ["10.0.0.2"]}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(render(report(), "prometheus"))
               for s in f.samples}  # fmt: skip
    dev = (("check", "prod"), ("device", "vxlan100"), ("host", "h1"))
    assert samples[("vnetctl_vxlan_peers_declared", dev)] == 2
    assert samples[("vnetctl_vxlan_peer_present", (*dev, ("peer", "10.0.0.2")))] == 0
    assert samples[("vnetctl_vxlan_peer_present", (*dev, ("peer", "10.0.0.3")))] == 1
    h2 = (("check", "prod"), ("host", "h1"), ("peer", "h2"), ("vni", "100"))
    h3 = (("check", "prod"), ("host", "h1"), ("peer", "h3"), ("vni", "100"))
    assert samples[("vnetctl_overlay_probe_loss_ratio", h2)] == 1.0
    assert samples[("vnetctl_overlay_probe_reachable", h2)] == 0
    assert samples[("vnetctl_overlay_probe_rtt_seconds", h3)] == 0.00025
    assert ("vnetctl_overlay_probe_rtt_seconds", h2) not in samples
    text = render(report(), "text")
    assert "h1 -> h2 vni 100: unreachable, loss 100%, rtt -" in text
    assert "h1 vxlan100: declared peers not present: 10.0.0.2" in text
    assert "sampled: 2 of 6 pairs probed (seed 7), 4 not probed" in text


def test_probe_without_a_playbook_is_refused_before_any_host(tmp_path, capsys):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    h1: {ansible_host: 192.0.2.1}\n")
    assert main(["stats", "-i", str(inventory), "--probe"]) == 1
    assert "--probe and --peers need PLAYBOOK" in capsys.readouterr().err
