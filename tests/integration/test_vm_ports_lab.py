"""Bridges own their uplinks, not the VMs (issue 25), on real hosts: a VM port attached
after a run (a real tap, `ip tuntap add mode tap`, put on the bridge as libvirt puts a
VM's; on Open vSwitch with libvirt's external_ids) stays attached when the bridge's task
runs again with its exact `ports`: no change, nothing in --check --diff, no drift. A
port a Linux port group guards stays too. `detach` removes a VM port, also from a
bridge that declares its addresses (that once failed to verify: `ip.vnet0.addresses is
None, wanted []`), and an old uplink no longer declared is still removed.

A container's veth is a VM port while libvirt's status file of a running domain names
it (written here by hand, as libvirtd writes it, in the lab host's own /run).

Everything is made inside one lab host of a lab of the module's own, and removed by
name at the end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.labhosts import lab_skip_reason, own_lab
from vnetctl.cli.main import main
from vnetctl.lab import LabState, host_exec

pytestmark = pytest.mark.lab
GUEST_MAC = "52:54:00:57:00:08"
LIBVIRT_IDS = (  # what libvirt sets on the OVS interface of a VM's NIC
    "external-ids:attached-mac=52:54:00:57:00:07 "
    "external-ids:iface-id=6f1c1b7e-2b0e-4d7a-9d55-0c5d2b1e7a07 "
    "external-ids:iface-status=active external-ids:vm-id=0b3e2f4a-7c1d-4e5f-8a9b-1c2d3e4f5a07"
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[LabState]:
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    with own_lab("vp", tmp_path_factory.mktemp("vp"), hosts=2, ovs=True) as state:
        yield state


def sh(lab: LabState, host: str, script: str) -> str:
    done = host_exec(lab.name, host, ["sh", "-c", script])
    assert done.returncode == 0, done.stderr
    return done.stdout


def master(lab: LabState, host: str, port: str) -> str | None:
    link = json.loads(sh(lab, host, f"ip -j link show dev {port}"))[0]
    return link.get("master")


class Play:
    """One task list on one host, written as a playbook and run with the CLI."""

    def __init__(self, lab: LabState, host: str, folder: Path) -> None:
        self.lab, self.host, self.path = lab, host, folder / "play.yml"
        self.history = folder / "history.sqlite"

    def write(self, *tasks: dict) -> None:
        play = {"name": "vm ports", "hosts": self.host, "tasks": list(tasks)}
        self.path.write_text(yaml.safe_dump([play]))

    def run(self, capsys, *extra: str) -> tuple[int, dict]:
        argv = ["run", str(self.path), "-i", str(self.lab.inventory_path), "--format", "json"]
        code = main([*argv, *extra])
        return code, json.loads(capsys.readouterr().out)

    def drift(self, capsys) -> tuple[int, dict]:
        inventory = str(self.lab.inventory_path)
        history = ["--history", str(self.history), "--format", "json"]
        code = main(["drift", str(self.path), "-i", inventory, *history])
        return code, json.loads(capsys.readouterr().out)


def statuses(doc: dict) -> list[str]:
    return [r["status"] for r in doc["results"]]


def said(doc: dict) -> list[str]:
    """Each task's status and message: what a failed assertion shows."""
    return [f"{r['status']}: {r.get('msg')}" for r in doc["results"]]


def quiet(play: Play, capsys, *vm_ports: str) -> None:
    """A run changes nothing, check mode shows none of `vm_ports`, drift finds none."""
    code, doc = play.run(capsys)
    assert code == 0 and set(statuses(doc)) == {"ok"}, said(doc)
    code, doc = play.run(capsys, "--check", "--diff")
    assert code == 0 and not [p for p in vm_ports if p in json.dumps(doc["results"])], said(doc)
    code, doc = play.drift(capsys)
    assert code == 0 and {h["state"] for h in doc["hosts"]} == {"in_sync"}, doc


CONTAINER = "/run/libvirt/lxc/vp-ct.xml"  # a domain's status file, as libvirtd keeps it
CONTAINER_STATUS = ("<domstatus state='running' pid='1'><domain type='lxc' id='1'><name>vp-ct"
                    "</name><devices><interface type='bridge'><source bridge='br-vp'/>"
                    "<target dev='vm9p'/></interface></devices></domain></domstatus>")  # fmt: skip


@pytest.fixture
def linux_host(lab: LabState) -> Iterator[str]:
    host = lab.host_names[0]
    yield host
    for made in ("vnet7", "vm8", "vm9", "br-vp"):
        host_exec(lab.name, host, ["ip", "link", "del", made])
    host_exec(lab.name, host, ["nft", "delete", "table", "bridge", "vnetctl"])
    host_exec(lab.name, host, ["rm", "-f", CONTAINER])
    host_exec(lab.name, host, ["rmdir", "/run/libvirt/lxc", "/run/libvirt"])


