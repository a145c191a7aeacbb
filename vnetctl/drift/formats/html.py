"""One self-contained HTML page an on-call engineer reads in five seconds: the verdict,
then every host that needs attention (drifted, failed, unreachable) one line each, the
in-sync hosts as one line, the trend over the recorded runs, then the details. Inline CSS
and SVG only; no scripts, fonts or images from anywhere. Readable at 500 hosts: nothing
is one heading per host except what needs attention."""

from __future__ import annotations

from html import escape

from vnetctl.drift.formats.trend_svg import chart
from vnetctl.drift.formats.values import age, resolved_note, value, when
from vnetctl.drift.report import (
    ConsistencyItem,
    DriftItem,
    DriftReport,
    HostDrift,
    HostState,
    Kind,
    by_host,
)
from vnetctl.output.words import count

STYLE = """
body{font:14px/1.35 system-ui,sans-serif;margin:1em 2em;color:#222}
h1{font-size:1.3em;margin:.2em 0;padding:.3em .6em;border-radius:6px}
h2{font-size:1.1em;margin:1.2em 0 .4em}h3{font-size:1em;margin:1em 0 .3em}
p{margin:.3em 0}.v0{background:#dafbe1}.v2{background:#fff8c5}.v1,.v3{background:#ffebe9}
.cards{display:flex;gap:.5em;flex-wrap:wrap;margin:.4em 0}
.card{border:1px solid #ccc;border-radius:6px;padding:.2em .7em}
.card b{font-size:1.2em;margin-right:.3em}
table{border-collapse:collapse;margin:.3em 0}
td,th{border:1px solid #ccc;padding:.15em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3}code{font-size:.95em}td.n{text-align:right}
.in_sync{color:#1a7f37}.drifted{color:#9a6700;font-weight:600}
.failed,.unreachable{color:#cf222e;font-weight:600}
.missing{background:#fff1e5}.different{background:#fff8c5}.extra{background:#ddf4ff}
.not_persisted{background:#fbefff}pre{margin:0;font-size:.9em}
td.missing{border-left:4px solid #bc4c00}td.different{border-left:4px solid #d4a72c}
td.extra{border-left:4px solid #0969da}td.not_persisted{border-left:4px solid #8250df}
details summary{cursor:pointer}
"""

VERDICT = {
    0: "no drift",
    1: "error (a host failed: its drift is unknown)",
    2: "drift found",
    3: "hosts unreachable (their drift is unknown)",
}


def css(kind: Kind) -> str:
    return kind.value.replace(" ", "_")


def oldest(host: HostDrift, now: float) -> float | None:
    seen = [i.first_seen for i in host.items if i.first_seen is not None]
    return now - min(seen) if seen else None


