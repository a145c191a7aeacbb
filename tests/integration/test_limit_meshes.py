"""--limit against every playbook in playbooks/ (run --check, drift, mesh check), and
declared VTEP interfaces that a host lacks, on a 3-host lab running Open vSwitch."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.labhosts import own_lab
from vnetctl.catalog import Catalog
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, reset_hosts

pytestmark = pytest.mark.lab

PLAYBOOKS = sorted((Path(__file__).parents[2] / "playbooks").glob("*.yml"))
OVS_MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh-ovs.yml")
# the mesh alone, its VTEP from `vtep_interface` (vxlan-mesh-ovs.yml declares its underlay)
VTEP_MESH = str(Path(__file__).parent / "playbooks" / "vxlan-mesh-ovs-vtep-interface.yml")
LINUX_MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")
# playbooks that need a kernel feature: run where the lab's kernel (this machine's) has it
NEEDS = {"linux-teaming.yml": "bonding", "nioc-vlans.yml": "bonding"}
# unique per test process: two test runs on one machine must not share a lab


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    """3 hosts with Open vSwitch and libvirtd (libvirt-port-groups.yml); the inventory
    adds group `rack1` (h1, h2) for group limits."""
    folder = tmp_path_factory.mktemp("lm")
    with own_lab("lm", folder, hosts=3, ovs=True, libvirt=True) as state:
        data = yaml.safe_load(state.inventory_path.read_text())
        h1, h2, _ = state.host_names
        data["all"]["children"]["rack1"] = {"hosts": {h1: None, h2: None}}
        inventory = folder / "racks.yml"
        inventory.write_text(yaml.safe_dump(data))
        yield state, str(inventory)


def sh(lab, host: str, script: str) -> None:
    run = host_exec(lab.name, host, ["sh", "-c", script])
    assert run.returncode == 0, run.stderr


def underlay_on_ovs(lab, hosts: list[str]) -> None:
    """The VTEP on an OVS bridge (userspace datapath), as vxlan-mesh-ovs.yml expects."""
    for host in hosts:
        index = lab.host_names.index(host) + 1
        sh(
            lab,
            host,
            "ovs-vsctl --may-exist add-br br-underlay -- set bridge br-underlay "
            "datapath_type=netdev -- --may-exist add-port br-underlay eth1 && "
            f"ip addr replace 192.168.78.{index}/24 dev br-underlay && "
            "ip link set br-underlay up",
        )


def clean(lab) -> None:
    for host in lab.host_names:
        sh(lab, host, "for b in $(ovs-vsctl list-br); do ovs-vsctl del-br $b; done")
    reset_hosts(lab.name)


def ovs_bridges(lab, host: str) -> set[str]:
    return set(host_exec(lab.name, host, ["ovs-vsctl", "list-br"]).stdout.split())


def links(lab, host: str) -> set[str]:
    out = host_exec(lab.name, host, ["ip", "-j", "link"]).stdout
    return {link["ifname"] for link in json.loads(out)}


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))  # a traceback would be an exception here
    out, err = capsys.readouterr()
    return code, out, err


def test_a_declared_vtep_interface_missing_on_members_is_refused_before_any_change(lab, capsys):
    state, inv = lab
    clean(state)
    h1, h2, h3 = state.host_names
    underlay_on_ovs(state, [h1, h2])  # h3 has no br-underlay
    for argv in (
        ["run", VTEP_MESH],
        ["run", VTEP_MESH, "--check"],
        ["run", VTEP_MESH, "--limit", h1],  # h3 is a member outside the limit
        ["drift", VTEP_MESH, "--no-history"],
        ["mesh", "check", VTEP_MESH],
    ):
        code, out, err = cli(capsys, *argv, "-i", inv)
        assert code == 1, (argv, out, err)
        assert (
            f"host {h3}: task 'tenant segments across the fleet (OVS)' "
            f"({VTEP_MESH}:19): vtep_interface 'br-underlay' does not exist on this host" in err
        )
        assert h1 not in err and h2 not in err  # they have it
    for host in state.host_names:
        assert not {"br-ovs300", "br-ovs400"} & ovs_bridges(state, host)

    sh(state, h3, "ovs-vsctl add-br br-underlay -- set bridge br-underlay datapath_type=netdev")
    code, _, err = cli(capsys, "run", VTEP_MESH, "--check", "-i", inv)
    assert code == 1 and f"host {h3}: " in err
    assert "vtep_interface 'br-underlay' has no global address on this host" in err


def test_a_limited_run_keeps_members_outside_the_limit_as_peers(lab, capsys):
    state, inv = lab
    clean(state)
    h1, h2, h3 = state.host_names
    code, out, err = cli(capsys, "run", LINUX_MESH, "-i", inv, "--limit", h1, "--format", "json")
    assert code == 0, err
    assert {r["host"] for r in json.loads(out)["results"]} == {h1}
    fdb = host_exec(state.name, h1, ["bridge", "-j", "fdb", "show", "dev", "vxlan100"]).stdout
    peers = {e["dst"] for e in json.loads(fdb) if e.get("mac") == "00:00:00:00:00:00"}
    assert peers == {state.hosts[1].address, state.hosts[2].address}
    assert "vxlan100" not in links(state, h2) | links(state, h3)  # outside the limit


def prepare(lab, inv: str, capsys, playbook: Path) -> None:
    """The lab converged to `playbook` on every host."""
    clean(lab)
    if playbook.name == "vxlan-mesh-ovs.yml":
        underlay_on_ovs(lab, lab.host_names)
    if playbook.name == "microseg.yml":  # its VMs' segment is the mesh's br-vx100
        code, out, err = cli(capsys, "run", LINUX_MESH, "-i", inv)
        assert code == 0, out + err
    code, out, err = cli(capsys, "run", str(playbook), "-i", inv)
    assert code == 0, out + err


def is_mesh(playbook: Path) -> bool:
    return "vxlan_mesh" in playbook.read_text()


@pytest.mark.parametrize("playbook", PLAYBOOKS, ids=lambda p: p.name)
def test_limit_with_every_playbook_in_run_check_drift_and_mesh_check(lab, capsys, playbook):
    state, inv = lab
    feature = NEEDS.get(playbook.name)
    catalog = Catalog()
    facts = catalog.host_lib().Facts.gather(modules=[catalog.load("bond")])  # its kernel probe
    if feature and not sys.modules["vnet_kernel"].has(feature, facts):
        pytest.skip(f"{playbook.name} needs {feature}, which this machine's kernel lacks")
    h1, h2, h3 = state.host_names
    prepare(state, inv, capsys, playbook)
    limits = {h1: [h1], "rack1": [h1, h2], f"all:!{h2}": [h1, h3]}
    for limit, selected in limits.items():
        code, out, err = cli(
            capsys, "run", str(playbook), "-i", inv, "--limit", limit, "--check", "--format", "json"
        )
        assert code == 0, (limit, err)
        doc = json.loads(out)
        assert list(doc["stats"]) == selected
        assert {r["status"] for r in doc["results"]} == {"ok"}, doc["results"]

        argv = ["drift", str(playbook), "-i", inv, "--limit", limit, "--no-history"]
        code, out, err = cli(capsys, *argv, "--format", "json")
        assert code == 0, (limit, out, err)
        doc = json.loads(out)
        assert [h["host"] for h in doc["hosts"]] == selected
        assert {h["state"] for h in doc["hosts"]} == {"in_sync"}

        if is_mesh(playbook):
            argv = ["mesh", "check", str(playbook), "-i", inv, "--limit", limit]
            code, out, err = cli(capsys, *argv, "--format", "json")
            assert code == 0, (limit, out, err)
            pairs = json.loads(out)["pairs"]
            assert {(p["source"], p["target"]) for p in pairs} == {
                (a, b) for a in selected for b in selected if a != b
            }
            assert {p["state"] for p in pairs} <= {"reachable"}
