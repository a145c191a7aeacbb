"""One self-contained HTML page: summary, a table per host, consistency, resolved items.
Inline CSS only; no scripts, fonts or images from anywhere."""

from __future__ import annotations

from html import escape

from vnetctl.drift.formats.values import resolved_note, value, when
from vnetctl.drift.report import DriftItem, DriftReport, HostState, Kind, by_host
from vnetctl.output.words import count

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}
.cards{display:flex;gap:1em;flex-wrap:wrap}
.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;min-width:8em}
.card b{display:block;font-size:1.5em}
table{border-collapse:collapse;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}code{font-size:.95em}
.in_sync{color:#1a7f37}.drifted{color:#9a6700}.failed,.unreachable{color:#cf222e}
.missing{background:#fff1e5}.different{background:#fff8c5}.extra{background:#ddf4ff}
.not_persisted{background:#fbefff}pre{margin:0;font-size:.9em}
"""


VERDICT = {
    0: "no drift",
    1: "error (a host failed: its drift is unknown)",
    2: "drift found",
    3: "hosts unreachable (their drift is unknown)",
}


def render(report: DriftReport) -> str:
    e = escape
    counts = report.counts()
    cards = [
        ("hosts", len(report.hosts)),
        *((s.value.replace("_", " "), len(report.hosts_in(s))) for s in HostState),
        *((k.value, counts[k.value]) for k in Kind),
        ("inconsistent fields", len(report.consistency)),
        *([("resolved", len(report.resolved))] if report.recorded else []),
    ]
    verdict = VERDICT[report.exit_code()]
    if report.exit_code() == 2 and report.has_errors:
        verdict += ", and hosts not checked"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>vnetctl drift: {e(verdict)}</title><style>{STYLE}</style></head><body>",
        f"<h1>Drift check: {e(verdict)}</h1>",
        f"<p><code>{e(report.playbook)}</code> on <code>{e(report.inventory)}</code>"
        + (f" (limit <code>{e(report.limit)}</code>)" if report.limit else "")
        + f"; run {e(when(report.started))}, {report.duration:.1f}s"
        + (f"; previous run {e(when(report.previous_run))}" if report.previous_run else "")
        + (f"; {e(note)}" if (note := resolved_note(report)) else "")
        + "</p>",
        '<div class="cards">',
        *(f'<div class="card"><b>{n}</b>{e(label)}</div>' for label, n in cards),
        "</div>",
    ]
    for host in report.hosts:
        state = host.state.value
        out.append(
            f'<h2>{e(host.host)}: <span class="{state}">{e(state.replace("_", " "))}</span>'
            f" <small>({count(host.resources, 'resource')} checked)</small></h2>"
        )
        if host.reason:
            out.append(f"<p>{e(host.reason)}</p>")
        if host.items:
            out += _items_table(host.items, first_seen=True)
    if report.consistency:
        out += [
            "<h2>Fleet consistency</h2>",
            "<table><tr><th>resource</th><th>field</th><th>declared</th>"
            "<th>actual per host</th></tr>",
        ]
        for c in report.consistency:
            per_host = "<br>".join(f"{e(h)}: {e(value(v))}" for h, v in by_host(c.values))
            out.append(
                f"<tr><td>{e(c.resource)}</td><td>{e(c.field)}</td>"
                f"<td>{e(value(c.declared))}</td><td>{per_host}</td></tr>"
            )
        out.append("</table>")
    if report.resolved:
        out += ["<h2>Resolved since the previous run</h2>"]
        out += _items_table(report.resolved, first_seen=False, host=True)
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _items_table(items: list[DriftItem], first_seen: bool, host: bool = False) -> list[str]:
    e = escape
    heads = ["host"] * host + ["kind", "resource", "field", "declared", "actual"]
    heads += ["first seen"] * first_seen + ["play / task"]
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in heads) + "</tr>"]
    for i in items:
        cells = [i.host] * host + [i.kind.value, i.resource, i.field or "-"]
        cells += [value(i.declared), value(i.actual)]
        cells += [when(i.first_seen)] * first_seen + [f"{i.play} / {i.task}"]
        tds = "".join(f"<td><pre>{e(c)}</pre></td>" if "\n" in c else f"<td>{e(c)}</td>"
                      for c in cells)  # fmt: skip
        rows.append(f'<tr class="{i.kind.value.replace(" ", "_")}">{tds}</tr>')
    return rows + ["</table>"]
