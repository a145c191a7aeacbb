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
# an HTB class's counters (modules/net_stats.py) -> metric, type, help
CLASS_METRICS = {
    "sent_bytes": ("sent_bytes_total", "counter", "Bytes the class sent."),
    "sent_packets": ("sent_packets_total", "counter", "Packets the class sent."),
    "drops": ("drops_total", "counter", "Packets the class dropped (its queue full)."),
    "overlimits": ("overlimits_total", "counter",
                   "Times the class had a packet and no tokens to send it (held, not sent)."),
    "backlog_bytes": ("backlog_bytes", "gauge", "Bytes queued in the class now."),
    "backlog_packets": ("backlog_packets", "gauge", "Packets queued in the class now."),
}  # fmt: skip


EXPORTS = ("netflow", "sflow", "ipfix")


def bond_members(report: StatsReport) -> list[tuple[dict, bool, bool]]:
    """(labels, up, active) of every bond member: Linux bonds' from their ports, Open
    vSwitch bonds' from `ovs-appctl bond/show`."""
    out = []
    for host, s in sorted(report.hosts.items()):
        for name, p in sorted(s["ports"].items()):
            if p.get("bond_member"):
                labels = {"host": host, "bond": p["master"] or "", "port": name}
                member = p["bond_member"]
                out.append((labels, member["mii_status"] == "UP", member["state"] == "ACTIVE"))
        for bond, info in sorted((s.get("ovs_bonds") or {}).items()):
            for name, m in sorted(info["members"].items()):
                out.append(({"host": host, "bond": bond, "port": name}, m["enabled"], m["active"]))
    return out


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
        lines += class_lines(report.hosts[host].get("tc_classes") or {})
        lines += ovs_lines(report.hosts[host])
    for host, why in sorted(report.errors.items()):
        lines += ["", f"{host}: not read: {why}"]
    return "\n".join(lines + overlay_lines(report)) + "\n"


def overlay_lines(report: StatsReport) -> list[str]:
    if report.overlay is None:
        return []
    lines = ["", "overlay probe (from -> to):"]
    sample = report.overlay.get("sample") or {}
    if sample.get("mode") == "sample" and sample.get("pairs_not_probed"):
        lines.append(f"  sampled: {sample['pairs_probed']} of {sample['pairs_total']} pairs "
                     f"probed (seed {sample['seed']}), {sample['pairs_not_probed']} not "
                     "probed (--full probes them all)")  # fmt: skip
    for p in report.overlay["pairs"]:
        rtt = "-" if p["rtt_ms"] is None else f"{p['rtt_ms']:.2f} ms"
        lines.append(f"  {p['source']} -> {p['target']} {segment(p)}: {p['state']}, "
                     f"loss {p['loss']:.0%}, rtt {rtt}")  # fmt: skip
    for host, s in sorted(report.hosts.items()):
        for dev, missing in sorted((s.get("vxlan_peers_missing") or {}).items()):
            if missing:
                lines.append(f"  {host} {dev}: declared peers not present: {', '.join(missing)}")
    for host, why in sorted(report.overlay["errors"].items()):
        lines.append(f"  {host}: not probed: {why}")
    for host, labels in sorted(report.overlay["not_applied"].items()):
        lines.append(f"  {host}: not applied: {', '.join(labels)}")
    return lines


def segment(pair: dict) -> str:
    return f"vlan {pair['vlan']}" if pair.get("vlan") else f"vni {pair['vni']}"


def pair_labels(pair: dict) -> dict:
    kind = "vlan" if pair.get("vlan") else "vni"
    return {"host": pair["source"], "peer": pair["target"], kind: str(pair[kind])}


def ovs_lines(stats: dict) -> list[str]:
    lines = []
    for bond, info in sorted((stats.get("ovs_bonds") or {}).items()):
        members = ", ".join(f"{n} {'enabled' if m['enabled'] else 'DISABLED'}"
                            + (" (active)" if m["active"] else "")
                            for n, m in sorted(info["members"].items()))  # fmt: skip
        lines.append(f"  OVS bond {bond}: lacp {info['lacp_status']}; {members}")
    for bridge, info in sorted((stats.get("ovs_bridges") or {}).items()):
        for name, m in sorted(info["mirrors"].items()):
            to = m["output_port"] or f"vlan {m['output_vlan']}"
            lines.append(f"  OVS mirror {name} on {bridge} to {to}: {m['tx_packets']} packets sent")
        exports = [f"{k} {', '.join(info[k]['targets'])}" for k in EXPORTS
                   if info[k].get("state") == "present"]  # fmt: skip
        if exports:
            lines.append(f"  OVS flow export of {bridge}: {'; '.join(exports)}")
    return lines


