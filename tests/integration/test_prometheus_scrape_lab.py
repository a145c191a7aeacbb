"""A real scrape: Debian's node_exporter reads the textfiles `vnetctl stats` and `vnetctl
drift` write side by side, Debian's Prometheus scrapes it with contrib/prometheus's rules
loaded; a healthy fleet raises no alert, a lab host's port going down and up three
times raises VnetctlPortFlapping for that host and port alone, and drift the history
first saw two hours ago raises VnetctlDriftPersists for its host alone, as Prometheus's
own API says. Both servers run in a network namespace of the test's own, on its loopback."""

from __future__ import annotations

import sqlite3
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.integration.scrape import prometheus, query, wait_for_samples
from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab
ROOT = Path(__file__).parents[2]
SITE = ROOT / "playbooks" / "site.yml"


def test_a_flapping_port_raises_its_alert_in_prometheus_and_a_healthy_fleet_none(
    lab_required, tmp_path
):
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    with ExitStack() as stack:
        lab = stack.enter_context(own_lab("scr", tmp_path / "lab", hosts=2))
        inventory = str(lab.inventory_path)

        def write_stats() -> None:
            out = textfiles / "vnetctl-stats-lab.prom"
            assert main(["stats", "-i", inventory, "--format", "prometheus", "-o", str(out)]) == 0

        write_stats()
        assert main(["run", str(SITE), "-i", inventory]) == 0
        drift = f"prometheus={textfiles / 'vnetctl-drift-site.prom'}"
        history, report = str(tmp_path / "h.sqlite"), str(tmp_path / "d.txt")
        assert main(["drift", str(SITE), "-i", inventory, "--report", drift,
                     "--history", history, "-o", report]) == 0  # fmt: skip
        # a second check's textfile beside it: the --help's one file per check
        other_check = f"prometheus={textfiles / 'vnetctl-drift-vm-bridges.prom'}"
        vm_bridges = str(ROOT / "playbooks" / "vm-bridges.yml")
        assert main(["drift", vm_bridges, "-i", inventory, "--report", other_check,
                     "--history", history, "-o", report]) in (0, 2)  # fmt: skip
        ns = stack.enter_context(prometheus(tmp_path, textfiles))
        host, other = lab.host_names[1], lab.host_names[0]
        flaps = f'vnetctl_port_carrier_changes_total{{host="{host}",port="eth1"}}'
        wait_for_samples(ns, flaps, "the lab's counters")
        assert query(ns, "node_textfile_scrape_error")[0]["value"][1] == "0"
        checks = query(ns, "vnetctl_drift_last_run_timestamp_seconds")
        assert sorted(c["metric"]["playbook"] for c in checks) == ["site.yml", "vm-bridges.yml"]
        drift_series = query(ns, 'vnetctl_drift_host_up{playbook="site.yml"}')
        assert {s["metric"]["host"] for s in drift_series} == set(lab.host_names)
        assert query(ns, "ALERTS") == []  # a healthy fleet: no alert, not even pending

        for _ in range(3):
            for state in ("down", "up"):
                host_exec(lab.name, host, ["ip", "link", "set", "eth1", state], check=True)
        write_stats()
        firing = 'ALERTS{alertname="VnetctlPortFlapping",alertstate="firing"}'
        wait_until(lambda: query(ns, firing), 60, "VnetctlPortFlapping to fire")
        alerts = [(a["metric"]["host"], a["metric"]["port"]) for a in query(ns, firing)]
        assert alerts == [(host, "eth1")] and other != host

        # drift on one host, first seen two hours ago by the history: the drift alert
        host_exec(lab.name, other, ["ip", "link", "set", "eth2", "mtu", "1500"], check=True)
        check = ["drift", str(SITE), "-i", inventory, "--report", drift, "--history", history,
                 "-o", report]  # fmt: skip
        assert main(check) == 2
        with sqlite3.connect(history) as db:
            db.execute("UPDATE items SET first_seen = first_seen - 7200")
        assert main(check) == 2
        persists = 'ALERTS{alertname="VnetctlDriftPersists",alertstate="firing"}'
        wait_until(lambda: query(ns, persists), 60, "VnetctlDriftPersists to fire")
        assert [a["metric"]["host"] for a in query(ns, persists)] == [other]