def test_a_linux_bridge_run_again_keeps_the_vm_ports_and_detach_removes_one(
    lab, linux_host, tmp_path, capsys
):
    play = Play(lab, linux_host, tmp_path)
    bridge = {"name": "br-vp", "ports": ["eth1", "eth2", "vm8p"], "addresses": ["10.57.0.1/24"],
              "stp": False, "forward_delay": 0}  # fmt: skip
    group = {"name": "web", "bridge": "br-vp", "ports": ["vm8p"], "port_security": True,
             "guests": [{"port": "vm8p", "mac": GUEST_MAC}]}  # fmt: skip
    sh(lab, linux_host, f"ip link add vm8 address {GUEST_MAC} type veth peer name vm8p")
    play.write({"linux_bridge": bridge}, {"port_group": group})
    assert play.run(capsys)[0] == 0  # vm8p, a guest-like veth, guarded by group web
    # after the run: a VM's tap, as libvirt attaches it, and a container's veth, which
    # libvirt's status file of a running domain names
    sh(lab, linux_host, "ip tuntap add dev vnet7 mode tap && ip link set vnet7 master br-vp up "
       "&& ip link add vm9 type veth peer name vm9p && ip link set vm9p master br-vp up "
       f"&& mkdir -p /run/libvirt/lxc && echo \"{CONTAINER_STATUS}\" >{CONTAINER}")  # fmt: skip
    bridge["ports"] = ["eth1", "eth2"]  # vm8p left to its port group from now on
    play.write({"linux_bridge": bridge})
    vm_ports = ("vnet7", "vm8p", "vm9p")
    quiet(play, capsys, *vm_ports)
    assert [master(lab, linux_host, p) for p in vm_ports] == ["br-vp"] * 3

    play.write({"linux_bridge": dict(bridge, ports=["eth1"])})
    code, doc = play.run(capsys)  # the old uplink goes; the VM ports stay
    assert code == 0 and doc["results"][0]["changes"] == [
        {"field": "ports", "before": ["eth1", "eth2"], "after": ["eth1"]}
    ], said(doc)
    assert master(lab, linux_host, "eth2") is None
    assert [master(lab, linux_host, p) for p in vm_ports] == ["br-vp"] * 3

    play.write({"linux_bridge": dict(bridge, ports=["eth1"], detach=["vnet7"])})
    code, doc = play.run(capsys)  # from a bridge that declares its addresses
    assert code == 0 and statuses(doc) == ["changed"], said(doc)
    assert [master(lab, linux_host, p) for p in vm_ports] == [None, "br-vp", "br-vp"]
    quiet(play, capsys, "vm8p", "vm9p")

    sh(lab, linux_host, f"rm {CONTAINER}")  # the container stopped: vm9p is no VM's now
    code, doc = play.run(capsys)
    assert code == 0 and master(lab, linux_host, "vm9p") is None, said(doc)


@pytest.fixture
def ovs_host(lab: LabState) -> Iterator[str]:
    host = lab.host_names[1]
    yield host
    host_exec(lab.name, host, ["ovs-vsctl", "--if-exists", "del-br", "br-vp"])
    host_exec(lab.name, host, ["ip", "link", "del", "vnet7"])


def test_an_ovs_bridge_run_again_keeps_libvirts_port_and_detach_removes_it(
    lab, ovs_host, tmp_path, capsys
):
    play = Play(lab, ovs_host, tmp_path)
    ports = [{"name": "eth1"}, {"name": "eth2"}, {"name": "hostvp", "type": "internal"}]
    bridge = {"name": "br-vp", "datapath_type": "netdev", "ports": ports}
    play.write({"ovs_bridge": bridge})
    assert play.run(capsys)[0] == 0
    sh(lab, ovs_host, "ip tuntap add dev vnet7 mode tap && ip link set vnet7 up "
       f"&& ovs-vsctl add-port br-vp vnet7 -- set interface vnet7 {LIBVIRT_IDS}")  # fmt: skip
    quiet(play, capsys, "vnet7")
    assert "vnet7" in sh(lab, ovs_host, "ovs-vsctl list-ports br-vp").split()

    play.write({"ovs_bridge": dict(bridge, ports=[ports[0], ports[2]])})
    code, doc = play.run(capsys)  # the old uplink goes; the VM's port stays
    assert code == 0 and [c["field"] for c in doc["results"][0]["changes"]] == ["ports"], said(doc)
    assert sh(lab, ovs_host, "ovs-vsctl list-ports br-vp").split() == ["eth1", "hostvp", "vnet7"]

    play.write({"ovs_bridge": dict(bridge, ports=[ports[0], ports[2]], detach=["vnet7"])})
    code, doc = play.run(capsys)
    assert code == 0 and statuses(doc) == ["changed"], said(doc)
    assert sh(lab, ovs_host, "ovs-vsctl list-ports br-vp").split() == ["eth1", "hostvp"]
    quiet(play, capsys)
