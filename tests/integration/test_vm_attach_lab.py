"""Attach-time policy, the hook alone (issue 25): a run installs vnetctl's libvirt hook,
its code and the groups' declarations; a VM port that appears between runs gets its
group's VLAN and security from the hook, called as libvirt calls it (domain XML on
stdin), before its first frame; release forgets it; a file missing or changed is drift
and a run repairs it; a hook that cannot apply a policy fails (libvirt then refuses to
start the VM). The VM ports here are veth pairs named and addressed as libvirt makes
taps (vnetN, fe:54:00:... on the bridge side, the guest's MAC on the other), so frames
are sent and read as the other port-security tests do. Real guests started by libvirt:
test_vm_attach_guests.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.portsec_matrix import add_guests
from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

FRAMES = (Path(__file__).parent / "frames.py").read_text()
HOOK = "/etc/libvirt/hooks/qemu.d/vnetctl-%s"
GUEST = {
    "va1": "52:54:00:79:00:01",
    "vb1": "52:54:00:79:00:02",  # web VMs
    "db1": "52:54:00:79:00:20",
}  # a db VM
VM = "52:54:00:79:00:07"  # the new VM's MAC; its tap vnet7, its guest end g7
FORGED = "52:54:00:66:66:66"


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("va", tmp_path_factory.mktemp("va"), hosts=1, ovs=True) as state:
        add_guests(state, state.host_names[0], GUEST)
        yield state


def sh(lab, script, input=None, check=True):
    done = host_exec(lab.name, lab.host_names[0], ["sh", "-c", script], input=input)
    assert not check or done.returncode == 0, f"{script}: {done.stderr}"
    return done


@pytest.fixture(params=["linux", "ovs"])
def plane(request, lab):
    yield request.param
    sh(lab, "ip link del vnet7; ip link del br-va; ovs-vsctl --if-exists del-br br-va; "
            "nft delete table bridge vnetctl; nft delete table netdev vnetctl; "
            "rm -rf /etc/vnetctl/attach /run/vnetctl", check=False)  # fmt: skip


def tasks(plane, web=None):
    """br-va with va1, vb1 (web) and db1 (db) as ports; group web: them and every vnet*
    port (VLAN 10 on OVS), group db: db1 (VLAN 20 on OVS); `web`: web's settings."""
    ports = [g + "p" for g in GUEST]
    if plane == "linux":
        bridge = {"linux_bridge": {"name": "br-va", "ports": ports, "stp": False,
                                   "forward_delay": 0}}  # fmt: skip
        groups = [("port_group", "web", ["vnet*", "va1p", "vb1p"], {}),
                  ("port_group", "db", ["db1p"], {})]  # fmt: skip
    else:
        bridge = {"ovs_bridge": {"name": "br-va", "datapath_type": "netdev",
                                 "ports": [{"name": p, "type": "vm"} for p in ports]}}  # fmt: skip
        groups = [("ovs_port_group", "web", ["vnet*", "va1p", "vb1p"], {"vlan": 10}),
                  ("ovs_port_group", "db", ["db1p"], {"vlan": 20})]  # fmt: skip
    out = [dict(bridge, name="bridge")]
    for module, name, ports, extra in groups:
        macs = "guests" if module == "port_group" else "addresses"
        declared = [{"port": p, "mac": GUEST[p[:-1]]} for p in ports if p[:-1] in GUEST]
        args = {"name": name, "bridge": "br-va", "ports": ports, macs: declared, **extra}
        extra = (web or {}) if name == "web" else {}
        out.append({"name": "group " + name, module: dict(args, **extra)})
    return out


def run(capsys, lab, tmp_path, task_list, *extra):
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump([{"name": "vms", "hosts": lab.host_names[0],
                                     "tasks": task_list}]))  # fmt: skip
    code = main(["run", str(path), "-i", str(lab.inventory_path), "--format", "json", *extra])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    return doc


