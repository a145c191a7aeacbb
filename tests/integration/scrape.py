"""Debian's node_exporter and Prometheus in a network namespace of a test's own, on its
loopback, reading the textfiles vnetctl writes with contrib/prometheus's rules loaded;
Prometheus's own API asked what it holds and which alerts fire. Used by
test_prometheus_scrape_lab and test_prometheus_alerts_lab."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import yaml

from tests.labhosts import wait_until

ROOT = Path(__file__).parents[2]
RULES = ROOT / "contrib" / "prometheus" / "vnetctl.rules.yml"


@contextmanager
def namespace(name: str):
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@contextmanager
def server(ns: str, argv: list[str], log: Path):
    with (
        log.open("w") as out,
        subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=out, stderr=subprocess.STDOUT
        ) as proc,
    ):
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def query(ns: str, promql: str) -> list[dict]:
    url = "http://127.0.0.1:9090/api/v1/query?query=" + urllib.parse.quote(promql)
    done = subprocess.run(["ip", "netns", "exec", ns, "curl", "-sf", "--max-time", "5", url],
                          capture_output=True, text=True, timeout=20)  # fmt: skip
    if done.returncode != 0:
        return []
    return json.loads(done.stdout)["data"]["result"]


def wait_for_samples(ns: str, series: str, what: str, samples: int = 3) -> None:
    """Until Prometheus holds `samples` scrapes of `series` within the last minute."""

    def held() -> bool:
        found = query(ns, f"count_over_time({series}[1m])")
        return len(found) == 1 and float(found[0]["value"][1]) >= samples

    wait_until(held, 60, f"Prometheus to hold a few samples of {what}")


def short_rules(folder: Path, pending: str = "1s") -> Path:
    """The shipped rules with every `for:` at `pending`: a test waits seconds, not the
    minutes an operator's alert waits; expressions and windows stay as shipped."""
    doc = yaml.safe_load(RULES.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = pending
    path = folder / "vnetctl.rules.short.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextmanager
def prometheus(folder: Path, textfiles: Path, rules: Path = RULES) -> Iterator[str]:
    """node_exporter reading `textfiles`, Prometheus scraping it every second with
    `rules`; yields the namespace both listen in."""
    config, data = folder / "prometheus.yml", folder / "tsdb"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: ['{rules}']\n"
        "scrape_configs:\n"
        "  - job_name: node\n"
        "    static_configs: [{targets: ['127.0.0.1:9100']}]\n"
    )
    with ExitStack() as stack:
        ns = stack.enter_context(namespace(f"vnetctl-scrape-{os.getpid()}"))
        stack.enter_context(server(ns, [
            "prometheus-node-exporter", "--web.listen-address=127.0.0.1:9100",
            "--collector.disable-defaults", "--collector.textfile",
            f"--collector.textfile.directory={textfiles}"], folder / "node.log"))  # fmt: skip
        stack.enter_context(server(ns, [
            "prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
            "--web.listen-address=127.0.0.1:9090"], folder / "prometheus.log"))  # fmt: skip
        yield ns
