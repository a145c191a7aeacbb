"""Safe apply on the lab, where eth0 carries the address vnetctl reaches each host by:
the management NIC moves into a bridge without cutting the host off, a change that
would cut it off is refused before anything changes, and one applied anyway under a
rollback timer is undone by the host itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration.faults import finish, start_vnetctl, vnetctl_pids
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

EXTRA_ROUTE = "10.99.0.0/16"  # a route through eth0 that must move with its address


def book(tmp_path: Path, name: str, task: dict, **play) -> str:
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump([{"hosts": "all", **play, "tasks": [task]}]))
    return str(path)


def run(lab, playbook: str, *extra: str) -> tuple[int, dict, str]:
    code, out, err = finish(
        start_vnetctl("run", playbook, "-i", str(lab.inventory_path), "--format", "json", *extra),
        timeout=150,
    )
    return code, json.loads(out), err


def ip_json(lab, host: str, *argv: str) -> list:
    return json.loads(host_exec(lab.name, host, ["ip", "-j", *argv], check=True).stdout)


def global_addresses(lab, host: str, dev: str) -> list[str]:
    (entry,) = ip_json(lab, host, "addr", "show", "dev", dev)
    return [a["local"] for a in entry["addr_info"] if a.get("scope") == "global"]


def test_the_management_nic_moves_into_a_bridge_and_the_host_stays_reachable(
    lab3, fresh_hosts, tmp_path
):
    host = lab3.hosts[0]
    host_exec(lab3.name, host.name, ["ip", "route", "add", EXTRA_ROUTE, "via", lab3.gateway,
                                     "dev", "eth0"], check=True)  # fmt: skip
    playbook = book(tmp_path, "mgmt", {"linux_bridge": {"name": "br-mgmt", "ports": ["eth0"]}})
    code, doc, err = run(lab3, playbook, "--limit", host.name)
    assert code == 0, err
    (result,) = doc["results"]
    assert result["status"] == "changed"
    touched = result["data"]["management_path"]
    assert [(t["device"], t["effect"], t["cuts"]) for t in touched] == [
        ("eth0", "moved into br-mgmt", False)
    ]
    assert global_addresses(lab3, host.name, "br-mgmt") == [host.address]
    assert global_addresses(lab3, host.name, "eth0") == []
    routes = ip_json(lab3, host.name, "route", "show", EXTRA_ROUTE)
    assert [(r["gateway"], r["dev"]) for r in routes] == [(lab3.gateway, "br-mgmt")]
    (eth0,) = ip_json(lab3, host.name, "link", "show", "eth0")
    assert eth0["master"] == "br-mgmt"
    # the host was reached again over new connections: by this run's confirmation, and
    # by the next runs, which find nothing to do
    code, doc, err = run(lab3, playbook, "--limit", host.name)
    assert code == 0 and doc["stats"][host.name] == {"ok": 1}, err
    drift = finish(start_vnetctl("drift", playbook, "-i", str(lab3.inventory_path),
                                 "--limit", host.name, "--no-history"))  # fmt: skip
    assert drift[0] == 0, drift[1] + drift[2]
    assert vnetctl_pids(lab3, host.name) == []


@pytest.mark.parametrize(
    ("task", "effect"),
    [
        ({"link": {"name": "eth0", "admin_state": "down"}}, "eth0: down"),
        ({"link": {"name": "eth0", "mtu": 68}}, "eth0: mtu too low"),
    ],
)
def test_a_change_that_cuts_the_host_off_is_refused_before_anything_changes(
    lab3, fresh_hosts, tmp_path, task, effect
):
    host = lab3.host_names[1]
    before = ip_json(lab3, host, "link", "show", "eth0")[0]
    harmless = {"name": "step", "link": {"name": "eth1", "mtu": 1400}}
    playbook = tmp_path / "cut.yml"  # a harmless task first: it must not run either
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "tasks": [harmless, task]}]))
    playbook = str(playbook)

    code, doc, err = run(lab3, playbook, "--limit", host, "--check")
    assert code == 0, err  # check mode says what would happen, and marks the cut
    marked = [r for r in doc["results"] if r["data"].get("management_path")]
    assert [t["cuts"] for r in marked for t in r["data"]["management_path"]] == [True]

    code, doc, err = run(lab3, playbook, "--limit", host)
    assert code == 1, err
    statuses = sorted((r["index"], r["task"], r["status"]) for r in doc["results"])
    assert statuses == [(0, "step", "not_started"), (1, "link", "failed")]
    refusal = next(r["msg"] for r in doc["results"] if r["status"] == "failed")
    assert refusal.startswith("refused before any change") and effect in refusal
    assert "--confirm-timeout" in refusal
    after = ip_json(lab3, host, "link", "show", "eth0")[0]
    assert (after["mtu"], after["flags"]) == (before["mtu"], before["flags"])
    assert ip_json(lab3, host, "link", "show", "eth1")[0]["mtu"] == 1500


def test_a_bad_address_on_the_bridge_is_rolled_back_by_the_host(lab3, fresh_hosts, tmp_path):
    """The management NIC into a bridge with a wrong address: a cut, applied anyway under
    a rollback timer; the host comes back as it was. The other hosts, in the same run,
    only get a harmless bridge and are confirmed."""
    victim, others = lab3.hosts[2], lab3.host_names[:2]
    wrong = lab3.subnet.rsplit(".", 1)[0] + ".250/24"  # in the lab's subnet: ours
    task = {
        "name": "bridge",
        "linux_bridge": {
            "name": "br-mgmt",
            "ports": f"{{{{ ['eth0'] if inventory_hostname == '{victim.name}' else ['eth1'] }}}}",
            "addresses": f"{{{{ ['{wrong}'] if inventory_hostname == '{victim.name}' "
            "else omit }}",
        },
    }
    playbook = book(tmp_path, "wrong", task)
    code, doc, err = run(lab3, playbook, "--confirm-timeout", "10s")
    assert code == 2, err
    (line,) = [r for r in doc["results"] if r["host"] == victim.name and r["index"] == -1]
    assert line["msg"].startswith("rolled back: contact lost after applying task 'bridge'")
    assert global_addresses(lab3, victim.name, "eth0") == [victim.address]
    assert not any(link["ifname"] == "br-mgmt" for link in ip_json(lab3, victim.name, "link"))
    for host in others:
        assert doc["stats"][host] == {"changed": 1}
    for host in lab3.host_names:
        assert vnetctl_pids(lab3, host) == []
