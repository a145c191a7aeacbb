"""The toy module of docs/architecture.md (ip_forward: a new tool, sysctl, through the
registry of command writers) applied for real on lab hosts, not only planned: check mode
changes nothing, the run switches the kernel's forwarding on (a host routes between its
two segments: a ping across it passes), writes its sysctl.d file once, a re-apply is
`ok`, and switching it off stops the routing again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.labhosts import inventory_with, own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

# addresses on the lab's own segment bridges (eth1: segment 1, eth2: segment 2), which
# only this lab's hosts are on: h2 on segment 1, h3 on segment 2, the router h1 on both
SEGMENTS = {"h1": [("eth1", "192.168.71.1/24"), ("eth2", "192.168.72.1/24")],
            "h2": [("eth1", "192.168.71.2/24")], "h3": [("eth2", "192.168.72.3/24")]}  # fmt: skip
ROUTES = {"h2": "192.168.72.0/24 via 192.168.71.1", "h3": "192.168.71.0/24 via 192.168.72.1"}
FILE = "etc/sysctl.d/99-vnetctl-sysctl-net.ipv4.ip_forward.conf"


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ipf")
    with own_lab("ipf", folder, hosts=3) as state:
        names = dict(zip(("h1", "h2", "h3"), state.host_names, strict=True))
        for role, addresses in SEGMENTS.items():
            for dev, cidr in addresses:
                sh(state, names[role], f"ip addr add {cidr} dev {dev}")
        for role, route in ROUTES.items():
            sh(state, names[role], f"ip route add {route}")
        sh(state, names["h1"], "sysctl -q -w net.ipv4.ip_forward=0")
        roots = {name: folder / "roots" / name for name in state.host_names}  # the test's own

        def boot_root(name: str) -> dict:
            return {"vnetctl_persist_root": str(roots[name])}

        inventory = inventory_with(state, folder / "inventory.yml", boot_root)
        yield state, names, str(inventory), roots[names["h1"]], folder


def sh(state, host: str, command: str) -> str:
    return host_exec(state.name, host, ["sh", "-c", command], check=True).stdout


def forwarding(state, router: str) -> str:
    return sh(state, router, "cat /proc/sys/net/ipv4/ip_forward").strip()


def ping_across(state, names: dict) -> bool:
    """h2 reaches h3's address on the other segment: only through h1, routing."""
    argv = ["ping", "-c", "1", "-W", "1", "192.168.72.3"]
    return host_exec(state.name, names["h2"], argv).returncode == 0


def run(capsys, book: Path, inventory: str, host: str, *more: str) -> tuple[int, list[dict]]:
    """The play on `host` alone: its code and the results of its tasks."""
    code = main(["run", str(book), "-i", inventory, "--limit", host, "--format", "json", *more])
    results = json.loads(capsys.readouterr().out)["results"]
    return code, [r for r in results if r["index"] >= 0]


def test_ip_forward_is_applied_for_real_persisted_and_switched_off(lab, capsys):
    state, names, inventory, root, folder = lab
    book = folder / "forward.yml"

    def declare(enabled: bool) -> None:
        task = {"name": "router", "ip_forward": {"enabled": enabled}}
        book.write_text(yaml.safe_dump([{"hosts": "all", "persist": "networkd",
                                         "tasks": [task]}]))  # fmt: skip

    router = names["h1"]
    assert forwarding(state, router) == "0" and not ping_across(state, names)
    declare(True)
    code, results = run(capsys, book, inventory, router, "--check")
    assert code == 0 and [r["status"] for r in results] == ["changed"], results
    assert results[0]["commands"] == ["sysctl net/ipv4/ip_forward=1"]
    assert forwarding(state, names["h1"]) == "0" and not (root / FILE).exists()

    code, results = run(capsys, book, inventory, router)
    assert code == 0 and [r["status"] for r in results] == ["changed"], results
    assert results[0]["resource"] == "sysctl net.ipv4.ip_forward", results
    assert results[0]["data"]["persist"]["mode"] == "networkd", results
    assert forwarding(state, names["h1"]) == "1"
    wait_until(lambda: ping_across(state, names), 10, "h2 to reach h3 through h1")
    assert (root / FILE).read_text().endswith("\nnet.ipv4.ip_forward = 1\n")
    assert forwarding(state, names["h2"]) == "0"  # h1 only: its own network namespace

    stamp = (root / FILE).stat().st_mtime_ns
    code, results = run(capsys, book, inventory, router)
    assert code == 0 and [r["status"] for r in results] == ["ok"], results
    assert (root / FILE).stat().st_mtime_ns == stamp

    declare(False)
    code, results = run(capsys, book, inventory, router)
    assert code == 0 and [r["status"] for r in results] == ["changed"], results
    assert forwarding(state, names["h1"]) == "0" and not ping_across(state, names)
    assert (root / FILE).read_text().endswith("\nnet.ipv4.ip_forward = 0\n")


def test_vnetctl_facts_reports_the_setting_as_the_fixtures_recorded_it(lab, capsys):
    """The plan fixtures' facts were recorded from such a host with `vnetctl facts`."""
    state, names, inventory, _, _ = lab
    sh(state, names["h3"], "sysctl -q -w net.ipv4.ip_forward=1")
    assert main(["facts", "-i", inventory, "--limit", names["h3"]]) == 0
    assert json.loads(capsys.readouterr().out)["hosts"][names["h3"]]["ip_forward"] is True
