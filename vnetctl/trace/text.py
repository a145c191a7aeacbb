"""The text form of a trace: the endpoints and the frame, one hop per line, the verdict."""

from __future__ import annotations

from typing import Any

MARKS = {"drop": "X", "unknown": "?"}


def endpoint(ep: dict[str, Any]) -> str:
    extra = [f"{k} {ep[k]}" for k in ("mac", "ip", "vlan") if ep.get(k) is not None]
    if ep.get("domain"):
        extra.insert(0, f"domain {ep['domain']['name']} NIC {ep['domain']['nic']}")
    return (
        f"{ep['host']}:{ep['port']} ({ep['kind']}"
        + (", " + ", ".join(extra) if extra else "")
        + ")"
    )


def render(doc: dict[str, Any]) -> str:
    pkt = doc["packet"]
    what = " ".join(str(pkt[k]) for k in ("proto", "port") if pkt.get(k) is not None)
    lines = [
        f"trace {endpoint(doc['source'])} -> {endpoint(doc['destination'])}",
        f"  frame: {what or 'any'} size {pkt['size']} vlan {pkt.get('vlan') or '-'}",
    ]
    width = max((len(h["host"]) for h in doc["hops"]), default=0)
    for i, h in enumerate(doc["hops"]):
        mark = MARKS.get(h["decision"], " ")
        device = h["device"] or "-"
        lines.append(
            f"{mark}{i:>3} {h['host']:<{width}} {h['layer']:<8} {device:<12} "
            f"{h['decision']:<11} {h['reason']}"
        )
    verdict = doc["verdict"]
    if doc["dropped_at"] is not None:
        at = doc["hops"][doc["dropped_at"]]
        verdict += f" at hop {doc['dropped_at']} ({at['host']} {at['layer']} {at['device']})"
    lines.append(f"verdict: {verdict}")
    for host, why in sorted((doc.get("errors") or {}).items()):
        lines.append(f"not read: {host}: {why}")
    if doc.get("probe"):
        lines += probe_lines(doc["probe"])
    return "\n".join(lines) + "\n"


def probe_lines(probe: dict[str, Any]) -> list[str]:
    """What --probe saw: each watched device's count in path order, the last sighting."""
    lines = [f"probe: {probe['count']} marked frames, {probe['elapsed_s']:.2f}s"]
    for seen in probe["seen"]:
        lines.append(
            f"  seen {seen['count']:>3}  {seen['host']} {seen['device']} ({seen['layer']})"
        )
    last = probe.get("last_seen")
    where = f"{last['host']} {last['device']}" if last else "nowhere"
    lines.append(
        f"probe: {'delivered' if probe['delivered'] else 'not delivered'}, last seen {where}"
    )
    for host, why in sorted((probe.get("errors") or {}).items()):
        lines.append(f"probe not run: {host}: {why}")
    for item in probe.get("not_watched") or []:
        lines.append(f"  not watched: {item['host']} {item['device']}: {item['why']}")
    return lines
