"""Running guests keep their ports through every example playbook that touches their
bridge (issue 25): a real VM (the lab's tiny guest under libvirt, `lab up --libvirt`)
on a Linux bridge and one on an Open vSwitch bridge; each playbook applied again, twice:
the guest's port stays on its bridge, the guest still answers, the second run changes
nothing and drift is clean.

- Linux (host 1): playbooks/site.yml, port-groups.yml and vm-bridges.yml all declare
  br-vm with eth1 alone; the guest is port group web's first guest (its MAC and IP), so
  port-groups.yml's port security lets it through.
- Open vSwitch (host 2): playbooks/ovs-port-groups.yml declares br-pg with eth1 and
  `vnet*` VM ports; the guest's port is `pg1` (libvirt's <target dev>), which the
  bridge does not declare: libvirt's marks make it a VM's. A group of the test's
  (`pg*`) claims it, as the example's groups guard the bridge.

The other example playbooks touch neither bridge (ovs-teaming.yml and vxlan-mesh-ovs.yml
take eth1 for bridges of their own; linux-teaming.yml needs bonding, which this kernel
lacks). Guests are CPU-heavy under emulation: one at a time here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import LabState, restart_libvirt
from vnetctl.lab.vm.domain_xml import Guest, Nic
from vnetctl.lab.vm.guests import LabGuests

pytestmark = pytest.mark.lab
PLAYBOOKS = Path(__file__).parents[2] / "playbooks"
BOOT_TIMEOUT = 120.0  # a guest answers in 5-8 s on a quiet machine; 2 shared cores may be busy


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory) -> Iterator[LabState]:
    with own_lab("vg", tmp_path_factory.mktemp("vg"), hosts=2, ovs=True, libvirt=True) as state:
        yield state


def run(capsys, lab: LabState, host: str, playbook: str, *extra: str) -> tuple[int, dict]:
    argv = [str(PLAYBOOKS / playbook), "-i", str(lab.inventory_path), "--limit", host]
    code = main(["run", *argv, "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def drift(capsys, lab: LabState, host: str, playbook: str, history: Path) -> tuple[int, dict]:
    argv = [str(PLAYBOOKS / playbook), "-i", str(lab.inventory_path), "--limit", host]
    code = main(["drift", *argv, "--history", str(history), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def said(doc: dict) -> list[str]:
    return [f"{r.get('task')}: {r['status']}: {r.get('msg')}" for r in doc["results"]]


def say(capsys, line: str) -> None:
    """A figure for `pytest -s`, past capsys (which holds the runs' JSON)."""
    with capsys.disabled():
        print("\n" + line, end="")


def master_of(vms: LabGuests, port: str) -> str | None:
    return json.loads(vms.sh(f"ip -j link show dev {port}").stdout)[0].get("master")


def survives(capsys, lab, vms, host, playbook, port, bridge, address, tmp_path) -> float:
    """Apply `playbook` twice with the guest running: its port stays, it answers, the
    second run changes nothing, drift is clean. Seconds the first run took."""
    started = time.monotonic()
    code, doc = run(capsys, lab, host, playbook)
    took = time.monotonic() - started
    assert code == 0, said(doc)
    code, again = run(capsys, lab, host, playbook)
    assert code == 0 and {r["status"] for r in again["results"]} == {"ok"}, said(again)
    code, report = drift(capsys, lab, host, playbook, tmp_path / "history.sqlite")
    assert code == 0, report
    assert bridge == (master_of(vms, port) or _ovs_bridge_of(vms, port)), playbook
    vms.wait_ping(address, 20)
    return took


def _ovs_bridge_of(vms: LabGuests, port: str) -> str | None:
    found = vms.sh(f"ovs-vsctl port-to-br {port}", check=False)
    return found.stdout.strip() or None


def test_a_guest_on_a_linux_bridge_keeps_its_port_through_every_playbook(lab, tmp_path, capsys):
    host = lab.host_names[0]
    vms = LabGuests(lab.name, host)
    code, doc = run(capsys, lab, host, "site.yml")
    assert code == 0, said(doc)
    vms.sh("ip addr add 10.10.0.1/24 dev br-vm")  # the host's way to the guest (undeclared)
    # port group web's first guest (playbooks/port-groups.yml): vnet0, its MAC and IP
    guest = Guest("web1", Nic(bridge="br-vm", mac="52:54:00:10:00:01"),
                  addresses=("10.10.0.11/24",))  # fmt: skip
    with vms.running(guest):
        vms.wait_ping("10.10.0.11", BOOT_TIMEOUT)
        assert vms.taps("web1") == ["vnet0"] and master_of(vms, "vnet0") == "br-vm"
        mtu = json.loads(vms.sh("ip -j link show dev vnet0").stdout)[0]["mtu"]
        assert mtu == 9000  # libvirt gave the tap the bridge's MTU (site.yml's)
        for playbook in ("site.yml", "port-groups.yml", "vm-bridges.yml", "site.yml"):
            took = survives(capsys, lab, vms, host, playbook, "vnet0", "br-vm", "10.10.0.11",
                            tmp_path)  # fmt: skip
            say(capsys, f"{playbook}: applied in {took:.1f}s, the guest kept its port")
    vms.sh("ip link del br-vm; nft delete table bridge vnetctl", check=False)


def with_group(tmp_path: Path, playbook: str, group: dict) -> str:
    """`playbook` with one more port group task: the test guest's."""
    plays = yaml.safe_load((PLAYBOOKS / playbook).read_text())
    plays[-1]["tasks"].append({"name": "the test guest's group", "ovs_port_group": group})
    path = tmp_path / playbook
    path.write_text(yaml.safe_dump(plays))
    return str(path)


def test_a_guest_on_an_ovs_bridge_keeps_its_port_through_every_playbook(lab, tmp_path, capsys):
    """The example's groups reject forged transmits (the default), so the bridge's gate
    holds a VM port no group claims: the guest's port is group `lab`'s (untagged, its
    MAC from libvirt's attached-mac), which vnetctl's libvirt hook applies as it starts."""
    host = lab.host_names[1]
    vms = LabGuests(lab.name, host)
    playbook = with_group(tmp_path, "ovs-port-groups.yml",
                          {"name": "lab", "bridge": "br-pg", "ports": ["pg*"]})  # fmt: skip
    code, doc = run(capsys, lab, host, playbook)
    assert code == 0, said(doc)
    restart_libvirt(lab.name, [host])  # libvirtd finds the hook the run installed
    vms.sh("ip addr add 10.64.0.1/24 dev br-pg")
    guest = Guest("pg1", Nic(bridge="br-pg", ovs=True, tap="pg1"), addresses=("10.64.0.21/24",))
    with vms.running(guest):
        vms.wait_ping("10.64.0.21", BOOT_TIMEOUT)
        ids = vms.sh("ovs-vsctl get interface pg1 external_ids").stdout
        assert "attached-mac" in ids and _ovs_bridge_of(vms, "pg1") == "br-pg", ids
        took = survives(capsys, lab, vms, host, playbook, "pg1", "br-pg", "10.64.0.21",
                        tmp_path)  # fmt: skip
        say(capsys, f"ovs-port-groups.yml: applied in {took:.1f}s, the guest kept its port")
    vms.sh("ovs-vsctl --if-exists del-br br-pg", check=False)
