"""The drift trend as inline SVG: drifted hosts and items per recorded run of the check.
No script, no font or image from anywhere: the page stays one self-contained file."""

from __future__ import annotations

from html import escape

from vnetctl.drift.formats.values import when
from vnetctl.drift.report import TrendPoint

WIDTH, HEIGHT, PAD = 640, 140, 28
SERIES = (("items", "drift items", "#bc4c00"), ("drifted_hosts", "drifted hosts", "#8250df"))


def chart(trend: list[TrendPoint]) -> str:
    """An SVG line chart, or one sentence when there are too few runs to draw."""
    if len(trend) < 2:
        return "<p>Trend: the history holds one run of this check so far.</p>"
    top = max(1, *(max(p.items, p.drifted_hosts) for p in trend))
    step = (WIDTH - 2 * PAD) / (len(trend) - 1)

    def xy(i: int, v: int) -> str:
        return f"{PAD + i * step:.1f},{HEIGHT - PAD - v * (HEIGHT - 2 * PAD) / top:.1f}"

    parts = [
        f'<svg class="trend" role="img" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}">',
        f"<title>drift items and drifted hosts over the last {len(trend)} runs</title>",
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>',
        f'<text x="2" y="{PAD + 4}" font-size="11">{top}</text>',
        f'<text x="2" y="{HEIGHT - PAD + 4}" font-size="11">0</text>',
        f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="11">{escape(when(trend[0].started))}</text>',
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" font-size="11" text-anchor="end">'
        f"{escape(when(trend[-1].started))}</text>",
    ]
    for n, (attr, label, colour) in enumerate(SERIES):
        points = " ".join(xy(i, getattr(p, attr)) for i, p in enumerate(trend))
        last = getattr(trend[-1], attr)
        parts += [
            f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{points}"/>',
            f'<text x="{PAD + 8 + n * 170}" y="14" font-size="12" fill="{colour}">'
            f"{label}: {last} now</text>",
        ]
    return "\n".join(parts) + "\n</svg>"
