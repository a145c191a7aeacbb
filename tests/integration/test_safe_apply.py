"""Safe apply on the lab, where eth0 carries the address vnetctl reaches each host by:
the management NIC moves into a bridge without cutting the host off (and back out of
it), a change that would cut it off is refused before anything changes (in check mode
too), and one applied anyway under a rollback timer is undone by the host itself. The
controller is on-link (the lab's bridge): a prefix that no longer holds it, port
security on its way in, a renumbering that takes the management address along all
count as cuts."""

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

    for check in (["--check", "--diff"], []):  # check mode tells what the real run does
        code, doc, err = run(lab3, playbook, "--limit", host, *check)
        assert code == 1, err
        statuses = sorted((r["index"], r["task"], r["status"]) for r in doc["results"])
        assert statuses == [(0, "step", "not_started"), (1, "link", "failed")]
        (refused,) = [r for r in doc["results"] if r["status"] == "failed"]
        assert refused["msg"].startswith("refused before any change") and effect in refused["msg"]
        assert "--confirm-timeout" in refused["msg"]
        assert [t["cuts"] for t in refused["data"]["management_path"]] == [True]
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


def migrate(lab, host, tmp_path: Path) -> None:
    """eth0 into br-mgmt, with its address (and routes)."""
    playbook = book(tmp_path, "migrate", {"linux_bridge": {"name": "br-mgmt", "ports": ["eth0"]}})
    code, _, err = run(lab, playbook, "--limit", host.name)
    assert code == 0, err


def cidrs(lab, host: str, dev: str) -> list[str]:
    (entry,) = ip_json(lab, host, "addr", "show", "dev", dev)
    return [f"{a['local']}/{a['prefixlen']}" for a in entry["addr_info"] if a["scope"] == "global"]


def rolled_back(doc: dict, task: str) -> bool:
    (line,) = [r for r in doc["results"] if r["index"] == -1]
    return line["msg"].startswith(f"rolled back: contact lost after applying task '{task}'")


def test_a_prefix_that_leaves_the_controller_off_link_is_a_cut(lab3, fresh_hosts, tmp_path):
    """/32 keeps the address but loses the on-link route to the controller (issue 31:
    no timer was armed, the host was lost)."""
    host = lab3.hosts[0]
    migrate(lab3, host, tmp_path)
    task = {"name": "to /32", "linux_bridge": {"name": "br-mgmt", "ports": ["eth0"],
                                               "addresses": [f"{host.address}/32"]}}  # fmt: skip
    playbook = book(tmp_path, "to32", task)
    for check in (["--check", "--diff"], []):
        code, doc, err = run(lab3, playbook, "--limit", host.name, *check)
        assert code == 1, err
        (result,) = doc["results"]
        assert result["status"] == "failed", result
        assert result["msg"].startswith("refused before any change")
        assert "br-mgmt: controller no longer on-link" in result["msg"]
    assert cidrs(lab3, host.name, "br-mgmt") == [f"{host.address}/{lab3.prefixlen}"]
    code, doc, err = run(lab3, playbook, "--limit", host.name, "--confirm-timeout", "8s")
    assert code == 2 and rolled_back(doc, "to /32"), err
    assert cidrs(lab3, host.name, "br-mgmt") == [f"{host.address}/{lab3.prefixlen}"]
    assert vnetctl_pids(lab3, host.name) == []


def guarded_ports(lab, host: str) -> list[str]:
    out = host_exec(lab.name, host, ["nft", "-j", "list", "ruleset", "bridge"], check=True).stdout
    return [elem for item in json.loads(out)["nftables"] if item.get("set", {}).get("name")
            == "guarded" for elem in item["set"].get("elem", [])]  # fmt: skip


