"""What boot makes of the files vnetctl writes, beside someone else's (issue 31): a NIC
that becomes a bridge's port while a foreign `20-eth0.network` gives it the address
gets vnetctl's own file, which networkd picks first (a drop-in cannot take addresses
away), and every task's drop-ins for it follow; the oneshot unit and its enable link,
removed by hand, are drift and a run writes them again (a rollback restores the link as
a link)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from vnetctl.catalog import Catalog

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = Catalog()
host = CATALOG.host_lib()
persist = sys.modules["vnet_persist"]
NET = "etc/systemd/network"
FOREIGN = "[Match]\nName=eth0\n\n[Network]\nAddress=10.98.0.1/24\nGateway=10.98.0.254\n"
MGMT = {"name": "br-mgmt", "ports": ["eth0"]}
OURS = f"{NET}/10-vnetctl-eth0.network"
PORT = f"{OURS}.d/10-vnetctl-bridge-br-mgmt.conf"
THEIRS_PORT = f"{NET}/20-eth0.network.d/10-vnetctl-bridge-br-mgmt.conf"


def render(module_name, facts_file, params, root):
    module = CATALOG.load(module_name)
    facts = host.Facts(json.loads((FIXTURES / "facts" / facts_file).read_text()))
    planned = host.plan(module, params, facts)
    units = persist.Units(host.resource_id(module, planned["params"]), str(root))
    module.persist(planned["params"], planned["desired"], facts, units)
    return units


def foreign_eth0(root: Path, name: str = "20-eth0.network", text: str = FOREIGN) -> None:
    """eth0 configured by someone else's file, as networkd's state says."""
    (root / NET).mkdir(parents=True, exist_ok=True)
    (root / NET / name).write_text(text)
    (root / "sys/class/net/eth0").mkdir(parents=True, exist_ok=True)
    (root / "sys/class/net/eth0/ifindex").write_text("2\n")
    (root / "run/systemd/netif/links").mkdir(parents=True, exist_ok=True)
    (root / "run/systemd/netif/links/2").write_text(f"NETWORK_FILE=/{NET}/{name}\n")


def on_disk(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.joinpath(NET).rglob("*") if p.is_file()}


def test_the_management_nic_bridged_gets_a_file_that_replaces_the_foreign_one(tmp_path):
    foreign_eth0(tmp_path)
    units = render("linux_bridge", "underlay_routed.json", MGMT, tmp_path)
    assert units.files[OURS] == persist.base_text("eth0")
    assert units.files[PORT] == "# vnetctl owner: bridge br-mgmt\n\n[Network]\nBridge=br-mgmt\n"
    assert not any("20-eth0" in path for path in units.files)
    bridge = units.files[f"{NET}/10-vnetctl-br-mgmt.network.d/10-vnetctl-bridge-br-mgmt.conf"]
    assert "Address=10.98.0.1/24" in bridge and "Gateway=10.98.0.254" in bridge
    assert "10-vnetctl-eth0.network" < "20-eth0.network"  # networkd uses the first that matches


def test_the_old_layout_is_not_persisted_and_a_run_rewrites_it(tmp_path):
    """What vnetctl wrote before: only Bridge= beside the foreign file's Address= (both
    eth0 and br-mgmt with the address after a reboot). Drift sees it; a run mends it."""
    foreign_eth0(tmp_path)
    (tmp_path / THEIRS_PORT).parent.mkdir(parents=True)
    (tmp_path / THEIRS_PORT).write_text(
        "# vnetctl owner: bridge br-mgmt\n\n[Network]\nBridge=br-mgmt\n"
    )
    units = render("linux_bridge", "underlay_routed.json", MGMT, tmp_path)
    found = {(c["path"], c["before"] is None, c["after"] is None)
             for c in persist.settle(units, check=True)}  # fmt: skip
    assert {(THEIRS_PORT, False, True), (OURS, True, False), (PORT, True, False)} <= found
    persist.settle(units, check=False)
    assert {OURS, PORT} <= on_disk(tmp_path) and THEIRS_PORT not in on_disk(tmp_path)
    again = render("linux_bridge", "underlay_routed.json", MGMT, tmp_path)
    assert persist.settle(again, check=True) == []


def test_other_tasks_drop_ins_follow_the_port_and_go_back_when_it_leaves(tmp_path):
    foreign_eth0(tmp_path)
    link = {"name": "eth0", "mtu": 1500}
    persist.settle(render("link", "underlay_routed.json", link, tmp_path), check=False)
    theirs_link = f"{NET}/20-eth0.network.d/10-vnetctl-link-eth0.conf"
    assert theirs_link in on_disk(tmp_path)

    persist.settle(render("linux_bridge", "underlay_routed.json", MGMT, tmp_path), check=False)
    ours_link = f"{OURS}.d/10-vnetctl-link-eth0.conf"
    assert {OURS, PORT, ours_link} <= on_disk(tmp_path) and theirs_link not in on_disk(tmp_path)
    assert persist.settle(render("link", "underlay_routed.json", link, tmp_path), check=True) == []

    gone = dict(MGMT, state="absent")
    persist.settle(render("linux_bridge", "underlay_routed.json", gone, tmp_path), check=False)
    left = on_disk(tmp_path)
    assert theirs_link in left and not {OURS, PORT, ours_link} & left
    assert persist.settle(render("link", "underlay_routed.json", link, tmp_path), check=True) == []


def test_a_foreign_file_without_addresses_keeps_the_port_s_drop_in(tmp_path):
    foreign_eth0(tmp_path, text="[Match]\nName=eth0\n\n[Link]\nMTUBytes=1500\n")
    units = render("linux_bridge", "underlay_routed.json", MGMT, tmp_path)
    assert THEIRS_PORT in units.files and OURS not in units.files


def test_a_foreign_file_that_sorts_first_cannot_be_replaced_and_the_task_says_so(tmp_path):
    foreign_eth0(tmp_path, name="05-eth0.network")
    with pytest.raises(persist.PersistError, match="05-eth0.network gives it Address=10.98"):
        render("linux_bridge", "underlay_routed.json", MGMT, tmp_path)


def test_an_ovs_port_whose_foreign_file_gives_it_addresses_is_replaced_too(tmp_path):
    foreign_eth0(tmp_path, text=FOREIGN.replace("eth0", "eth1"))
    (tmp_path / "run/systemd/netif/links/2").unlink()  # not running: the file is found
    params = {"name": "br-up", "ports": [{"name": "eth1"}]}
    units = render("ovs_bridge", "ovs_nic_routed.json", params, tmp_path)
    drop_in = units.files[f"{NET}/10-vnetctl-eth1.network.d/10-vnetctl-ovs-bridge-br-up.conf"]
    assert drop_in.splitlines()[1] == "# a port of br-up at boot: its addresses and routes are " \
        "its master's"  # fmt: skip
    assert f"{NET}/10-vnetctl-eth1.network" in units.files


SHAPING = {"name": "eth2", "egress_limit": 50, "ingress_limit": 30}


def test_the_oneshot_unit_and_its_link_removed_by_hand_are_drift_and_written_again(tmp_path):
    units = render("traffic_shaping", "shaping_vm_port.json", SHAPING, tmp_path)
    persist.settle(units, check=False)
    unit, wants = tmp_path / persist.UNIT_PATH, tmp_path / persist.WANTS_PATH
    unit.unlink()
    wants.unlink()
    drift = persist.settle(units, check=True)
    assert [(c["path"], c["before"], c["after"]) for c in drift] == [
        (persist.WANTS_PATH, None, "symlink to /etc/systemd/system/vnetctl-reapply.service"),
        (persist.UNIT_PATH, None, persist.UNIT),
    ]
    assert not unit.exists() and not os.path.lexists(wants)  # check mode writes nothing
    persist.settle(units, check=False)
    assert unit.read_text() == persist.UNIT
    assert os.readlink(wants) == "/etc/systemd/system/vnetctl-reapply.service"
    assert persist.settle(units, check=True) == []
    wants.unlink()
    wants.write_text("not a link\n")  # a file in its place is not an enable link
    assert [c["path"] for c in persist.settle(units, check=True)] == [persist.WANTS_PATH]


def test_a_rollback_restores_the_enable_link_as_a_link(tmp_path):
    from vnetctl.hostside import safe_apply  # noqa: PLC0415

    persist.settle(render("traffic_shaping", "shaping_vm_port.json", SHAPING, tmp_path),
                   check=False)  # fmt: skip
    gone = render("traffic_shaping", "shaping_vm_port.json", dict(SHAPING, state="absent"),
                  tmp_path)  # fmt: skip
    changes = persist.settle(gone, check=False)
    wants = tmp_path / persist.WANTS_PATH
    assert not os.path.lexists(wants)
    confirm = safe_apply.Confirm({}, host, {}, None, None)
    confirm.files_journal(1, str(tmp_path))(changes)
    assert safe_apply.roll_back(confirm.journal.entries, host, {})["problems"] == []
    assert os.readlink(wants) == "/etc/systemd/system/vnetctl-reapply.service"
