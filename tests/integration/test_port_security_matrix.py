"""Port security that holds by construction, on both dataplanes, proven with raw frames
(issue 31): the matrix of portsec_matrix.py on a Linux bridge (nftables' bridge family)
and on Open vSwitch (userspace datapath), a VM port made again (as libvirt restarts a
VM) protected from its first frame, and vnetctl's nftables table surviving `nft list`
and a reload unchanged. One lab host; the guests are veth pairs in it (`vmN`, the guest
end, sends; `vmNp` is the port); every device made here is removed by name.

`pytest -s` prints the matrices (also written to the test's tmp directory)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.integration import portsec_matrix as matrix
from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

FRAMES = (Path(__file__).parent / "frames.py").read_text()
GROUPED = "vm[123]p"  # vm4 listens, in no group


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("ps", tmp_path_factory.mktemp("ps"), hosts=1, ovs=True) as state:
        macs = {guest: mine["mac"] for guest, mine in matrix.GUESTS.items()}
        matrix.add_guests(state, state.host_names[0], macs)
        yield state


def sh(lab, host, *argv):
    done = host_exec(lab.name, host, list(argv))
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


def run(capsys, lab, tmp_path, tasks, *extra):
    path = tmp_path / "play.yml"
    host = lab.host_names[0]
    path.write_text(yaml.safe_dump([{"name": "port security", "hosts": host, "tasks": tasks}]))
    code = main(["run", str(path), "-i", str(lab.inventory_path), "--format", "json", *extra])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0, doc
    return doc


def send(lab, frames, listen=(matrix.LISTENER,)):
    host = lab.host_names[0]
    spec = {"send": frames, "listen": list(listen), "count": 2}
    return json.loads(sh(lab, host, "python3", "-c", FRAMES, json.dumps(spec)))


def linux_tasks():
    bridge = {"name": "br-ps", "ports": [g + "p" for g in matrix.GUESTS], "stp": False,
              "forward_delay": 0}  # fmt: skip
    group = {"name": "vms", "bridge": "br-ps", "ports": [GROUPED], "port_security": True,
             "guests": matrix.guests_declared()}  # fmt: skip
    return [{"name": "bridge", "linux_bridge": bridge}, {"name": "group", "port_group": group}]


def ovs_tasks():
    bridge = {"name": "br-ps", "datapath_type": "netdev",
              "ports": [{"name": "vm?p", "type": "vm"}]}  # fmt: skip
    group = {"name": "vms", "bridge": "br-ps", "ports": [GROUPED], "port_security": True,
             "addresses": matrix.guests_declared()}  # fmt: skip
    return [{"name": "bridge", "ovs_bridge": bridge}, {"name": "group", "ovs_port_group": group}]


@pytest.fixture
def linux(lab):
    yield lab
    host = lab.host_names[0]
    host_exec(lab.name, host, ["ip", "link", "del", "br-ps"])
    host_exec(lab.name, host, ["nft", "delete", "table", "bridge", "vnetctl"])


@pytest.fixture
def ovs(lab):
    yield lab
    host_exec(lab.name, lab.host_names[0], ["ovs-vsctl", "--if-exists", "del-br", "br-ps"])


RESULTS: dict[str, dict] = {}


def check_matrix(plane, lab, tmp_path):
    got = matrix.matrix(send(lab, matrix.spec()["send"])[matrix.LISTENER])
    RESULTS[plane] = got
    shown = matrix.render(dict(RESULTS))
    (tmp_path / "matrix.txt").write_text(shown)
    print(f"\n{shown}")
    wrong = {k: v for k, v in got.items() if v != matrix.expected()[k]}
    assert not wrong, f"cells not as they should be (got):\n{json.dumps(sorted(wrong.items()))}"


def test_linux_bridge_matrix(linux, capsys, tmp_path):
    run(capsys, linux, tmp_path, linux_tasks())
    check_matrix("Linux bridge + nftables", linux, tmp_path)


def test_ovs_matrix(ovs, capsys, tmp_path):
    run(capsys, ovs, tmp_path, ovs_tasks())
    check_matrix("Open vSwitch (userspace)", ovs, tmp_path)


OWN = {"dev": "vm1", "src": matrix.GUESTS["vm1"]["mac"], "kind": "ip4",
       "ip_src": matrix.GUESTS["vm1"]["ip4"], "tag": "own"}  # fmt: skip
FORGED = [
    dict(OWN, src=matrix.GUESTS["vm2"]["mac"], ip_src=matrix.GUESTS["vm2"]["ip4"], tag="vm2's"),
    {"dev": "vm1", "src": "52:54:00:66:66:66", "kind": "raw", "tag": "random MAC"},
]


def test_an_ovs_port_made_again_is_guarded_from_its_first_frame(ovs, capsys, tmp_path):
    """A VM restarted: libvirt deletes its port and adds it again (a new OpenFlow port
    number). Nothing it sends passes until the next run; then its own frames do, the
    forged ones never, and no rule of the old port number is left."""
    run(capsys, ovs, tmp_path, ovs_tasks())
    host = ovs.host_names[0]
    assert send(ovs, [OWN, *FORGED]) == {"vm4": ["own"]}
    before = sh(ovs, host, "ovs-vsctl", "get", "interface", "vm1p", "ofport").strip()
    mark = "external_ids:attached-mac=" + matrix.GUESTS["vm1"]["mac"]
    sh(ovs, host, "ovs-vsctl", "--if-exists", "del-port", "vm1p")
    sh(ovs, host, "ovs-vsctl", "add-port", "br-ps", "vm1p", "--", "set", "interface", "vm1p", mark)
    after = sh(ovs, host, "ovs-vsctl", "get", "interface", "vm1p", "ofport").strip()
    assert after != before, "OVS gave the port its old number: the test proves nothing"
    assert send(ovs, [OWN, *FORGED]) == {"vm4": []}

    doc = run(capsys, ovs, tmp_path, ovs_tasks())
    assert [r["status"] for r in doc["results"]] == ["ok", "changed"]
    assert send(ovs, [OWN, *FORGED]) == {"vm4": ["own"]}
    vnetctls = "cookie=0x766e000000000000/0xffff000000000000"
    ours = sh(ovs, host, "ovs-ofctl", "--names", "dump-flows", "br-ps", vnetctls)
    assert not re.search(rf"in_port={before}\b", ours), ours


def test_a_linux_port_made_again_is_guarded_from_its_first_frame(linux, capsys, tmp_path):
    """The Linux bridge's rules name the port: made again under its name, it is guarded
    before any run."""
    run(capsys, linux, tmp_path, linux_tasks())
    host = linux.host_names[0]
    sh(linux, host, "ip", "link", "del", "vm1p")
    sh(linux, host, "ip", "link", "add", "vm1", "type", "veth", "peer", "name", "vm1p")
    sh(linux, host, "ip", "link", "set", "dev", "vm1", "address", OWN["src"], "up")
    sh(linux, host, "sysctl", "-qw", "net.ipv6.conf.vm1.disable_ipv6=1")
    sh(linux, host, "ip", "link", "set", "dev", "vm1p", "master", "br-ps", "up")
    assert send(linux, [OWN, *FORGED]) == {"vm4": ["own"]}


def test_the_nft_table_is_the_same_after_a_save_and_reload(linux, capsys, tmp_path):
    """`nft list ruleset > /etc/nftables.conf` and a reload at boot must not weaken the
    rules (nft prints some dependencies it made away and makes others on reading them):
    the rules' bytecode is the same, and vnetctl sees nothing to change."""
    tasks = linux_tasks()
    run(capsys, linux, tmp_path, tasks)
    host = linux.host_names[0]

    def bytecode():
        text = sh(linux, host, "nft", "--debug=netlink", "list", "table", "bridge", "vnetctl")
        return sorted(line for line in text.splitlines() if line.startswith("  ["))

    saved, before = sh(linux, host, "nft", "list", "table", "bridge", "vnetctl"), bytecode()
    sh(linux, host, "nft", "delete", "table", "bridge", "vnetctl")
    done = host_exec(linux.name, host, ["nft", "-f", "-"], input=saved)
    assert done.returncode == 0, done.stderr
    assert bytecode() == before
    check = run(capsys, linux, tmp_path, tasks, "--check")
    assert {r["status"] for r in check["results"]} == {"ok"}
