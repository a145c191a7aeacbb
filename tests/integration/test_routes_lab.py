"""Routes on the lab (issue 31), with Open vSwitch: a NIC taken by an OVS bridge hands
every route through it to the bridge's interface (every table, IPv4 and IPv6), and a
task that fails after the move puts every one of them back before it says `(rolled
back)`."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, reset_hosts

pytestmark = pytest.mark.lab

# inside the hosts' namespaces and on the lab's own segment bridges only
NIC_ADDRESSES = ["192.168.61.2/24", "fd00:61::2/64"]
NIC_ROUTES = [
    "default via 192.168.61.1 dev eth1",
    "10.61.0.0/16 via 192.168.61.1 dev eth1 table 100 metric 20",
    "10.62.0.0/16 dev eth1 table 200",
    "2001:db8:61::/48 via fd00:61::1 dev eth1",
    "::/0 via fd00:61::1 dev eth1 metric 300",
]


@pytest.fixture(scope="module")
def ovs_lab(lab_required, tmp_path_factory):
    with own_lab("rt", tmp_path_factory.mktemp("rt"), hosts=2, ovs=True) as state:
        yield state


@pytest.fixture
def lab(ovs_lab):
    reset_hosts(ovs_lab.name)
    return ovs_lab


def sh(lab, host: str, script: str) -> str:
    done = host_exec(lab.name, host, ["sh", "-c", script])
    assert done.returncode == 0, f"{host}: {script}: {done.stderr}"
    return done.stdout


def routes_through(lab, host: str, *devices: str) -> set[tuple]:
    """(device, destination, gateway, table, metric) of every route through `devices`
    that the kernel did not make, both families, every table."""
    found = json.loads(sh(lab, host, "ip -j -N route show table all"))
    return {
        (r["dev"], r["dst"], r.get("gateway"), r.get("table", "254"), r.get("metric", 0))
        for r in found
        if r.get("dev") in devices and r.get("protocol") != "2" and r.get("table") != "255"
    }


def run(capsys, lab, task: dict, *extra: str) -> tuple[int, dict]:
    path = lab.inventory_path.parent / "routes.yml"
    path.write_text(yaml.safe_dump([{"hosts": lab.host_names[0], "tasks": [task]}]))
    code = main(["run", str(path), "-i", str(lab.inventory_path), "--format", "json", *extra])
    return code, json.loads(capsys.readouterr().out)


def test_ovs_takes_every_route_of_a_nic_and_a_rollback_gives_every_one_back(lab, capsys):
    host = lab.host_names[0]
    sh(lab, host, "; ".join([f"ip addr add {a} dev eth1 nodad" for a in NIC_ADDRESSES]
                            + [f"ip route add {r}" for r in NIC_ROUTES]))  # fmt: skip
    before = routes_through(lab, host, "eth1")
    assert len(before) == len(NIC_ROUTES)

    # a link-local address on the bridge reads back as none of its (global) addresses:
    # the task does not converge after the move, and is rolled back
    failing = {"name": "bridge", "ovs_bridge": {"name": "br-rt", "addresses": ["fe80::5/64"],
                                                "ports": [{"name": "eth1"}]}}  # fmt: skip
    code, doc = run(capsys, lab, failing)
    (result,) = doc["results"]
    assert code == 2 and result["status"] == "failed", result
    assert "did not converge" in result["msg"] and result["msg"].endswith("(rolled back)")
    assert routes_through(lab, host, "eth1", "br-rt") == before

    task = {"name": "bridge", "ovs_bridge": {"name": "br-rt", "ports": [{"name": "eth1"}]}}
    code, doc = run(capsys, lab, task)
    assert code == 0 and doc["results"][0]["status"] == "changed", doc
    assert routes_through(lab, host, "eth1") == set()
    assert routes_through(lab, host, "br-rt") == {("br-rt", *r[1:]) for r in before}
    code, doc = run(capsys, lab, task)
    assert code == 0 and doc["results"][0]["status"] == "ok", doc
