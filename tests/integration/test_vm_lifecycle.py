"""A VM's life between runs (issue 25), on playbooks/libvirt-port-groups.yml: two lab
hosts with their own libvirtd, the first host's groups on a Linux bridge, the second's
on Open vSwitch, and one guest of port group db (`portgroup='db'` on libvirt network
`apps`):
  - started on the OVS host: as libvirt attaches its tap, the port is VLAN 20's and
    guarded for its MAC (vnetctl's hook), and the playbook's drift stays clean;
  - stopped: its port is gone, and drift is still clean (no noise from a VM that left);
  - defined and started on the Linux-bridge host: group db's policy follows it there
    (its tap guarded for its MAC in vnetctl's nftables table), drift clean.
No run of vnetctl between those steps: what the guest gets, it gets from libvirt and
the hook. One guest at a time: they run under qemu's software emulation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import LabState, restart_libvirt
from vnetctl.lab.vm.domain_xml import Guest, Nic
from vnetctl.lab.vm.guests import LabGuests

pytestmark = pytest.mark.lab
PLAYBOOK = str(Path(__file__).parents[2] / "playbooks" / "libvirt-port-groups.yml")
MAC = "52:54:00:7b:00:20"
DB1 = Guest("db1", Nic(network="apps", portgroup="db", tap="db1", mac=MAC),
            addresses=("10.70.20.11/24",))  # fmt: skip
ATTACHED = 30.0  # seconds for libvirt to attach the tap and the hook to record it


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory) -> Iterator[LabState]:
    with own_lab("vl", tmp_path_factory.mktemp("vl"), hosts=2, ovs=True, libvirt=True) as state:
        code = main(["run", PLAYBOOK, "-i", str(state.inventory_path), "--format", "json"])
        assert code == 0
        restart_libvirt(state.name)  # libvirtd finds the hooks the run installed
        yield state


def drift_is_clean(capsys, lab: LabState, tmp_path: Path) -> None:
    capsys.readouterr()
    code = main(["drift", PLAYBOOK, "-i", str(lab.inventory_path), "--format", "json",
                 "--history", str(tmp_path / "history.sqlite")])  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    assert code == 0, report


def handled(vms: LabGuests, tap: str) -> dict:
    """The hook's record of the port: its groups, the guest's MAC, how long it took."""
    path = f"/run/vnetctl/vm-ports/{tap}.json"
    wait_until(lambda: vms.sh(f"test -s {path}", check=False).returncode == 0, ATTACHED,
               f"the hook's record of {tap}")  # fmt: skip
    return json.loads(vms.sh(f"cat {path}").stdout)


def test_a_vm_started_stopped_and_moved_keeps_its_group_without_a_run(lab, capsys, tmp_path):
    linux, ovs = (LabGuests(lab.name, host) for host in lab.host_names)
    try:
        ovs.boot(DB1)
        record = handled(ovs, "db1")
        assert record["mac"] == MAC, record
        assert ovs.sh("ovs-vsctl get port db1 tag").stdout.strip() == "20"
        flows = ovs.sh("ovs-ofctl dump-flows br-apps").stdout
        assert f"dl_src={MAC}" in flows, flows  # db's forged-transmit rules for its MAC
        drift_is_clean(capsys, lab, tmp_path)

        ovs.remove("db1")  # stopped (and undefined: it moves)
        wait_until(lambda: "db1" not in ovs.sh("ovs-vsctl list-ports br-apps").stdout,
                   ATTACHED, "db1's port gone")  # fmt: skip
        drift_is_clean(capsys, lab, tmp_path)

        linux.boot(DB1)
        record = handled(linux, "db1")
        assert record["mac"] == MAC, record
        assert json.loads(linux.sh("ip -j link show dev db1").stdout)[0]["master"] == "br-apps"
        guarded = linux.sh("nft list set bridge vnetctl guarded").stdout
        assert "db1" in guarded, guarded
        assert MAC in linux.sh("nft list table bridge vnetctl").stdout
        drift_is_clean(capsys, lab, tmp_path)
    finally:
        for vms in (ovs, linux):
            vms.remove("db1")
