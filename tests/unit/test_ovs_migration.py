"""A NIC holding the host's address joins an OVS bridge: the plan moves the address and
every route through the NIC to the bridge's interface, in the shape safe apply reads as
a migration (vnet_safety: `add-port BR NIC` with `ip addr add ADDR dev BR` in the same
steps), never leaving the address nowhere, the routes on the bridge before the NIC loses
its address (the kernel drops a device's IPv4 routes with its last address)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from vnetctl.catalog import Catalog

CATALOG = Catalog()
host = CATALOG.host_lib()
safety = sys.modules["vnet_safety"]
FACTS = Path(__file__).parent / "fixtures" / "facts" / "ovs_nic_with_address.json"


def migration_steps() -> list[tuple[str, str]]:
    facts = host.Facts(json.loads(FACTS.read_text()))
    module = CATALOG.load("ovs_bridge")
    return host.plan(module, {"name": "br-up", "ports": [{"name": "eth1"}]}, facts)["steps"]


def test_the_address_is_given_to_the_bridge_before_the_nic_loses_it():
    lines = [" ".join(s) for s in migration_steps()]
    given = lines.index("ip addr add 192.168.60.2/24 dev br-up")
    assert lines.index("ovs-vsctl add-port br-up eth1") < given
    routed = lines.index("ip route replace default via 192.168.60.1 dev br-up")
    assert given < routed < lines.index("ip addr del 192.168.60.2/24 dev eth1")


def test_safe_apply_sees_the_bridge_receive_the_management_address():
    readded = {
        line.split()[-1]
        for tool, line in migration_steps()
        if safety._adds_address(tool, line, "192.168.60.2")
    }
    assert readded == {"br-up"}  # so `add-port br-up eth1` is a move, once safe apply reads it


def test_declared_addresses_are_the_bridges_own_exactly_on_the_first_run_as_on_a_re_apply():
    """One migration for every module (vnet_ip.moved): before, a NIC's address that
    joined with it was kept beside the declared ones on the first run and removed by the
    next; now the first run plans what the re-apply would, and the guard names it."""
    facts = host.Facts(json.loads(FACTS.read_text()))
    params = {"name": "br-up", "ports": [{"name": "eth1"}], "addresses": ["192.168.70.2/24"]}
    planned = host.plan(CATALOG.load("ovs_bridge"), params, facts)
    assert planned["desired"]["addresses"] == {"br-up": ["192.168.70.2/24"], "eth1": []}
    mgmt = safety.management_path(facts, "192.168.60.2")
    found = safety.classify(planned["steps"], mgmt, facts)
    assert ("eth1", "address removed", True) in [(f["device"], f["effect"], f["cuts"])
                                                  for f in found]  # fmt: skip
