"""What the drift reports say is true of the run: hosts in a stable order in every
format, a heading that reads, counts in words, and nothing about resolved items where
no history was kept (--no-history)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from drift_samples import clean_report, full_report
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.drift import formats
from vnetctl.drift.classify import consistency
from vnetctl.drift.report import ConsistencyItem, HostDrift, HostState
from vnetctl.runner.results import Status, TaskResult

ANSWER_ORDER = {"h10": 1500, "h2": 9000, "h1": 9000, "h3": 1500}  # as hosts happened to answer


def inconsistent_report():
    report = full_report()
    report.consistency = [
        ConsistencyItem("site", "VM bridge", "bridge br-vm", "mtu", 9000, dict(ANSWER_ORDER))
    ]
    return report


def test_html_and_junit_list_consistency_hosts_in_host_order():
    html = formats.render(inconsistent_report(), "html")
    assert "<td>9000: h1, h2<br>1500: h3, h10</td>" in html  # grouped by value, host order
    root = ET.fromstring(formats.render(inconsistent_report(), "junit"))
    (case,) = [c for c in root.iter("testcase") if c.get("classname") == "vnetctl.drift.fleet"]
    assert "actual h1=9000, h2=9000, h3=1500, h10=1500" in case.find("failure").get("message")


def test_classified_consistency_is_in_host_order_whatever_order_hosts_answered_in():
    results = [
        TaskResult(host, "site", 0, "VM bridge", "linux_bridge", Status.OK,
                   diff={"before": {"mtu": mtu}, "after": {"mtu": 9000}}, resource="bridge br-vm")
        for host, mtu in ANSWER_ORDER.items()
    ]  # fmt: skip
    (item,) = consistency(results, lambda state: dict(state))
    assert list(item.values) == ["h1", "h2", "h3", "h10"]


def test_the_html_heading_reads():
    drifted = full_report()
    drifted.hosts = drifted.hosts[:2]  # in sync and drifted: no host in error
    assert "Drift check: drift found</h1>" in formats.render(drifted, "html")
    clean = clean_report()
    assert "Drift check: no drift</h1>" in formats.render(clean, "html")
    broken = clean_report()
    broken.hosts.append(HostDrift("h2", HostState.UNREACHABLE, reason="refused"))
    assert "Drift check: hosts unreachable (their drift is unknown)</h1>" in formats.render(
        broken, "html"
    )


def test_counts_read_as_words():
    report = inconsistent_report()
    report.hosts[0].resources = 1
    text = formats.render(report, "text")
    assert "1 field inconsistent across hosts" in text and "field(s)" not in text
    assert 'name="in sync (1 resource)"' in formats.render(report, "junit")
    assert "(1 resource checked)" in formats.render(report, "html")


def unrecorded():
    """As `drift --no-history` makes it: no run id, nothing known of earlier runs."""
    report = full_report()
    report.run_id, report.previous_run, report.resolved = None, None, []
    return report


def test_without_history_nothing_is_said_about_resolved_items():
    report = unrecorded()
    assert "resolved" not in formats.render(report, "text")
    html = formats.render(report, "html")
    assert "resolved" not in html.lower() and "previous run" not in html
    names = {f.name for f in text_string_to_metric_families(formats.render(report, "prometheus"))}
    assert "vnetctl_drift_resolved_items" not in names


def test_with_history_resolved_items_are_counted_and_a_first_run_says_so():
    assert "; 1 resolved since the previous run" in formats.render(full_report(), "text")
    first = full_report()
    first.previous_run, first.resolved = None, []
    text = formats.render(first, "text")
    assert "first recorded run of this check" in text and "resolved" not in text
    prom = formats.render(first, "prometheus")
    assert 'vnetctl_drift_resolved_items{check="' in prom and '",playbook="site.yml"} 0' in prom
