"""`vnetctl stats` output: text for a terminal, JSON (schema:
vnetctl/output/schema/stats.schema.json), Prometheus text for node_exporter's textfile
collector (conventions: vnetctl.output.exposition; kernel counters as `_total`)."""

from __future__ import annotations

import json
from pathlib import Path

from vnetctl.output.exposition import Exposition
from vnetctl.stats.gather import StatsReport

FORMATS = ("text", "json", "prometheus")
# kernel counter -> metric (bytes and packets in base units, each a counter)
PORT_COUNTERS = {
    "rx_packets": ("receive_packets_total", "Packets received."),
    "tx_packets": ("transmit_packets_total", "Packets sent."),
    "rx_bytes": ("receive_bytes_total", "Bytes received."),
    "tx_bytes": ("transmit_bytes_total", "Bytes sent."),
    "rx_dropped": ("receive_drops_total", "Received packets dropped."),
    "tx_dropped": ("transmit_drops_total", "Packets dropped on sending."),
    "rx_errors": ("receive_errors_total", "Receive errors."),
    "tx_errors": ("transmit_errors_total", "Transmit errors."),
}
OVS_COUNTERS = {
    "rx_packets": "receive_packets_total", "tx_packets": "transmit_packets_total",
    "rx_bytes": "receive_bytes_total", "tx_bytes": "transmit_bytes_total",
    "rx_dropped": "receive_drops_total", "tx_dropped": "transmit_drops_total",
    "rx_errors": "receive_errors_total", "tx_errors": "transmit_errors_total",
}  # fmt: skip


def check_name(report: StatsReport, name: str | None) -> str:
    return name or Path(report.inventory.split(",")[0]).stem


def render(report: StatsReport, fmt: str, name: str | None = None) -> str:
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"
    if fmt == "prometheus":
        return prometheus(report, check_name(report, name))
    return text(report)


def text(report: StatsReport) -> str:
    lines = [f"stats: {len(report.hosts)} hosts read, {len(report.errors)} not "
             f"({report.duration:.1f}s)"]  # fmt: skip
    head = f"  {'port':<16}{'state':<9}{'rx pkts':>12}{'tx pkts':>12}{'drops':>9}"
    head += f"{'errors':>8}{'flaps':>7}  bond member"
    for host in sorted(report.hosts):
        lines += ["", f"{host}:", head]
        for name, p in sorted(report.hosts[host]["ports"].items()):
            member = p.get("bond_member")
            bond = f"{p['master']}: {member['state']}, mii {member['mii_status']}" if member else ""
            flaps = "-" if p["carrier_changes"] is None else p["carrier_changes"]
            lines.append(
                f"  {name:<16}{p['operstate']:<9}{p['rx_packets']:>12}{p['tx_packets']:>12}"
                f"{p['rx_dropped'] + p['tx_dropped']:>9}{p['rx_errors'] + p['tx_errors']:>8}"
                f"{flaps:>7}  {bond}"
            )
    for host, why in sorted(report.errors.items()):
        lines += ["", f"{host}: not read: {why}"]
    return "\n".join(lines) + "\n"


def prometheus(report: StatsReport, check: str) -> str:
    out = Exposition({"check": check})
    ports = [(h, n, p) for h, s in sorted(report.hosts.items())
             for n, p in sorted(s["ports"].items())]  # fmt: skip
    for key, (metric, help_text) in PORT_COUNTERS.items():
        out.family(f"vnetctl_port_{metric}", "counter", help_text + " (kernel counter)",
                   (({"host": h, "port": n}, p[key]) for h, n, p in ports))  # fmt: skip
    out.family("vnetctl_port_carrier_changes_total", "counter",
               "Carrier changes of the port since its creation (each down or up is one).",
               (({"host": h, "port": n}, p["carrier_changes"]) for h, n, p in ports
                if p["carrier_changes"] is not None))  # fmt: skip
    out.family("vnetctl_port_up", "gauge", "1 if the port's operstate is UP.",
               (({"host": h, "port": n}, p["operstate"] == "UP") for h, n, p in ports))  # fmt: skip
    members = [(h, n, p) for h, n, p in ports if p.get("bond_member")]
    out.family("vnetctl_bond_member_up", "gauge", "1 if the bond member's MII status is up.",
               (({"host": h, "bond": p["master"] or "", "port": n},
                 p["bond_member"]["mii_status"] == "UP") for h, n, p in members))  # fmt: skip
    out.family("vnetctl_bond_member_active", "gauge", "1 if the bond member is active.",
               (({"host": h, "bond": p["master"] or "", "port": n},
                 p["bond_member"]["state"] == "ACTIVE") for h, n, p in members))  # fmt: skip
    ovs = [(h, n, i) for h, s in sorted(report.hosts.items())
           for n, i in sorted((s.get("ovs") or {}).items())]  # fmt: skip
    for key, metric in OVS_COUNTERS.items():
        out.family(f"vnetctl_ovs_interface_{metric}", "counter",
                   f"Open vSwitch interface statistics: {key}.",
                   (({"host": h, "interface": n}, i["statistics"][key]) for h, n, i in ovs
                    if key in i["statistics"]))  # fmt: skip
    out.family("vnetctl_ovs_interface_link_resets_total", "counter",
               "Open vSwitch interface link resets (carrier changes).",
               (({"host": h, "interface": n}, i["link_resets"]) for h, n, i in ovs
                if isinstance(i["link_resets"], int)))  # fmt: skip
    vxlan = [(h, d, len(p)) for h, s in sorted(report.hosts.items())
             for d, p in sorted(s.get("vxlan_peers", {}).items())]  # fmt: skip
    out.family("vnetctl_vxlan_peers", "gauge",
               "Remote VTEPs present on the VXLAN device (fdb entries, remote, remote_ip).",
               (({"host": h, "device": d}, n) for h, d, n in vxlan))  # fmt: skip
    out.family("vnetctl_stats_host_up", "gauge", "1 if the host's counters were read.",
               [({"host": h}, h in report.hosts)
                for h in sorted({*report.hosts, *report.errors})])  # fmt: skip
    out.family(
        "vnetctl_stats_last_run_timestamp_seconds",
        "gauge",
        "When the last stats pass started (Unix time).",
        [({}, report.started)],
    )
    out.family(
        "vnetctl_stats_last_run_duration_seconds",
        "gauge",
        "How long the last stats pass took.",
        [({}, report.duration)],
    )
    return out.text()
