"""security_groups' side of the libvirt hook on Open vSwitch: which bridge a VM's port
is on, from facts as the hook gathers them (OVSDB's configuration, not the `ovs` fact
a run reads first), recorded from a lab host (fixtures/facts/ovs_port_group_secured)."""

from __future__ import annotations

import json
from pathlib import Path

from vnetctl.catalog import Catalog

FIXTURE = Path(__file__).parent / "fixtures" / "facts" / "ovs_port_group_secured.json"


def test_a_userspace_datapath_port_is_found_without_the_ovs_fact():
    catalog = Catalog()
    facts_class = catalog.host_lib().Facts
    module = catalog.load("security_groups")
    recorded = json.loads(FIXTURE.read_text())
    config = recorded["ovs_config"]["ports"]
    hooked = {k: v for k, v in recorded.items() if k != "ovs"}  # not read by the hook yet
    ports = {p: e["bridge"] for p, e in config.items() if p != e["bridge"]}
    assert ports
    assert {p: module.attached_to(p, facts_class(hooked)) for p in ports} == ports
    assert module.attached_to("no-such-port", facts_class(hooked)) is None
