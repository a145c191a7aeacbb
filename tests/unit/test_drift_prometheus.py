"""Drift metrics as node_exporter's textfile collector and Prometheus want them: one
textfile per check beside others without a series written twice, no whitespace in a
label value, first-seen time per item and the age of each host's drift."""

from __future__ import annotations

import shutil
import subprocess

from drift_samples import T0, full_report
from prometheus_client.parser import text_string_to_metric_families

from vnetctl.drift import formats
from vnetctl.drift.report import HostDrift, HostState


def samples(text: str) -> list:
    return [s for f in text_string_to_metric_families(text) for s in f.samples]


def aged_report(playbook: str = "playbooks/site.yml"):
    report = full_report()
    report.playbook = playbook
    for n, item in enumerate(report.items()):
        item.first_seen = T0 - 600 * (n + 1)  # the oldest 2400 s before the run
    return report


def test_two_checks_textfiles_in_one_directory_never_write_the_same_series():
    """What node_exporter does with the files of a textfile directory: one set of series;
    the same name and labels from two files is dropped ("collected before")."""
    site = formats.render(aged_report("playbooks/site.yml"), "prometheus")
    edge = formats.render(aged_report("playbooks/edge.yml"), "prometheus")
    series = [(s.name, frozenset(s.labels.items())) for t in (site, edge) for s in samples(t)]
    assert len(series) == len(set(series))
    for s in samples(site) + samples(edge):
        assert {"check", "playbook"} <= set(s.labels), s
    assert {s.labels["playbook"] for s in samples(edge)} == {"edge.yml"}


def test_no_label_value_holds_whitespace():
    values = [v for s in samples(formats.render(aged_report(), "prometheus"))
              for v in s.labels.values()]  # fmt: skip
    assert values and not [v for v in values if any(c.isspace() for c in v)]
    assert "not_persisted" in values and "bridge:br-vm" in values


def test_each_item_has_its_first_seen_time_and_each_host_its_drift_age():
    report = aged_report()
    got = samples(formats.render(report, "prometheus"))
    first = [s for s in got if s.name == "vnetctl_drift_item_first_seen_timestamp_seconds"]
    assert sorted(s.value for s in first) == [T0 - 2400, T0 - 1800, T0 - 1200, T0 - 600]
    assert {s.labels["item"] for s in first} == {i.key for i in report.items()}
    age = {s.labels["host"]: s.value for s in got if s.name == "vnetctl_drift_age_seconds"}
    assert age == {"h1": 0, "h2": 2400}  # h3 unreachable, h4 failed: unknown, no sample


def test_without_a_history_no_first_seen_or_age_is_made_up():
    report = aged_report()
    report.run_id = None
    names = {s.name for s in samples(formats.render(report, "prometheus"))}
    assert "vnetctl_drift_age_seconds" not in names
    assert "vnetctl_drift_item_first_seen_timestamp_seconds" not in names


def test_promtool_finds_nothing_to_say_about_the_metrics():
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/setup.sh installs Debian's prometheus"
    report = aged_report()
    report.hosts.append(HostDrift("h5", HostState.IN_SYNC))
    text = formats.render(report, "prometheus")
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done
