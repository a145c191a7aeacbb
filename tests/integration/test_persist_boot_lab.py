"""At boot, on the lab (issue 31): eth0 set up by someone else's `20-eth0.network` (the
host's address, a route), taken by br-mgmt. systemd-networkd, started on the files
vnetctl wrote (tests/integration/networkd_boot.py), gives the address and the route to
br-mgmt only; with vnetctl's former files (a `Bridge=` drop-in of the foreign file) it
gave them to eth0 and br-mgmt both, and drift now reports those as not persisted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.integration import networkd_boot
from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, reset_hosts

pytestmark = pytest.mark.lab

ROUTE = "10.99.0.0/16"  # a route through eth0 that its foreign file gives it
NET = "etc/systemd/network"
OLD_DROP_IN = f"{NET}/20-eth0.network.d/10-vnetctl-bridge-br-mgmt.conf"


@pytest.fixture(scope="module")
def lab1(lab_required, tmp_path_factory):
    reason = networkd_boot.skip_reason()
    if reason:
        pytest.skip(reason)
    with own_lab("pb", tmp_path_factory.mktemp("pb"), hosts=1) as state:
        yield state


def vnetctl(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def booted_state(namespace: str) -> dict:
    addrs = {a["ifname"]: a for a in networkd_boot.ip_json(namespace, "addr")}
    return {
        "v4": {name: sorted(f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", [])
                            if i["family"] == "inet") for name, a in addrs.items()},
        "master": {name: a.get("master") for name, a in addrs.items()},
        "routes": sorted((r.get("gateway"), r["dev"])
                         for r in networkd_boot.ip_json(namespace, "route", "show", ROUTE)),
    }  # fmt: skip


def test_the_bridged_management_nic_boots_without_its_foreign_address(lab1, tmp_path, capsys):
    reset_hosts(lab1.name)
    host = lab1.hosts[0]
    root = tmp_path / "root"
    (root / NET).mkdir(parents=True)
    (root / NET / "20-eth0.network").write_text(
        f"[Match]\nName=eth0\n\n[Network]\nAddress={host.address}/{lab1.prefixlen}\n\n"
        f"[Route]\nDestination={ROUTE}\nGateway={lab1.gateway}\n"
    )
    done = host_exec(lab1.name, host.name, ["ip", "route", "add", ROUTE, "via", lab1.gateway])
    assert done.returncode == 0, done.stderr
    # networkd's state, as on a host it configured: eth0 from that file
    link = host_exec(lab1.name, host.name, ["ip", "-j", "link", "show", "eth0"], check=True)
    index = json.loads(link.stdout)[0]["ifindex"]
    (root / "sys/class/net/eth0").mkdir(parents=True)
    (root / "sys/class/net/eth0/ifindex").write_text(f"{index}\n")
    (root / "run/systemd/netif/links").mkdir(parents=True)
    (root / f"run/systemd/netif/links/{index}").write_text(f"NETWORK_FILE=/{NET}/20-eth0.network\n")
    doc = yaml.safe_load(lab1.inventory_path.read_text())
    doc["all"]["children"]["lab"]["hosts"][host.name]["vnetctl_persist_root"] = str(root)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump(doc))
    book = tmp_path / "mgmt.yml"
    book.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "all",
                    "persist": "networkd",
                    "tasks": [
                        {
                            "name": "management bridge",
                            "linux_bridge": {"name": "br-mgmt", "ports": ["eth0"]},
                        }
                    ],
                }
            ]
        )
    )

    code, doc = vnetctl(capsys, "run", str(book), "-i", str(inventory))
    assert code == 0, doc

    namespace = f"vnb-{lab1.name}"
    with networkd_boot.booted(namespace, root / NET, ["eth0"], tmp_path / "networkd.log",
                              ready=lambda ns: bool(booted_state(ns)["routes"])) as ns:  # fmt: skip
        state = booted_state(ns)
    assert state["v4"]["eth0"] == [] and state["master"]["eth0"] == "br-mgmt", state
    assert state["v4"]["br-mgmt"] == [f"{host.address}/{lab1.prefixlen}"], state
    assert state["routes"] == [(lab1.gateway, "br-mgmt")], state
    written = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert f"{NET}/10-vnetctl-eth0.network" in written and OLD_DROP_IN not in written
    assert vnetctl(capsys, "drift", str(book), "-i", str(inventory), "--no-history")[0] == 0

    # what vnetctl wrote before: a Bridge= drop-in of the foreign file, nothing of its own
    for path in sorted(root.joinpath(NET).glob("10-vnetctl-eth0.network*"), reverse=True):
        for item in sorted(path.glob("*")) if path.is_dir() else []:
            item.unlink()
        path.rmdir() if path.is_dir() else path.unlink()
    (root / OLD_DROP_IN).parent.mkdir()
    (root / OLD_DROP_IN).write_text(
        "# vnetctl owner: bridge br-mgmt\n\n[Network]\nBridge=br-mgmt\n"
    )
    code, doc = vnetctl(capsys, "drift", str(book), "-i", str(inventory), "--no-history")
    found = {(i["kind"], i["field"]) for h in doc["hosts"] for i in h["items"]}
    assert code == 2 and found == {
        ("not persisted", "/" + OLD_DROP_IN), ("not persisted", f"/{NET}/10-vnetctl-eth0.network"),
        ("not persisted", f"/{NET}/10-vnetctl-eth0.network.d/10-vnetctl-bridge-br-mgmt.conf"),
    }, doc  # fmt: skip
    assert vnetctl(capsys, "run", str(book), "-i", str(inventory))[0] == 0
    assert not Path(root / OLD_DROP_IN).exists()
    assert vnetctl(capsys, "drift", str(book), "-i", str(inventory), "--no-history")[0] == 0