def class_lines(classes: dict) -> list[str]:
    if not classes:
        return []
    lines = [f"  {'device':<16}{'class':<16}{'id':<9}{'sent bytes':>14}{'sent pkts':>12}"
             f"{'drops':>9}{'overlimits':>12}{'backlog':>9}"]  # fmt: skip
    for dev, by_name in sorted(classes.items()):
        for name, c in sorted(by_name.items()):
            lines.append(
                f"  {dev:<16}{name:<16}{c['id']:<9}{c['sent_bytes']:>14}{c['sent_packets']:>12}"
                f"{c['drops']:>9}{c['overlimits']:>12}{c['backlog_packets']:>8}p"
            )
    return lines


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
    members = bond_members(report)
    out.family("vnetctl_bond_member_up", "gauge",
               "1 if the bond member is up (Linux: its MII status; Open vSwitch: enabled).",
               ((labels, up) for labels, up, _ in members))  # fmt: skip
    out.family("vnetctl_bond_member_active", "gauge", "1 if the bond member is active.",
               ((labels, active) for labels, _, active in members))  # fmt: skip
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
    bridges = [(h, b, i) for h, s in sorted(report.hosts.items())
               for b, i in sorted((s.get("ovs_bridges") or {}).items())]  # fmt: skip
    mirrors = [({"host": h, "bridge": b, "mirror": m}, i) for h, b, info in bridges
               for m, i in sorted(info["mirrors"].items())]  # fmt: skip
    for key, unit in (("tx_packets", "packets"), ("tx_bytes", "bytes")):
        out.family(f"vnetctl_ovs_mirror_transmit_{unit}_total", "counter",
                   f"What the Open vSwitch mirror sent to its output ({unit}).",
                   ((labels, i[key]) for labels, i in mirrors if i[key] is not None))  # fmt: skip
    out.family("vnetctl_ovs_flow_export_targets", "gauge",
               "Collectors the Open vSwitch bridge exports flows to, per protocol (0: none).",
               (({"host": h, "bridge": b, "protocol": kind}, len(info[kind].get("targets") or []))
                for h, b, info in bridges for kind in EXPORTS))  # fmt: skip
    vxlan = [(h, d, len(p)) for h, s in sorted(report.hosts.items())
             for d, p in sorted(s.get("vxlan_peers", {}).items())]  # fmt: skip
    out.family("vnetctl_vxlan_peers", "gauge",
               "Remote VTEPs present on the VXLAN device (fdb entries, remote, remote_ip).",
               (({"host": h, "device": d}, n) for h, d, n in vxlan))  # fmt: skip
    classes = [({"host": h, "device": d, "class": n, "classid": c["id"]}, c)
               for h, s in sorted(report.hosts.items())
               for d, named in sorted((s.get("tc_classes") or {}).items())
               for n, c in sorted(named.items())]  # fmt: skip
    for key, (metric, kind, help_text) in CLASS_METRICS.items():
        out.family(f"vnetctl_tc_class_{metric}", kind, f"HTB class: {help_text}",
                   ((labels, c[key]) for labels, c in classes))  # fmt: skip
    declared = [(h, d, peers, s.get("vxlan_peers") or {}) for h, s in sorted(report.hosts.items())
                for d, peers in sorted((s.get("vxlan_peers_declared") or {}).items())]  # fmt: skip
    out.family("vnetctl_vxlan_peers_declared", "gauge",
               "Remote VTEPs the playbook's mesh declares on the device (stats --probe).",
               (({"host": h, "device": d}, len(peers)) for h, d, peers, _ in declared))  # fmt: skip
    out.family("vnetctl_vxlan_peer_present", "gauge",
               "1 if the declared peer is present on the device (an fdb entry, a tunnel).",
               (({"host": h, "device": d, "peer": p}, p in (present.get(d) or []))
                for h, d, peers, present in declared for p in peers))  # fmt: skip
    pairs = (report.overlay or {}).get("pairs") or []
    out.family("vnetctl_overlay_probe_loss_ratio", "gauge",
               "Share of the probe's pings across the overlay to the peer that were lost.",
               ((pair_labels(p), p["loss"]) for p in pairs if p["loss"] is not None))  # fmt: skip
    out.family("vnetctl_overlay_probe_rtt_seconds", "gauge",
               "Mean round trip of the probe's pings across the overlay to the peer.",
               ((pair_labels(p), p["rtt_ms"] / 1000) for p in pairs
                if p["rtt_ms"] is not None))  # fmt: skip
    out.family("vnetctl_overlay_probe_reachable", "gauge",
               "1 if full-size frames cross the overlay to the peer (0: unreachable, or "
               "only small frames pass: an MTU problem).",
               ((pair_labels(p), p["state"] == "reachable") for p in pairs))  # fmt: skip
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