def attach_port(lab, plane):
    """vnet7 on br-va, as libvirt attaches a VM's tap: the bridge side with fe:54:00:...,
    on OVS with the external_ids libvirt sets."""
    sh(lab, f"ip link add vnet7 type veth peer name g7 && ip link set g7 address {VM} up && "
            "sysctl -qw net.ipv6.conf.g7.disable_ipv6=1 && "
            "ip link set vnet7 address fe:54:00:79:00:07 up")  # fmt: skip
    if plane == "linux":
        sh(lab, "ip link set vnet7 master br-va")
    else:
        sh(lab, "ovs-vsctl add-port br-va vnet7 -- set interface vnet7 "
                f"external_ids:attached-mac={VM} external_ids:vm-id=d7")  # fmt: skip


def domain_xml(network=None, portgroup=None):
    source = f"<source network='{network}' portgroup='{portgroup}' bridge='br-va'/>" if network \
        else "<source bridge='br-va'/>"  # fmt: skip
    return (
        f"<domain type='qemu'><name>d7</name><devices><interface type='bridge'>"
        f"<mac address='{VM}'/>{source}<target dev='vnet7'/></interface></devices></domain>"
    )


def hook(lab, plane, operation, xml=None):
    module = "port_group" if plane == "linux" else "ovs_port_group"
    return sh(lab, f"{HOOK % module} d7 {operation} begin -", input=xml or domain_xml(),
              check=False)  # fmt: skip


def send(lab, frames, listen):
    spec = {"send": frames, "listen": listen, "count": 2}
    done = host_exec(lab.name, lab.host_names[0], ["python3", "-c", FRAMES, json.dumps(spec)])
    got = json.loads(done.stdout)
    print(f"\n{json.dumps(got)}", file=sys.stderr)
    return got


def from_vm(tag, src=VM, vlans=()):
    return {"dev": "g7", "tag": tag, "src": src, "kind": "raw", "vlans": list(vlans)}


def test_a_port_attached_between_runs_gets_its_groups_policy_from_the_hook(
    lab, plane, capsys, tmp_path
):
    """Before the hook: on a Linux bridge the new port's forged frames reach the others
    (no security until the next run); on OVS it sends nothing (the gate). After it: its
    own frames pass, forged ones and frames tagged for another VLAN do not, as after a
    run; the run that follows finds nothing to change. Release: its state goes."""
    run(capsys, lab, tmp_path, tasks(plane))
    attach_port(lab, plane)
    frames = [from_vm("own"), from_vm("forged", src=FORGED), from_vm("vlan20", vlans=[20])]
    before = send(lab, frames, ["va1", "db1"])
    expected = {"linux": {"va1": ["forged", "own", "vlan20"], "db1": ["forged", "own", "vlan20"]},
                "ovs": {"va1": [], "db1": []}}  # fmt: skip
    assert before == expected[plane]

    done = hook(lab, plane, "start")
    assert done.returncode == 0, done.stderr
    after = send(lab, frames, ["va1", "db1"])
    # on a Linux bridge one 802.1Q tag is checked as no tag: without VLAN filtering (this
    # lab's kernel) the tagged frame of its own MAC passes; OVS makes vnet7 an access port
    expected = {"linux": {"va1": ["own", "vlan20"], "db1": ["own", "vlan20"]},
                "ovs": {"va1": ["own"], "db1": []}}  # fmt: skip
    assert after == expected[plane]
    record = json.loads(sh(lab, "cat /run/vnetctl/vm-ports/vnet7.json").stdout)
    assert (record["mac"], record["domain"], record["groups"]) == (VM, "d7", ["web"])
    if plane == "ovs":
        assert sh(lab, "ovs-vsctl get port vnet7 tag").stdout.strip() == "10"
    check = run(capsys, lab, tmp_path, tasks(plane), "--check")  # (the bridge's own task
    groups = [r for r in check["results"] if r["task"].startswith("group")]  # takes vnet7
    assert [r["changes"] for r in groups if r["status"] != "ok"] == []  # out: vm-ports' job)

    number = sh(lab, "ovs-vsctl get interface vnet7 ofport", check=False).stdout.strip()
    sh(lab, "ip link del vnet7; ovs-vsctl --if-exists del-port vnet7")  # as libvirt does,
    done = hook(lab, plane, "release")  # then calls release
    assert done.returncode == 0, done.stderr
    assert sh(lab, "ls /run/vnetctl/vm-ports").stdout.split() == []
    assert "vnet7" not in sh(lab, "nft list ruleset").stdout
    if plane == "ovs":
        assert f"in_port={number}," not in sh(lab, "ovs-ofctl dump-flows br-va").stdout


