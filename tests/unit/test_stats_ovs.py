"""`vnetctl stats` on Open vSwitch: each bond member's state from `ovs-appctl bond/show`
(fixtures/ovs/: its output on a lab host, LACP negotiated over a back-to-back cable, then
with eth2 down), as the same gauges a Linux bond member gets (so VnetctlBondMemberDown
covers both); each bridge's mirrors with what they sent, and its flow export, as
ovs_bridge reads them; with a playbook, only the bridges and bonds it names."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import jsonschema
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.catalog import Catalog
from vnetctl.stats.declared import Declared
from vnetctl.stats.formats import render
from vnetctl.stats.gather import StatsReport, select

CATALOG = Catalog()
net_stats = CATALOG.load("net_stats")
FIXTURES = Path(__file__).parent / "fixtures" / "ovs"
SCHEMA = Path(__file__).parents[2] / "vnetctl" / "output" / "schema" / "stats.schema.json"
ABSENT = {"state": "absent"}
SPAN = {"select_all": False, "src": ["web1"], "dst": ["web1"], "vlans": [],
        "output_port": None, "output_vlan": 30}  # fmt: skip
CONFIG = {"bridges": {"br-vm": {
    "mirrors": {"span-web": SPAN}, "netflow": ABSENT, "ipfix": ABSENT,
    "sflow": {"state": "present", "targets": ["10.0.0.9:6343"], "sampling": 1, "polling": 1,
              "header": None, "agent": None}}}}  # fmt: skip


def test_bond_members_from_ovs_appctl():
    healthy = net_stats.parse_bonds((FIXTURES / "ovs_bond_show.negotiated.txt").read_text())
    assert healthy["uplink"]["lacp_status"] == "negotiated"
    assert {n: m["enabled"] for n, m in healthy["uplink"]["members"].items()} == {
        "eth1": True, "eth2": True}  # fmt: skip
    down = net_stats.parse_bonds((FIXTURES / "ovs_bond_show.member_down.txt").read_text())
    assert down["uplink"]["members"] == {
        "eth1": {"enabled": True, "active": True, "may_enable": True},
        "eth2": {"enabled": False, "active": False, "may_enable": False}}  # fmt: skip
    older = "---- b0 ----\nlacp_status: off\n\nslave eth1: enabled\n\tactive slave\n"
    assert net_stats.parse_bonds(older)["b0"]["members"]["eth1"]["active"] is True


def test_mirrors_with_what_they_sent_and_flow_export():
    bridges = net_stats.ovs_bridges(CONFIG, {"span-web": {"tx_packets": 16, "tx_bytes": 1344}})
    assert bridges["br-vm"]["mirrors"]["span-web"] == dict(SPAN, tx_packets=16, tx_bytes=1344)
    assert bridges["br-vm"]["sflow"]["targets"] == ["10.0.0.9:6343"]
    fresh = net_stats.ovs_bridges(CONFIG, {"span-web": {}})  # not yet counted by OVS
    assert fresh["br-vm"]["mirrors"]["span-web"]["tx_packets"] is None
    assert net_stats.ovs_bridges(None, None) is None  # no OVS


def host() -> dict:
    down = net_stats.parse_bonds((FIXTURES / "ovs_bond_show.member_down.txt").read_text())
    bridges = net_stats.ovs_bridges(CONFIG, {"span-web": {"tx_packets": 16, "tx_bytes": 1344}})
    return {"ports": {}, "ovs": {}, "vxlan_peers": {}, "tc_classes": {}, "ovs_bridges": bridges,
            "ovs_bonds": down}  # fmt: skip


def test_ovs_bond_members_mirrors_and_exports_as_gauges_json_and_text():
    report = StatsReport("inventory/prod.yml", 1_790_000_000.0, 0.5, hosts={"hv1": host()})
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(render(report, "prometheus"))
               for s in f.samples}  # fmt: skip
    member = (("bond", "uplink"), ("check", "prod"), ("host", "hv1"))
    assert samples[("vnetctl_bond_member_up", (*member, ("port", "eth2")))] == 0
    assert samples[("vnetctl_bond_member_up", (*member, ("port", "eth1")))] == 1
    assert samples[("vnetctl_bond_member_active", (*member, ("port", "eth1")))] == 1
    mirror = (("bridge", "br-vm"), ("check", "prod"), ("host", "hv1"), ("mirror", "span-web"))
    assert samples[("vnetctl_ovs_mirror_transmit_packets_total", mirror)] == 16
    assert samples[("vnetctl_ovs_mirror_transmit_bytes_total", mirror)] == 1344
    export = (("bridge", "br-vm"), ("check", "prod"), ("host", "hv1"))
    assert samples[("vnetctl_ovs_flow_export_targets", (*export, ("protocol", "sflow")))] == 1
    assert samples[("vnetctl_ovs_flow_export_targets", (*export, ("protocol", "ipfix")))] == 0
    jsonschema.validate(json.loads(render(report, "json")), json.loads(SCHEMA.read_text()))
    text = render(report, "text")
    assert "OVS bond uplink: lacp negotiated; eth1 enabled (active), eth2 DISABLED" in text
    assert "OVS mirror span-web on br-vm to vlan 30: 16 packets sent" in text
    assert "OVS flow export of br-vm: sflow 10.0.0.9:6343" in text


def test_with_a_playbook_only_the_bridges_and_bonds_it_names():
    run = SimpleNamespace(catalog=CATALOG)
    kept = select(run, dict(host(), ovs_bonds={"uplink": {}, "other": {}}),
                  Declared(ports={"br-vm", "uplink"}))  # fmt: skip
    assert set(kept["ovs_bridges"]) == {"br-vm"} and set(kept["ovs_bonds"]) == {"uplink"}
    assert select(run, host(), Declared())["ovs_bridges"] == {}
