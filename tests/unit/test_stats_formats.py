"""`vnetctl stats` from recorded host output: the module reads a port's counters, flaps
and bond member state from `ip -j -s -d link`; the Prometheus text follows the naming
conventions (promtool has nothing to say) with a `check` label on every series; JSON
validates against its schema."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.catalog import Catalog
from vnetctl.stats.formats import render
from vnetctl.stats.gather import StatsReport

SCHEMA = Path(__file__).parents[2] / "vnetctl" / "output" / "schema" / "stats.schema.json"
net_stats = Catalog().load("net_stats")
BOND_MEMBER = {
    "ifname": "eth2", "master": "bond0", "operstate": "UP", "link_type": "ether",
    "linkinfo": {"info_kind": "veth", "info_slave_kind": "bond",
                 "info_slave_data": {"state": "BACKUP", "mii_status": "DOWN"}},
    "stats64": {"rx": {"bytes": 1000, "packets": 10, "errors": 1, "dropped": 2},
                "tx": {"bytes": 2000, "packets": 20, "errors": 0, "dropped": 3}},
}  # fmt: skip


CLASSES = {"eth1": {"storage": {"id": "1:a4ff", "parent": "1:1", "sent_bytes": 9000,
                                "sent_packets": 6, "drops": 2, "overlimits": 4,
                                "backlog_bytes": 0, "backlog_packets": 0}}}  # fmt: skip


def report() -> StatsReport:
    port = net_stats.port(BOND_MEMBER) | {"carrier_changes": 6}
    counters = {"rx_packets": 5, "rx_dropped": 0, "tx_dropped": 1}
    ovs = {"vnet0": {"statistics": counters, "link_state": "up", "link_resets": 2,
                     "type": "", "remote_ip": None}}  # fmt: skip
    peers = {"vx100": ["10.0.0.2", "10.0.0.3"]}
    return StatsReport("inventory/prod.yml", 1_790_000_000.0, 0.5,
                       hosts={"hv1": {"ports": {"eth2": port}, "ovs": ovs, "vxlan_peers": peers,
                                         "tc_classes": CLASSES, "ovs_bridges": None,
                                         "ovs_bonds": None}},
                       errors={"hv2": "connection refused"}, unreachable={"hv2"},
                       exit_code=3)  # fmt: skip


def test_the_module_reads_counters_and_bond_member_state():
    port = net_stats.port(BOND_MEMBER)
    assert port["rx_dropped"] == 2 and port["tx_dropped"] == 3 and port["rx_errors"] == 1
    assert port["bond_member"] == {"state": "BACKUP", "mii_status": "DOWN"}
    assert port["master"] == "bond0" and port["kind"] == "veth"


def test_carrier_changes_are_read_only_for_a_kernel_device_name(tmp_path):
    (tmp_path / "eth1").mkdir()
    (tmp_path / "eth1" / "carrier_changes").write_text("7\n")
    assert net_stats.carrier_changes("eth1", str(tmp_path)) == 7
    assert net_stats.carrier_changes("../eth1", str(tmp_path)) is None
    assert net_stats.carrier_changes("gone", str(tmp_path)) is None


def test_prometheus_names_units_and_labels():
    text = render(report(), "prometheus")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}  # fmt: skip
    port = (("check", "prod"), ("host", "hv1"), ("port", "eth2"))
    assert samples[("vnetctl_port_carrier_changes_total", port)] == 6
    assert samples[("vnetctl_port_receive_drops_total", port)] == 2
    member = (("bond", "bond0"), ("check", "prod"), ("host", "hv1"), ("port", "eth2"))
    assert samples[("vnetctl_bond_member_up", member)] == 0
    assert samples[("vnetctl_bond_member_active", member)] == 0
    iface = (("check", "prod"), ("host", "hv1"), ("interface", "vnet0"))
    assert samples[("vnetctl_ovs_interface_transmit_drops_total", iface)] == 1
    assert samples[("vnetctl_stats_host_up", (("check", "prod"), ("host", "hv2")))] == 0
    vx = (("check", "prod"), ("device", "vx100"), ("host", "hv1"))
    assert samples[("vnetctl_vxlan_peers", vx)] == 2
    assert all(("check", "prod") in labels for _, labels in samples)
    assert 'check="edge"' in render(report(), "prometheus", "edge")


def test_promtool_finds_nothing_to_say_about_the_metrics():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup.sh installs Debian's prometheus"
    done = subprocess.run([promtool, "check", "metrics"], input=render(report(), "prometheus"),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done


def test_json_validates_and_text_names_flaps_and_the_host_not_read():
    jsonschema.validate(json.loads(render(report(), "json")), json.loads(SCHEMA.read_text()))
    text = render(report(), "text")
    assert "bond0: BACKUP, mii DOWN" in text and "hv2: not read: connection refused" in text


def test_vxlan_peers_present_from_fdb_remote_and_ovs_tunnels():
    links = [
        {"ifname": "vx100", "linkinfo": {"info_kind": "vxlan", "info_data": {"id": 100}}},
        {"ifname": "vx200", "linkinfo": {"info_kind": "vxlan",
                                         "info_data": {"remote": "10.0.0.9"}}},
        {"ifname": "eth1", "linkinfo": {"info_kind": "veth"}},
    ]  # fmt: skip
    fdb = [{"ifname": "vx100", "dst": "10.0.0.2"}, {"ifname": "vx100", "dst": "10.0.0.3"},
           {"ifname": "vx100", "dst": "10.0.0.2"}, {"ifname": "vx100", "dst": "0.0.0.0"},
           {"ifname": "eth1", "dst": "10.0.0.7"}]  # fmt: skip
    ovs = {"vxlan-a": {"type": "vxlan", "remote_ip": "10.0.0.4"},
           "vxlan-f": {"type": "vxlan", "remote_ip": "flow"}, "eth2": {"type": ""}}  # fmt: skip
    assert net_stats.vxlan_peers(links, fdb, ovs) == {
        "vx100": ["10.0.0.2", "10.0.0.3"], "vx200": ["10.0.0.9"],
        "vxlan-a": ["10.0.0.4"], "vxlan-f": [],
    }  # fmt: skip
