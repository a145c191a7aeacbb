"""The alert rules shipped in contrib/prometheus: valid for Prometheus (`promtool check
rules`), each alert firing on a recorded series and quiet on a healthy one (`promtool test
rules`), and every metric they use one that vnetctl writes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from drift_samples import T0, full_report
from prometheus_client.parser import text_string_to_metric_families
from test_stats_formats import report as stats_report
from test_stats_overlay import report as overlay_report

from vnetctl.drift import formats
from vnetctl.stats.formats import render as stats_render

CONTRIB = Path(__file__).parents[2] / "contrib" / "prometheus"
RULES = CONTRIB / "vnetctl.rules.yml"
TESTS = CONTRIB / "vnetctl.rules.test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: scripts/setup.sh installs Debian's prometheus"
    return subprocess.run([tool, *args], capture_output=True, text=True, cwd=CONTRIB,
                          timeout=120)  # fmt: skip


def alerts() -> dict[str, str]:
    doc = yaml.safe_load(RULES.read_text())
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"] if "alert" in r}


def written_metric_names() -> set[str]:
    report = full_report()
    for item in report.items():
        item.first_seen = T0 - 60
    texts = [formats.render(report, "prometheus"), stats_render(stats_report(), "prometheus"),
             stats_render(overlay_report(), "prometheus")]  # fmt: skip
    return {s.name for t in texts for f in text_string_to_metric_families(t) for s in f.samples}


def test_promtool_checks_the_rules():
    done = promtool("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_unit_tests_pass():
    done = promtool("test", "rules", TESTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("alert", sorted(alerts()))
def test_each_alert_is_tested_firing_and_quiet(alert):
    cases = [c for t in yaml.safe_load(TESTS.read_text())["tests"]
             for c in t.get("alert_rule_test", []) if c["alertname"] == alert]  # fmt: skip
    assert any(c["exp_alerts"] for c in cases), f"{alert}: no case where it fires"
    assert any(not c["exp_alerts"] for c in cases), f"{alert}: no case where it is quiet"


@pytest.mark.parametrize(("alert", "expr"), sorted(alerts().items()))
def test_each_alert_reads_metrics_vnetctl_writes(alert, expr):
    used = set(re.findall(r"\bvnetctl_[a-z_]+\b", expr))
    assert used and used <= written_metric_names(), f"{alert}: {used}"
