"""On a kernel without bonding, 802.1Q or bridge VLAN filtering (the lab's), a task that
needs one fails with the feature and the module to load, in check mode too, and
changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

TEAMING = str(Path(__file__).parents[2] / "playbooks" / "linux-teaming.yml")


def run(capsys, lab, playbook, *extra):
    code = main(["run", playbook, "-i", str(lab.inventory_path), "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def links(lab, host):
    out = host_exec(lab.name, host, ["ip", "-j", "-d", "link", "show"], check=True).stdout
    return {link["ifname"]: link for link in json.loads(out)}


@pytest.mark.parametrize("check", [False, True], ids=["apply", "check"])
def test_the_teaming_playbook_fails_naming_bonding_and_changes_nothing(
    lab3, fresh_hosts, capsys, check
):
    host = lab3.host_names[0]
    before = links(lab3, host)
    code, doc = run(capsys, lab3, TEAMING, "--limit", host, *(["--check"] if check else []))
    assert code == 2
    bond = next(r for r in doc["results"] if r["task"] == "bond of the two uplinks")
    assert bond["status"] == "failed"
    assert "lacks NIC bonding (CONFIG_BONDING)" in bond["msg"]
    assert "`modprobe bonding`" in bond["msg"] and "Nothing was changed" in bond["msg"]
    after = links(lab3, host)
    assert "bond0" not in after
    for nic in ("eth1", "eth2"):
        assert after[nic].get("master") is None and after[nic]["flags"] == before[nic]["flags"]


def test_a_vlan_and_a_filtering_bridge_fail_naming_what_the_kernel_lacks(
    lab3, fresh_hosts, capsys, tmp_path
):
    host = lab3.host_names[0]
    tasks = [
        {"name": "storage VLAN", "vlan": {"name": "eth1.100"}},
        {
            "name": "filtering bridge",
            "linux_bridge": {"name": "br-vf", "ports": ["eth2"], "vlan_filtering": True},
        },  # fmt: skip
    ]
    for task in tasks:
        playbook = tmp_path / "lacks.yml"
        playbook.write_text(yaml.safe_dump([{"hosts": host, "tasks": [task]}]))
        code, doc = run(capsys, lab3, str(playbook))
        (result,) = doc["results"]
        assert code == 2 and result["status"] == "failed"
        if "vlan" in task:
            assert "lacks 802.1Q VLAN devices (CONFIG_VLAN_8021Q)" in result["msg"]
            assert "`modprobe 8021q`" in result["msg"]
        else:
            assert "lacks bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)" in result["msg"]
    after = links(lab3, host)
    assert "eth1.100" not in after and "br-vf" not in after
