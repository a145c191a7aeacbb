"""`vnetctl trace` on a two-host lab with the VXLAN mesh (playbooks/vxlan-mesh.yml) and a
VM-like port on each host (a veth: the guest end vmN sends, vmNp is br-vx100's port),
one layer broken at a time: the trace names exactly that hop and setting, and the
healthy path is delivered both ways. The lab's kernel has no bridge VLAN filtering:
the VLAN case is a unit test (tests/unit/test_trace_static.py)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.labhosts import own_lab, vm_veth, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec
from vnetctl.lab.lab import in_host_argv
from vnetctl.lab.state import load_state

pytestmark = pytest.mark.lab

MESH = str(Path(__file__).parents[2] / "playbooks" / "vxlan-mesh.yml")
MACS = {1: "52:54:00:7a:00:01", 2: "52:54:00:7a:00:02"}


def sh(lab, host, *argv):
    return host_exec(lab.name, host, list(argv), check=True).stdout


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("tr", tmp_path_factory.mktemp("tr"), hosts=2) as state:
        assert main(["run", MESH, "-i", str(state.inventory_path), "--format", "json"]) == 0
        for i, host in enumerate(state.host_names, start=1):
            port = vm_veth(state, host, f"vm{i}", MACS[i])
            sh(state, host, "ip", "link", "set", port, "master", "br-vx100")
            sh(state, host, "ip", "addr", "add", f"192.168.100.{i}/24", "dev", f"vm{i}")
        yield state


def trace(capsys, lab, *argv) -> tuple[int, dict]:
    code = main(["trace", *argv, "-i", str(lab.inventory_path), "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def ping(lab, i, to, size=56) -> bool:
    argv = ["ping", "-c", "1", "-W", "2", "-M", "do", "-s", str(size), f"192.168.100.{to}"]
    return host_exec(lab.name, lab.host_names[i - 1], argv).returncode == 0


def dropped(doc) -> dict:
    assert doc["verdict"] == "dropped", doc["hops"]
    return doc["hops"][doc["dropped_at"]]


def test_healthy_path_is_delivered_both_ways(lab, capsys):
    h1, h2 = lab.host_names
    assert ping(lab, 1, 2)  # the fdb entries the bridges learn from it are what fdb get finds
    started, load = time.monotonic(), Path("/proc/loadavg").read_text().split()[0]
    code, doc = trace(capsys, lab, "vm1", "vm2")
    wall = time.monotonic() - started
    with capsys.disabled():
        print(f"\ntrace {h1}->{h2}: {wall:.2f}s wall, load {load}, {doc['timing']}")
    assert code == 0 and doc["verdict"] == "delivered", doc["hops"]
    assert [(h["host"], h["layer"]) for h in doc["hops"]] == [
        (h1, "port"), (h1, "bridge"), (h1, "vxlan"), (h1, "underlay"), (h1, "mtu"),
        (h2, "vxlan"), (h2, "bridge"), (h2, "port"),
    ]  # fmt: skip
    assert doc["hops"][1]["detail"]["port"] == "vxlan100"  # the bridge's learned entry
    assert doc["hops"][2]["detail"]["remote"] == lab.hosts[1].address
    code, back = trace(capsys, lab, f"{h2}:{MACS[2]}", "192.168.100.1")
    assert code == 0 and back["verdict"] == "delivered", back["hops"]
    assert (back["source"]["port"], back["destination"]["port"]) == ("vm2p", "vm1p")


def test_a_deleted_vxlan_peer_is_named(lab, capsys):
    h1 = lab.host_names[0]
    vtep = lab.hosts[1].address
    sh(lab, h1, "bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan100", "dst", vtep)
    try:
        assert not ping(lab, 1, 2)
        code, doc = trace(capsys, lab, "vm1", "vm2")
    finally:
        sh(lab, h1, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan100", "dst", vtep)
    hop = dropped(doc)
    assert code == 2 and (hop["host"], hop["layer"], hop["device"]) == (h1, "vxlan", "vxlan100")
    assert hop["detail"]["setting"] == "fdb" and vtep in hop["reason"]


def test_the_cli_probe_follows_the_static_path_and_draws_it(lab, capsys, tmp_path):
    """--probe on the command line: the marked frames are counted on the traced hops'
    devices; healthy they reach DST's port (exit 0), with the peer's flood entry gone
    they are last seen on h1's VXLAN device (exit 2); --html draws the same document."""
    h1, h2 = lab.host_names
    vtep = lab.hosts[1].address
    picture = tmp_path / "path.html"
    assert ping(lab, 1, 2)
    code, doc = trace(capsys, lab, "vm1", "vm2", "--probe", "--probe-count", "2",
                      "--html", str(picture))  # fmt: skip
    assert code == 0 and doc["probe"]["delivered"], json.dumps(doc["probe"])
    assert (doc["probe"]["count"], doc["probe"]["last_seen"]["host"]) == (2, h2)
    assert "vxlan100" in picture.read_text() and h2 in picture.read_text()
    sh(lab, h1, "bridge", "fdb", "del", "00:00:00:00:00:00", "dev", "vxlan100", "dst", vtep)
    try:
        code = main(["trace", "vm1", "vm2", "--probe", "-i", str(lab.inventory_path)])
        out = capsys.readouterr().out
    finally:
        sh(lab, h1, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "vxlan100", "dst", vtep)
    assert code == 2
    assert f"probe: not delivered, last seen {h1} vxlan100" in out, out