def render(report: DriftReport) -> str:
    e = escape
    code = report.exit_code()
    verdict = VERDICT[code] + (", and hosts not checked" if code == 2 and report.has_errors else "")
    counts = report.counts()
    cards = [
        ("hosts", len(report.hosts)),
        *((s.value.replace("_", " "), len(report.hosts_in(s))) for s in HostState),
        *((k.value, counts[k.value]) for k in Kind),
        ("inconsistent fields", len(report.consistency)),
        *([("resolved", len(report.resolved))] if report.recorded else []),
    ]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>vnetctl drift: {e(verdict)}</title><style>{STYLE}</style></head><body>",
        f'<h1 class="v{code}">Drift check: {e(verdict)}</h1>',
        f"<p><code>{e(report.playbook)}</code> on <code>{e(report.inventory)}</code>"
        + (f" (<code>{e(report.scope)}</code>)" if report.scope else "")
        + f"; run {e(when(report.started))}, {report.duration:.1f}s"
        + (f"; previous run {e(when(report.previous_run))}" if report.previous_run else "")
        + (f"; {e(note)}" if (note := resolved_note(report)) else "")
        + "</p>",
        '<div class="cards">',
        *(f'<div class="card"><b>{n}</b>{e(label)}</div>' for label, n in cards),
        "</div>",
    ]
    needy = report.needing_attention()
    if needy:
        out += [f"<h2>Needs attention: {count(len(needy), 'host')}</h2>"]
        out += _attention_table(needy, report.started)
    out += _in_sync_line(report.hosts_in(HostState.IN_SYNC))
    if report.trend:
        out += ["<h2>Trend</h2>", chart(report.trend)]
    for host in needy:
        out.append(
            f'<h3 id="host-{e(host.host)}">{e(host.host)}: <span class="{host.state.value}">'
            f"{e(host.state.value)}</span> <small>({count(host.resources, 'resource')} "
            "checked)</small></h3>"
        )
        if host.reason:
            out.append(f"<p>{e(host.reason)}</p>")
        if host.items:
            out += _items_table(host.items, now=report.started)
    if report.consistency:
        out += _consistency(report.consistency)
    if report.resolved:
        out += ["<h2>Resolved since the previous run</h2>"]
        out += _items_table(report.resolved, now=None, host=True)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _attention_table(hosts: list[HostDrift], now: float) -> list[str]:
    e = escape
    heads = ["host", "state", *(k.value for k in Kind), "oldest item", "why"]
    rows = ['<table class="attention"><tr>' + "".join(f"<th>{h}</th>" for h in heads) + "</tr>"]
    for h in hosts:
        per_kind = {k: sum(1 for i in h.items if i.kind is k) for k in Kind}
        kinds = "".join(f'<td class="n {css(k) if n else ""}">{n or ""}</td>'
                        for k, n in per_kind.items())  # fmt: skip
        why = h.reason or "; ".join(sorted({i.resource for i in h.items}))
        rows.append(
            f'<tr class="host"><td><a href="#host-{e(h.host)}">{e(h.host)}</a></td>'
            f'<td class="{h.state.value}">{e(h.state.value)}</td>{kinds}'
            f'<td class="n">{e(age(oldest(h, now)))}</td><td>{e(why)}</td></tr>'
        )
    return rows + ["</table>"]


def _in_sync_line(hosts: list[HostDrift]) -> list[str]:
    if not hosts:
        return []
    names = ", ".join(escape(h.host) for h in hosts)
    return [
        f'<details class="in_sync_hosts"><summary><span class="in_sync">'
        f"{count(len(hosts), 'host')} in sync</span></summary><p>{names}</p></details>"
    ]


def _consistency(items: list[ConsistencyItem]) -> list[str]:
    """One row per resource and field, whichever tasks declared it; hosts grouped by
    the value they have, the largest group first."""
    e = escape
    rows, seen = [], set()
    for c in items:
        key = (
            c.resource,
            c.field,
            value(c.declared),
            tuple((h, value(v)) for h, v in by_host(c.values)),
        )
        if key in seen:
            continue
        seen.add(key)
        groups: dict[str, list[str]] = {}
        for host, actual in by_host(c.values):
            groups.setdefault(value(actual), []).append(host)
        split = "<br>".join(
            f"{e(v)}: {e(', '.join(hs))}"
            for v, hs in sorted(groups.items(), key=lambda g: -len(g[1]))
        )
        rows.append(f"<tr><td>{e(c.resource)}</td><td>{e(c.field)}</td>"
                    f"<td>{e(value(c.declared))}</td><td>{split}</td></tr>")  # fmt: skip
    return [
        "<h2>Fleet consistency</h2>",
        "<table><tr><th>resource</th><th>field</th><th>declared</th><th>actual: hosts</th></tr>",
        *rows,
        "</table>",
    ]


def _items_table(items: list[DriftItem], now: float | None, host: bool = False) -> list[str]:
    """Drift items, coloured by kind; with `now`, each item's first-seen time and age."""
    e = escape
    heads = ["host"] * host + ["kind", "resource", "field", "declared", "actual"]
    heads += ["first seen", "age"] * (now is not None) + ["play / task"]
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>"]
    for i in items:
        cells = [i.host] * host + [i.kind.value, i.resource, i.field or "-"]
        cells += [value(i.declared), value(i.actual)]
        if now is not None:
            since = None if i.first_seen is None else now - i.first_seen
            cells += [when(i.first_seen), age(since)]
        cells += [f"{i.play} / {i.task}"]
        tds = "".join(f"<td><pre>{e(c)}</pre></td>" if "\n" in c else f"<td>{e(c)}</td>"
                      for c in cells[1:])  # fmt: skip
        rows.append(f'<tr class="{css(i.kind)}"><td class="{css(i.kind)}">{e(cells[0])}</td>'
                    f"{tds}</tr>")  # fmt: skip
    return rows + ["</table>"]
