"""The alerts on shaping, live: Debian's Prometheus scrapes (through node_exporter) the
textfile `vnetctl stats -i INV PLAYBOOK` writes for a host whose uplink the playbook
shapes; with the shipped rules (their `for:` shortened to a second: scrape.short_rules)
nothing fires while the fleet is healthy, and a VM's UDP beyond the `storage` class's
limit raises VnetctlTcClassDrops for that host, device and class alone."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from tests.integration.scrape import prometheus, query, short_rules
from tests.integration.shaped_vm import LIMIT, shaping_playbook, udp_load, vm_behind
from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main

pytestmark = pytest.mark.lab


def test_a_class_dropping_raises_its_alert_and_a_healthy_fleet_none(lab_required, tmp_path):
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    with ExitStack() as stack:
        lab = stack.enter_context(own_lab("alr", tmp_path / "lab", hosts=2))
        inventory, (host, other) = str(lab.inventory_path), lab.host_names[:2]
        book = str(shaping_playbook(tmp_path / "shaping.yml", host))
        assert main(["run", book, "-i", inventory]) == 0
        vm = stack.enter_context(vm_behind(lab, host, other))

        def write_stats() -> None:
            out = textfiles / "vnetctl-stats-shaping.prom"
            assert main(["stats", "-i", inventory, book, "--format", "prometheus",
                         "-o", str(out), "--name", "shaping"]) == 0  # fmt: skip

        write_stats()
        ns = stack.enter_context(prometheus(tmp_path, textfiles, short_rules(tmp_path)))
        drops = f'vnetctl_tc_class_drops_total{{host="{host}",class="storage"}}'
        wait_until(lambda: (q := query(ns, f"count_over_time({drops}[1m])"))
                   and float(q[0]["value"][1]) >= 3,
                   60, "Prometheus to hold a few samples of the class's drops")  # fmt: skip
        assert query(ns, "node_textfile_scrape_error")[0]["value"][1] == "0"
        classes = query(ns, "vnetctl_tc_class_sent_packets_total")
        assert sorted(c["metric"]["class"] for c in classes) == ["storage", "vm"]
        assert query(ns, "ALERTS") == []  # healthy: no alert, not even pending

        udp_load(vm, lab.host(other).namespace, 5 * LIMIT, 3)
        write_stats()
        firing = 'ALERTS{alertname="VnetctlTcClassDrops",alertstate="firing"}'
        wait_until(lambda: query(ns, firing), 60, "VnetctlTcClassDrops to fire")
        alerts = [(a["metric"]["host"], a["metric"]["device"], a["metric"]["class"])
                  for a in query(ns, firing)]  # fmt: skip
        assert alerts == [(host, "eth1", "storage")]
        assert [a["metric"]["alertname"] for a in query(ns, "ALERTS")] == ["VnetctlTcClassDrops"]
