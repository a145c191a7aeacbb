"""The five drift formats render the same report: each parses with its consumer's parser
and shows every item, host state and time."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from drift_samples import T0, clean_report, full_report
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.drift import formats
from vnetctl.drift.formats.json_format import schema
from vnetctl.drift.report import DriftReport, HostDrift, HostState
from vnetctl.output import exposition

JUNIT_XSD = Path(__file__).parent / "fixtures" / "junit.xsd"
REPORTS = {
    "full": full_report,
    "clean": clean_report,
    "empty": lambda: DriftReport("p", "i", T0, 0),
}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_json_validates_against_the_published_schema(name):
    doc = json.loads(formats.render(REPORTS[name](), "json"))
    jsonschema.Draft202012Validator.check_schema(schema())
    jsonschema.validate(doc, schema())


def test_exit_codes_drift_on_a_reachable_host_is_2_whatever_else_happened():
    assert clean_report().exit_code() == 0
    drifted = full_report()
    drifted.hosts = drifted.hosts[:2]
    assert drifted.exit_code() == 2
    assert full_report().exit_code() == 2  # beside an unreachable and a failed host


@pytest.mark.parametrize(("states", "code"), [
    ([HostState.IN_SYNC, HostState.UNREACHABLE], 3),
    ([HostState.UNREACHABLE], 3),
    ([HostState.IN_SYNC, HostState.FAILED, HostState.UNREACHABLE], 1),
    ([HostState.IN_SYNC, HostState.FAILED], 1),
])  # fmt: skip
def test_exit_codes_without_drift_unreachable_alone_is_3_a_failed_host_1(states, code):
    report = clean_report()
    report.hosts = [HostDrift(f"h{n}", s, reason="x") for n, s in enumerate(states)]
    assert report.exit_code() == code
    assert (
        formats.render(report, "text")
        .splitlines()[0]
        .startswith("drift check: " + {1: "ERROR", 3: "UNREACHABLE"}[code])
    )


def test_drift_beside_unreachable_hosts_says_both():
    text = formats.render(full_report(), "text")
    assert text.startswith("drift check: DRIFT (and hosts not checked)")
    assert "h3: unreachable" in text
    assert "drift found, and hosts not checked" in formats.render(full_report(), "html")


def test_text_names_few_hosts_and_counts_many_largest_group_first():
    report = full_report()
    item = report.consistency[0]
    item.values = {f"h{i}": 9000 for i in range(1, 12)} | {"h7": 1500}
    text = formats.render(report, "text")
    assert f"{item.resource} mtu declared 9000: 10 hosts (h1 .. h11) = 9000; h7 = 1500" in text


def test_text_puts_the_summary_first_and_names_field_and_values():
    text = formats.render(full_report(), "text")
    lines = text.splitlines()
    assert lines[0].startswith("drift check: DRIFT")
    assert "1 in sync, 1 drifted, 1 failed, 1 unreachable" in lines[1]
    assert text.index("items:") < text.index("h2: drifted")
    assert "mtu: declared 9000, actual 1500  (since 2026-" in text
    assert "h3: unreachable" in text and "connection refused" in text
    assert "bridge br-vm mtu declared 9000: h1 = 9000; h2 = 1500" in text
    assert "resolved since the previous run" in text
    assert "h1: in_sync" not in text
    assert "\033[" not in text and "\033[" in formats.render(full_report(), "text", color=True)


class Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text, self.refs = [], []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href")]

    def handle_data(self, data):
        self.text.append(data)


def test_html_is_self_contained_and_shows_every_item_escaped():
    html = formats.render(full_report(), "html")
    page = Collect()
    page.feed(html)
    text = "".join(page.text)
    assert all(r.startswith("#host-") for r in page.refs)  # links within the page only
    assert "http" not in html.replace("http-equiv", "")
    assert '<x&"y>' in text and "&lt;x&amp;" in html  # escaped in markup, intact as text
    for needle in ("h2", "mesh tenants", "segments.100.peers", "connection refused", "2026-"):
        assert needle in text
    assert "Fleet consistency" in text and "Resolved since the previous run" in text


def test_junit_validates_and_counts_match():
    xml = formats.render(full_report(), "junit")
    xmlschema.XMLSchema(str(JUNIT_XSD)).validate(xml)
    root = ET.fromstring(xml)
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"h1", "h2", "h3", "h4", "fleet-consistency"}
    assert [c.get("name") for c in suites["h1"]] == ["in sync (2 resources)"]
    assert {c.get("name") for c in suites["h2"]} == {"bridge br-vm", "link a\\b\nc", "mesh tenants"}
    assert suites["h3"].get("errors") == "1" and suites["h2"].get("failures") == "3"
    assert root.get("tests") == str(len(list(root.iter("testcase"))))


def test_prometheus_parses_with_the_official_parser():
    text = formats.render(full_report(), "prometheus")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    items = {
        (s.labels["host"], s.labels["kind"]): s.value
        for s in families["vnetctl_drift_items"].samples
    }
    assert items[("h2", "missing")] == 2 and items[("h2", "extra")] == 1
    assert items[("h1", "different")] == 0 and ("h3", "missing") not in items
    up = {s.labels["host"]: s.value for s in families["vnetctl_drift_host_up"].samples}
    assert up == {"h1": 1, "h2": 1, "h3": 0, "h4": 1}
    assert families["vnetctl_drift_hosts_unreachable"].samples[0].value == 1
    assert families["vnetctl_drift_last_run_timestamp_seconds"].samples[0].value == T0


def test_prometheus_escapes_label_values():
    report = clean_report()
    report.hosts[0].host = 'we"ird\\host\nname'
    text = formats.render(report, "prometheus")
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    assert {s.labels.get("host") for s in samples} >= {'we"ird\\host_name'}  # no whitespace


def test_write_replaces_atomically_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out" / "drift.prom"
    target.parent.mkdir()
    target.write_text("old")
    formats.write(full_report(), "prometheus", target)
    assert target.read_text().startswith("# HELP")
    assert oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in target.parent.iterdir()] == ["drift.prom"]


def test_prometheus_writes_every_value_in_full_precision():
    """Every sample of the exposition reads back as exactly the value it reports: the
    timestamp to the microsecond, not `1.79569e+09` (an hour off)."""
    report = full_report(started=1_795_690_123.456789)
    report.duration = 0.123456789012
    text = formats.render(report, "prometheus")
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    values = {s.name: s.value for s in samples if "host" not in s.labels}
    assert values["vnetctl_drift_last_run_timestamp_seconds"] == report.started
    assert values["vnetctl_drift_last_run_duration_seconds"] == report.duration
    lines = [x for x in text.splitlines() if x and not x.startswith("#")]
    assert len(lines) == len(samples)
    for line, sample in zip(lines, samples, strict=True):
        written = line.rsplit(" ", 1)[1]
        assert float(written) == sample.value  # what a scraper reads is what was written
        assert exposition.number(float(written)) == written or written.isdigit()


@pytest.mark.parametrize(
    ("value", "text"),
    [(1795690123.456789, "1795690123.456789"), (3, "3"), (True, "1"), (0.1, "0.1"),
     (1e22, "1e+22"), (float("inf"), "+Inf"), (float("-inf"), "-Inf"), (float("nan"), "NaN")],
)  # fmt: skip
def test_prometheus_numbers_round_trip(value, text):
    assert exposition.number(value) == text