def test_the_libvirt_port_group_names_the_group(lab, plane, capsys, tmp_path):
    """A NIC on a libvirt network's port group takes the vnetctl group of that name on
    its bridge, whatever its tap is called (vnet7 matches web's pattern: db wins)."""
    run(capsys, lab, tmp_path, tasks(plane))
    attach_port(lab, plane)
    done = hook(lab, plane, "start", domain_xml(network="prod", portgroup="db"))
    assert done.returncode == 0, done.stderr
    record = json.loads(sh(lab, "cat /run/vnetctl/vm-ports/vnet7.json").stdout)
    assert record["groups"] == ["db"]
    if plane == "ovs":
        assert sh(lab, "ovs-vsctl get port vnet7 tag").stdout.strip() == "20"
    else:
        assert '"vnet7"' in sh(lab, "nft list set bridge vnetctl guarded").stdout


def test_a_promiscuous_port_gets_copies_of_a_port_attached_after_it(lab, plane, capsys, tmp_path):
    """The web group is promiscuous (a load balancer's, va1): vnet7 appears, and the hook
    gives va1 its copies of vnet7's unicast to vb1 (learned: not flooded)."""
    run(capsys, lab, tmp_path, tasks(plane, web={"promiscuous": "accept"}))
    attach_port(lab, plane)
    to_vb = {"dev": "g7", "tag": "to-vb", "src": VM, "dst": GUEST["vb1"], "kind": "raw"}
    hello = {"dev": "vb1", "tag": "hello", "src": GUEST["vb1"], "kind": "raw"}
    assert send(lab, [hello, to_vb], ["va1"]) == {"va1": ["hello"]}  # no hook yet
    assert hook(lab, plane, "start").returncode == 0
    got = send(lab, [hello, to_vb], ["va1", "vb1"])
    assert got == {"va1": ["hello", "to-vb"], "vb1": ["to-vb"]}


def test_hook_files_missing_or_changed_are_drift_and_a_run_repairs_them(
    lab, plane, capsys, tmp_path
):
    module = "port_group" if plane == "linux" else "ovs_port_group"
    run(capsys, lab, tmp_path, tasks(plane))
    sh(lab, f"rm {HOOK % module}; sed -i s/vnet/tap/ /etc/vnetctl/attach/{module}/br-va/web.json")
    check = run(capsys, lab, tmp_path, tasks(plane), "--check")
    fields = {(r["task"], c["field"]) for r in check["results"] for c in r.get("changes", [])}
    assert fields == {("group web", "attach.files"), ("group web", "attach.hook"),
                      ("group web", "attach.policy.ports"), ("group db", "attach.files"),
                      ("group db", "attach.hook")}  # the hook is both groups'  # fmt: skip
    done = run(capsys, lab, tmp_path, tasks(plane))
    assert [r["task"] for r in done["results"] if r["status"] == "changed"] == ["group web"]
    assert sh(lab, f"test -x {HOOK % module}", check=False).returncode == 0
    check = run(capsys, lab, tmp_path, tasks(plane), "--check")
    assert {r["status"] for r in check["results"]} == {"ok"}


def test_a_hook_that_cannot_apply_the_policy_fails_the_start_not_a_reconnect(
    lab, plane, capsys, tmp_path
):
    module = "port_group" if plane == "linux" else "ovs_port_group"
    run(capsys, lab, tmp_path, tasks(plane))
    attach_port(lab, plane)
    sh(lab, f"echo '{{broken' > /etc/vnetctl/attach/{module}/br-va/web.json")
    start = hook(lab, plane, "start")
    assert start.returncode == 1 and f"vnetctl {module} hook, d7 start:" in start.stderr
    reconnect = hook(lab, plane, "reconnect")
    assert reconnect.returncode == 0 and "d7 reconnect" in reconnect.stderr