def test_an_underlay_mtu_below_the_overlays_need_is_named(lab, capsys):
    h2 = lab.host_names[1]
    sh(lab, h2, "ip", "link", "set", "dev", "eth0", "mtu", "1400")
    try:
        assert not ping(lab, 2, 1, 1450 - 28) and ping(lab, 2, 1, 1350 - 28)
        code, doc = trace(capsys, lab, "vm2", "vm1")
    finally:
        sh(lab, h2, "ip", "link", "set", "dev", "eth0", "mtu", "1500")
    hop = dropped(doc)
    assert (hop["host"], hop["layer"], hop["device"]) == (h2, "mtu", "eth0")
    assert hop["detail"]["underlay_mtu"] == 1400 and hop["detail"]["largest"] == 1350


def test_port_security_forged_mac_is_named_with_its_rule(lab, capsys, tmp_path):
    h1 = lab.host_names[0]
    group = {"name": "web", "bridge": "br-vx100", "ports": ["vm1p"], "port_security": True,
             "guests": [{"port": "vm1p", "mac": "52:54:00:66:66:66"}]}  # fmt: skip
    playbook = tmp_path / "guard.yml"
    tasks = [{"name": "guard", "port_group": group}]
    playbook.write_text(yaml.safe_dump([{"name": "g", "hosts": h1, "tasks": tasks}]))
    assert main(["run", str(playbook), "-i", str(lab.inventory_path), "--format", "json"]) == 0
    capsys.readouterr()
    try:
        code, doc = trace(capsys, lab, f"{h1}:{MACS[1]}", "vm2")
    finally:
        sh(lab, h1, "nft", "delete", "table", "bridge", "vnetctl")
    hop = dropped(doc)
    assert (hop["host"], hop["layer"], hop["device"]) == (h1, "security", "vm1p")
    assert hop["detail"]["rule"] == "ether-source" and MACS[1] in hop["reason"]


def test_a_tc_class_at_its_limit_is_named_while_its_drops_rise(lab, capsys):
    h1, h2 = lab.host_names
    sh(lab, h2, "tc", "qdisc", "add", "dev", "vm2p", "root", "handle", "1:", "htb", "default",
       "10")  # fmt: skip
    sh(lab, h2, "tc", "class", "add", "dev", "vm2p", "parent", "1:", "classid", "1:10", "htb",
       "rate", "64kbit", "ceil", "64kbit", "burst", "2k")  # fmt: skip
    sh(lab, h2, "tc", "qdisc", "add", "dev", "vm2p", "parent", "1:10", "handle", "10:",
       "pfifo", "limit", "2")  # fmt: skip
    flood = in_host_argv(*host_of(lab, h1), ["ping", "-f", "-q", "-s", "1000", "-w", "20",
                                             "192.168.100.2"])  # fmt: skip
    try:
        with subprocess.Popen(flood, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as p:
            try:
                wait_until(lambda: class_drops(lab, h2) > 0, 10, "drops in class 1:10")
                code, doc = trace(capsys, lab, "vm1", "vm2")
            finally:
                p.terminate()
    finally:
        sh(lab, h2, "tc", "qdisc", "del", "dev", "vm2p", "root")
    hop = dropped(doc)
    assert (hop["host"], hop["layer"], hop["device"]) == (h2, "tc", "vm2p")
    assert hop["detail"]["class"] == "1:10" and hop["detail"]["drops_rising"] > 0


def host_of(lab, host):
    state = load_state(lab.name)
    return state, state.host(host)


def class_drops(lab, host, port="vm2p") -> int:
    out = sh(lab, host, "tc", "-s", "class", "show", "dev", port)  # text: iproute2 6.1
    return sum(int(n) for n in re.findall(r"dropped (\d+)", out))
