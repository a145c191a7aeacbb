"""The HTML drift report is read in five seconds at fleet size: the hosts that need
attention first, one line each, the in-sync ones as one line, the age of every item, a
trend over the history as inline SVG, a consistency table without repeats."""

from __future__ import annotations

import re

from drift_fleet import fleet_report
from drift_samples import T0

from vnetctl.drift import formats
from vnetctl.drift.history import History
from vnetctl.drift.report import ConsistencyItem, DriftReport, HostDrift, HostState


def test_hosts_needing_attention_come_first_drifted_then_failed_then_unreachable():
    html = formats.render(fleet_report(), "html")
    table = html[html.index('<table class="attention">') :].split("</table>")[0]
    rows = re.findall(r'<tr class="host"><td><a href="#host-(\w+)">', table)
    assert rows == ["hv007", "hv023", "hv041", "hv058", "hv012", "hv033"]
    assert html.index('class="attention"') < html.index("in sync</span>")
    assert "Needs attention: 6 hosts" in html


def test_in_sync_hosts_are_one_collapsed_line_not_a_heading_each():
    html = formats.render(fleet_report(), "html")
    assert html.count("<details") == 1 and "54 hosts in sync" in html
    assert 'id="host-hv001"' not in html and 'id="host-hv007"' in html


def test_every_item_has_its_age_and_the_host_its_oldest():
    html = formats.render(fleet_report(), "html")
    hv007 = html[html.index('id="host-hv007"') :].split("</table>")[0]
    assert hv007.count("<tr class=") == 4
    assert all(a in hv007 for a in ("<td>1h 00m</td>", "<td>2h 00m</td>", "<td>4h 00m</td>"))
    row = html[html.index('href="#host-hv007"') :].split("</tr>")[0]
    assert '<td class="n">4h 00m</td>' in row


def test_kinds_are_coloured_cells_and_rows():
    html = formats.render(fleet_report(), "html")
    for kind in ("missing", "different", "extra", "not_persisted"):
        assert f'<td class="n {kind}">' in html and f'<tr class="{kind}">' in html
        assert re.search(rf"td\.{kind}\{{border-left:4px solid #", html)


def test_the_trend_over_recorded_runs_is_inline_svg(tmp_path):
    with History(tmp_path / "h.sqlite") as history:
        for run in range(5):
            report = fleet_report(drifted=(7, 23, 41, 58)[: run % 4 + 1])
            report.started = T0 + 900 * run
            history.record(report, "c1")
    html = formats.render(report, "html")
    svg = html[html.index("<svg") : html.index("</svg>")]
    assert [len(p.split()) for p in re.findall(r'points="([^"]+)"', svg)] == [5, 5]
    assert "drifted hosts: 1 now" in svg and "over the last 5 runs" in svg
    assert "href" not in svg and "<script" not in html and "http" not in svg


def test_one_run_says_so_and_without_history_no_trend(tmp_path):
    report = fleet_report()
    assert "<svg" not in formats.render(report, "html") and "Trend" not in formats.render(
        report, "html"
    )
    with History(tmp_path / "h.sqlite") as history:
        history.record(report, "c1")
    html = formats.render(report, "html")
    assert "<svg" not in html and "the history holds one run of this check so far" in html


def test_consistency_lists_a_field_once_whichever_tasks_declared_it():
    report = DriftReport("p.yml", "i.yml", T0, 1.0, hosts=[HostDrift("h1", HostState.IN_SYNC)])
    values = {"h1": 9000, "h2": 1500}
    report.consistency = [
        ConsistencyItem("site", "VM bridge", "bridge br-vm", "mtu", 9000, dict(values)),
        ConsistencyItem("overlay", "bridge again", "bridge br-vm", "mtu", 9000, dict(values)),
    ]
    html = formats.render(report, "html")
    assert html.count("<td>bridge br-vm</td><td>mtu</td>") == 1
    peers = {"h1": ["10.0.0.2"], "h2": ["10.0.0.1", "10.0.0.3"]}  # values that are lists
    report.consistency = [ConsistencyItem("site", "m", "mesh m", "peers", [], dict(peers))] * 2
    assert formats.render(report, "html").count("<td>mesh m</td>") == 1


def test_500_hosts_stay_small_and_one_line_for_those_in_sync():
    drifted = tuple(range(5, 500, 25))
    html = formats.render(fleet_report(500, drifted=drifted), "html")
    assert html.count('<tr class="host">') == len(drifted) + 2
    assert html.count("<details") == 1 and len(html) < 120_000, len(html)


def test_the_text_report_lists_drifted_then_failed_then_unreachable_hosts_too():
    text = formats.render(fleet_report(), "text")
    heads = re.findall(r"^(hv\d+): (\w+)$", text, re.MULTILINE)
    assert [h for h, _ in heads] == ["hv007", "hv023", "hv041", "hv058", "hv012", "hv033"]