def test_port_security_on_the_management_bridge_is_a_cut(lab3, fresh_hosts, tmp_path):
    """`ports: ["*"]` on the bridge that holds the management address guards eth0, whose
    frames come from the controller (issue 31: exit 0, host lost)."""
    host = lab3.hosts[1]
    migrate(lab3, host, tmp_path)
    task = {"name": "guard", "port_group": {"name": "mgmt", "bridge": "br-mgmt", "ports": ["*"],
                                            "port_security": True}}  # fmt: skip
    playbook = book(tmp_path, "guard", task)
    code, doc, err = run(lab3, playbook, "--limit", host.name)
    assert code == 1, err
    (result,) = doc["results"]
    assert "eth0: port security" in result["msg"] and result["status"] == "failed"
    assert guarded_ports(lab3, host.name) == []
    drift = finish(start_vnetctl("drift", playbook, "-i", str(lab3.inventory_path),
                                 "--limit", host.name, "--no-history"))  # fmt: skip
    assert drift[0] == 2, drift[1] + drift[2]  # drift only compares: it is drift, not refused
    code, doc, err = run(lab3, playbook, "--limit", host.name, "--confirm-timeout", "8s")
    assert code == 2 and rolled_back(doc, "guard"), (err, [r["msg"] for r in doc["results"]])
    assert guarded_ports(lab3, host.name) == []
    assert vnetctl_pids(lab3, host.name) == []


def test_renumbering_inside_the_subnet_keeps_the_new_address(lab3, fresh_hosts, tmp_path):
    """br-mgmt's primary is another address of the subnet, the management address its
    secondary: with promote_secondaries=0 (this kernel's default) deleting the primary
    used to take both the new address and the management one along (issue 31)."""
    host = lab3.hosts[2]
    base = host.address.rsplit(".", 1)[0]
    old, new, mine = f"{base}.5/24", f"{base}.6/24", f"{host.address}/{lab3.prefixlen}"
    batch = ("link add br-mgmt type bridge\nlink set dev eth0 master br-mgmt\n"
             f"link set dev br-mgmt up\naddr add {old} dev br-mgmt\naddr add {mine} dev br-mgmt\n"
             f"addr del {mine} dev eth0\n")  # fmt: skip
    host_exec(lab3.name, host.name, ["ip", "-batch", "-"], input=batch, check=True)
    (entry,) = ip_json(lab3, host.name, "addr", "show", "dev", "br-mgmt")
    assert [a.get("secondary", False) for a in entry["addr_info"] if a["scope"] == "global"] == [
        False, True
    ]  # fmt: skip
    task = {"linux_bridge": {"name": "br-mgmt", "ports": ["eth0"], "addresses": [new, mine]}}
    playbook = book(tmp_path, "renumber", task)
    code, doc, err = run(lab3, playbook, "--limit", host.name)
    assert code == 0, err
    assert sorted(cidrs(lab3, host.name, "br-mgmt")) == sorted([new, mine])
    promote = host_exec(lab3.name, host.name, ["cat", "/proc/sys/net/ipv4/conf/br-mgmt/"
                                               "promote_secondaries"], check=True)  # fmt: skip
    assert promote.stdout.strip() == "0"  # set back after the change
    code, doc, err = run(lab3, playbook, "--limit", host.name)
    assert code == 0 and doc["stats"][host.name] == {"ok": 1}, err


@pytest.mark.parametrize("undo", [{"state": "absent"}, {"ports": []}], ids=["absent", "released"])
def test_a_migration_is_undone_with_the_address_and_routes(lab3, fresh_hosts, tmp_path, undo):
    """The bridge's address and routes go back to the NIC in the same batch (issue 31:
    `state: absent` was refused as a cut, releasing eth0 failed to verify)."""
    host = lab3.hosts[0]
    host_exec(lab3.name, host.name, ["ip", "route", "replace", EXTRA_ROUTE, "via", lab3.gateway,
                                     "dev", "eth0"], check=True)  # fmt: skip
    migrate(lab3, host, tmp_path)
    playbook = book(tmp_path, "undo", {"name": "undo", "linux_bridge": {"name": "br-mgmt", **undo}})
    code, doc, err = run(lab3, playbook, "--limit", host.name)
    assert code == 0, err
    (result,) = doc["results"]
    assert result["status"] == "changed" and result["data"]["management_path"], result
    assert not any(t["cuts"] for t in result["data"]["management_path"])
    assert global_addresses(lab3, host.name, "eth0") == [host.address]
    routes = ip_json(lab3, host.name, "route", "show", EXTRA_ROUTE)
    assert [(r["gateway"], r["dev"]) for r in routes] == [(lab3.gateway, "eth0")]
    (eth0,) = ip_json(lab3, host.name, "link", "show", "eth0")
    assert "master" not in eth0
    code, doc, err = run(lab3, playbook, "--limit", host.name)  # reached again: nothing to do
    assert code == 0 and doc["stats"][host.name] == {"ok": 1}, err
