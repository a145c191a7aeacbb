"""`vnetctl trace --format html`: the path as a picture, one self-contained page.

    render(trace: dict) -> str

Hosts side by side (the source host left, the destination right, hosts in between in
path order), each a column of its hops, the VM's port at the top and the underlay at the
bottom: the source host's hops run down its column, the destination's up (its column is
the path reversed), each hop numbered in path order. A hop is a box with its layer,
device, decision and reason (and its detail); the hop that drops the packet is red; with
a probe, the devices that saw its frames say how many, and the point where it was last
seen is marked. Every name and value is escaped (they come from the hosts); decisions
become CSS classes only from a fixed list.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

DECISIONS = {"pass", "drop", "forward", "flood", "encapsulate", "decapsulate", "deliver",
             "unknown"}  # fmt: skip
VERDICTS = {"delivered", "dropped", "unknown"}

STYLE = """
* { box-sizing: border-box; }
body { font: 13px/1.35 system-ui, sans-serif; margin: 0; padding: 12px 18px; color: #1d2733;
       background: #f4f6f9; }
h1 { font-size: 18px; margin: 0 0 4px; }
.summary { margin: 0 0 2px; color: #44515f; }
.verdict { display: inline-block; padding: 1px 9px; border-radius: 10px; color: #fff;
           font-weight: 600; }
.v-delivered { background: #2e7d32; } .v-dropped { background: #c62828; }
.v-unknown { background: #6b7785; }
.hosts { display: grid; gap: 28px; margin-top: 10px; align-items: start; }
.host { background: #fff; border: 1px solid #d3dae3; border-radius: 8px; padding: 10px 12px; }
.host h2 { font-size: 16px; margin: 0 0 8px; display: flex; justify-content: space-between; }
.host h2 small { font-weight: normal; color: #6b7785; }
.flow { color: #8a96a3; text-align: center; font-size: 12px; line-height: 14px; }
.hop { border: 1px solid #c9d2dd; border-left: 6px solid #8a96a3; border-radius: 6px;
       padding: 4px 9px; background: #fbfcfd; position: relative; }
.hop .top { display: flex; gap: 8px; align-items: baseline; }
.hop .n { color: #8a96a3; font-size: 12px; }
.hop .layer { text-transform: uppercase; font-size: 11px; letter-spacing: .05em;
              color: #5b6775; }
.hop .device { font-family: ui-monospace, monospace; font-weight: 600; }
.hop .decision { margin-left: auto; font-size: 12px; padding: 0 7px; border-radius: 8px;
                 background: #e6ebf1; }
.hop .reason { margin: 1px 0 0; }
.hop .detail { margin: 1px 0 0; font-size: 12px; color: #5b6775;
               font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
.d-pass, .d-forward, .d-deliver { border-left-color: #2e7d32; }
.d-flood, .d-encapsulate, .d-decapsulate { border-left-color: #1565c0; }
.hop.drop { border-color: #c62828; border-left-color: #c62828; background: #fdecea; }
.hop.drop .decision { background: #c62828; color: #fff; }
.badge { display: inline-block; font-size: 12px; margin: 2px 6px 0 0; padding: 0 7px;
         border-radius: 8px; }
.seen { background: #e3f2fd; color: #0d47a1; }
.hop.last { outline: 3px solid #1565c0; outline-offset: 2px; }
.last-mark { background: #1565c0; color: #fff; font-weight: 600; }
.notes { margin-top: 14px; color: #44515f; font-size: 13px; }
"""


def _text(value: Any) -> str:
    return escape(value if isinstance(value, str) else json.dumps(value), quote=True)


def _end(end: dict) -> str:
    """What an end of the path is: `VM web1 (vnet0) on h1` style, escaped."""
    if not end:
        return "?"
    name = end.get("port") or end.get("ip") or end.get("mac") or "?"
    where = f" on {end['host']}" if end.get("host") else ""
    return _text(f"{name}{where}")


def host_columns(trace: dict) -> list[tuple[str, list[int]]]:
    """[(host, [hop indexes top to bottom])]: the source host first, the destination
    last (its hops reversed: the port at the top), the others in path order."""
    hops = trace.get("hops") or []
    order: list[str] = []
    for end in (trace.get("source") or {}, *hops, trace.get("destination") or {}):
        host = end.get("host")
        if host is not None and host not in order:
            order.append(str(host))
    dest = str((trace.get("destination") or {}).get("host"))
    if dest in order and len(order) > 1:
        order.remove(dest)
        order.append(dest)
    columns = []
    for host in order:
        mine = [i for i, hop in enumerate(hops) if str(hop.get("host")) == host]
        if host == dest and len(order) > 1:
            mine.reverse()
        columns.append((host, mine))
    return columns


def _probe_marks(probe: dict | None, hops: list[dict]) -> tuple[dict, int | None]:
    """({(host, device): frames seen}, index of the hop where the probe was last seen)."""
    if not probe:
        return {}, None
    seen = {(s.get("host"), s.get("device")): s.get("count", 0) for s in probe.get("seen") or []}
    last = probe.get("last_seen") or None
    if not last:
        return seen, None
    if isinstance(last.get("hop"), int) and 0 <= last["hop"] < len(hops):
        return seen, last["hop"]
    for index, hop in enumerate(hops):
        if (hop.get("host"), hop.get("device")) == (last.get("host"), last.get("device")):
            return seen, index
    return seen, None


def _hop(index: int, hop: dict, dropped: bool, seen: dict, last: bool, count: int) -> str:
    """One hop's box; `seen`: {hop index: probe frames seen there}."""
    decision = hop.get("decision") if hop.get("decision") in DECISIONS else "unknown"
    classes = ["hop", f"d-{decision}"] + (["drop"] if dropped else []) + (["last"] if last else [])
    parts = [
        f'<div class="{" ".join(classes)}" data-hop="{index}">',
        '<div class="top">',
        f'<span class="n">#{index + 1}</span>',
        f'<span class="layer">{_text(hop.get("layer") or "?")}</span>',
        f'<span class="device">{_text(hop.get("device") or "-")}</span>',
        f'<span class="decision">{_text(hop.get("decision") or "unknown")}</span>',
        "</div>",
    ]
    if hop.get("reason"):
        parts.append(f'<p class="reason">{_text(hop["reason"])}</p>')
    detail = hop.get("detail") or {}
    if isinstance(detail, dict) and detail:
        pairs = " · ".join(f"{_text(k)}={_text(v)}" for k, v in detail.items())
        parts.append(f'<p class="detail">{pairs}</p>')
    got = seen.get(index)
    if got:
        parts.append(f'<span class="badge seen">probe: {int(got)}/{count} seen</span>')
    if last:
        parts.append('<span class="badge last-mark">◉ probe last seen here</span>')
    parts.append("</div>")
    return "".join(parts)


def _probe_line(probe: dict | None) -> str:
    if not probe:
        return ""
    last = probe.get("last_seen")
    where = f"last seen at {_text(last.get('device'))} on {_text(last.get('host'))}" if last \
        else "seen nowhere"  # fmt: skip
    fate = "delivered" if probe.get("delivered") else "not delivered"
    elapsed = probe.get("elapsed_s")
    took = f", {float(elapsed):.1f} s" if isinstance(elapsed, (int, float)) else ""
    count = int(probe.get("count") or 0)
    return f'<p class="summary">probe: {count} marked frame(s), {where}, {fate}{took}</p>'


def _notes(trace: dict) -> str:
    probe = trace.get("probe") or {}
    lines = [f"{_text(h)}: {_text(why)}" for h, why in sorted((probe.get("errors") or {}).items())]
    lines += [f"{_text(n.get('device'))} on {_text(n.get('host'))} not watched: "
              f"{_text(n.get('why'))}" for n in probe.get("not_watched") or []]  # fmt: skip
    if not lines:
        return ""
    return '<div class="notes">' + "<br>".join(lines) + "</div>"


def render(trace: dict) -> str:
    hops = trace.get("hops") or []
    packet = trace.get("packet") or {}
    verdict = trace.get("verdict") if trace.get("verdict") in VERDICTS else "unknown"
    dropped_at = trace.get("dropped_at")
    probe = trace.get("probe") or None
    seen, last = _probe_marks(probe, hops)
    first: dict = {}  # a device's probe count is shown at its first hop in path order
    for index, hop in enumerate(hops):
        first.setdefault((hop.get("host"), hop.get("device")), index)
    seen = {first[key]: n for key, n in seen.items() if key in first}
    count = int((probe or {}).get("count") or 0)
    src, dst = _end(trace.get("source") or {}), _end(trace.get("destination") or {})
    what = " ".join(
        _text(v) for v in (packet.get("proto"), packet.get("port") and f"port {packet['port']}",
                           packet.get("vlan") and f"VLAN {packet['vlan']}",
                           packet.get("size") and f"{packet['size']} bytes") if v
    )  # fmt: skip
    drop_line = ""
    if isinstance(dropped_at, int) and 0 <= dropped_at < len(hops):
        hop = hops[dropped_at]
        drop_line = (f" at #{dropped_at + 1} {_text(hop.get('device') or '-')} on "
                     f"{_text(hop.get('host'))}: {_text(hop.get('reason') or '')}")  # fmt: skip
    columns = host_columns(trace)
    body = [
        f"<h1>{src} → {dst}</h1>",
        f'<p class="summary"><span class="verdict v-{verdict}">{verdict}</span>{drop_line}</p>',
        f'<p class="summary">packet: {what}</p>' if what else "",
        _probe_line(probe),
        f'<div class="hosts" style="grid-template-columns: repeat({max(len(columns), 1)}, '
        'minmax(0, 1fr))">',
    ]
    dest_host = str((trace.get("destination") or {}).get("host"))
    for position, (host, indexes) in enumerate(columns):
        upward = position == len(columns) - 1 and host == dest_host and len(columns) > 1
        role = "source" if position == 0 else ("destination" if upward else "transit")
        role = "source and destination" if len(columns) == 1 else role
        arrow = '<div class="flow">↑</div>' if upward else '<div class="flow">↓</div>'
        boxes = [_hop(i, hops[i], i == dropped_at, seen, i == last, count) for i in indexes]
        body.append(f'<section class="host"><h2>{_text(host)} <small>{role}</small></h2>'
                    + arrow.join(boxes) + "</section>")  # fmt: skip
    body += ["</div>", _notes(trace)]
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>vnetctl trace: {src} → {dst}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
