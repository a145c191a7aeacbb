"""Bridges own the ports they declare, not the VMs': a VM's port (the host's model
decides: vnet_hostnet.vm_port) is never a change, never in a diff, never in a snapshot,
unless a task names it. Recorded facts: a Linux bridge and an OVS bridge with a tap
attached after the run, a port a port group claims, and libvirt's marks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog
from vnetctl.snapshot.playbook import host_tasks

CATALOG = Catalog()
LIB = CATALOG.host_lib()
FACTS = Path(__file__).parent / "fixtures" / "facts"
VM_PORTS = {
    "vm_ports_bridge.json": ["vm8p", "vnet7"],  # guarded by a group; a tap
    "vm_ports_ovs.json": ["vm8p", "vnet7", "vnet9"],
}  # group mark; libvirt's; a tap
OVS_PORTS = [{"name": "eth1"}, {"name": "eth2"}, {"name": "hostvm", "type": "internal"}]
CASES = [("vm_ports_bridge.json", "linux_bridge", {"name": "br-vm", "ports": ["eth1", "eth2"]}),
         ("vm_ports_ovs.json", "ovs_bridge", {"name": "br-vm", "ports": OVS_PORTS})]  # fmt: skip


def recorded(name: str) -> dict:
    return json.loads((FACTS / name).read_text())


@pytest.mark.parametrize(("facts_file", "module", "params"), CASES)
def test_a_check_run_neither_changes_nor_shows_the_vm_ports(facts_file, module, params):
    result = LIB.execute(CATALOG.load(module), params, True, LIB.Facts(recorded(facts_file)))
    assert not result["changed"] and not result["failed"], result
    shown = json.dumps(result["diff"])
    assert [p for p in VM_PORTS[facts_file] if p in shown] == []


@pytest.mark.parametrize(("facts_file", "module", "params"), CASES)
def test_a_check_run_that_detaches_one_shows_that_one_only(facts_file, module, params):
    facts = LIB.Facts(recorded(facts_file))
    result = LIB.execute(CATALOG.load(module), dict(params, detach=["vnet7"]), True, facts)
    assert [(c["field"], sorted(set(c["before"]) - set(c["after"])))
            for c in result["changes"]] == [("ports", ["vnet7"])]  # fmt: skip


@pytest.mark.parametrize(
    ("facts_file", "owned"),
    [("vm_ports_bridge.json", ["eth1", "eth2"]), ("vm_ports_ovs.json", ["eth1", "eth2", "hostvm"])],
)
def test_a_snapshot_declares_the_bridges_own_ports_not_the_vms(facts_file, owned):
    (bridge,) = [p for m, p in host_tasks(CATALOG, recorded(facts_file))
                 if m in ("linux_bridge", "ovs_bridge") and p["name"] == "br-vm"]  # fmt: skip
    assert sorted(p if isinstance(p, str) else p["name"] for p in bridge["ports"]) == owned
