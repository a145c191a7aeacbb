"""Routes on the lab (issue 31), with Open vSwitch: a NIC taken by an OVS bridge hands
every route through it to the bridge's interface (every table, IPv4 and IPv6), and a
task that fails after the move puts every one of them back before it says `(rolled
back)`; the `route` module in every table and both families (idempotent, drift,
snapshot, absent); and the management-path guard on routes, with the first host reaching
the controller through the second as its router: removing that route is refused, a wrong
default gateway under a rollback timer is undone by the host itself."""

from __future__ import annotations

import ipaddress
import json

import pytest
import yaml

from tests.integration.faults import finish, start_vnetctl
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
    """The lab as `lab up` made it: `lab reset` leaves no route but the kernel's."""
    reset_hosts(ovs_lab.name)
    for host in ovs_lab.host_names:
        assert routes_through(ovs_lab, host, "eth0", "eth1", "eth2") == set()
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

    # the bridge's addresses, declared exactly: the NIC's, and a link-local one, which reads
    # back as none of its (global) addresses: the task does not converge after the move,
    # and is rolled back
    declared = [*NIC_ADDRESSES, "fe80::5/64"]
    failing = {"name": "bridge", "ovs_bridge": {"name": "br-rt", "addresses": declared,
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


def test_routes_in_any_table_both_families_converge_drift_snapshot_and_go(lab, capsys, tmp_path):
    host = lab.host_names[0]
    sh(lab, host, "; ".join(f"ip addr add {a} dev eth1 nodad" for a in NIC_ADDRESSES)
       + "; echo '100 tenants' >> /etc/iproute2/rt_tables")  # fmt: skip
    routes = [
        {"dest": "default", "gateway": "192.168.61.1"},
        {"dest": "10.61.0.0/16", "gateway": "192.168.61.1", "table": "tenants", "metric": 20},
        {"dest": "10.62.0.0/16", "dev": "eth1", "table": 200},
        {"dest": "2001:db8:61::/48", "gateway": "fd00:61::1"},
        {"dest": "default", "gateway": "fd00:61::1", "metric": 300},
    ]
    tasks = [{"name": f"route {i}", "route": r} for i, r in enumerate(routes)]
    book = tmp_path / "routes.yml"
    book.write_text(yaml.safe_dump([{"hosts": host, "tasks": tasks}]))
    inventory = str(lab.inventory_path)

    def vnetctl(*argv: str) -> tuple[int, dict]:
        code = main([*argv, "-i", inventory, "--format", "json"])
        return code, json.loads(capsys.readouterr().out)

    code, doc = vnetctl("run", str(book))
    assert code == 0 and {r["status"] for r in doc["results"]} == {"changed"}, doc
    expected = {
        ("eth1", "default", "192.168.61.1", "254", 0),
        ("eth1", "10.61.0.0/16", "192.168.61.1", "100", 20),
        ("eth1", "10.62.0.0/16", None, "200", 0),
        ("eth1", "2001:db8:61::/48", "fd00:61::1", "254", 1024),
        ("eth1", "default", "fd00:61::1", "254", 300),
    }
    assert routes_through(lab, host, "eth1") == expected
    code, doc = vnetctl("run", str(book))
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}, doc
    assert vnetctl("drift", str(book), "--no-history")[0] == 0

    sh(lab, host, "ip route replace 10.61.0.0/16 via 192.168.61.9 dev eth1 table 100 metric 20")
    code, doc = vnetctl("drift", str(book), "--no-history")
    found = [(i["resource"], i["kind"], i["field"], i["declared"], i["actual"])
             for h in doc["hosts"] for i in h["items"]]  # fmt: skip
    assert code == 2 and found == [("route 10.61.0.0/16 table tenants metric 20", "different",
                                    "gateway", "192.168.61.1", "192.168.61.9")], doc  # fmt: skip

    snapshot = tmp_path / "snapshot.yml"
    assert main(["snapshot", "-i", inventory, "--limit", host, "-o", str(snapshot)]) == 0
    capsys.readouterr()
    (play,) = yaml.safe_load(snapshot.read_text())
    declared = [t["route"] for t in play["tasks"] if "route" in t]
    assert {(r["dest"], r.get("gateway"), r.get("table", 254)) for r in declared} == {
        ("default", "192.168.61.1", 254), ("10.61.0.0/16", "192.168.61.9", 100),
        ("10.62.0.0/16", None, 200), ("2001:db8:61::/48", "fd00:61::1", 254),
        ("::/0", "fd00:61::1", 254)}  # fmt: skip
    code, doc = vnetctl("run", str(snapshot))
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}, doc

    book.write_text(yaml.safe_dump([{"hosts": host, "tasks": [
        dict(t, route=dict(t["route"], state="absent")) for t in tasks]}]))  # fmt: skip
    code, doc = vnetctl("run", str(book))
    assert code == 0 and {r["status"] for r in doc["results"]} == {"changed"}, doc
    assert routes_through(lab, host, "eth1") == set()


@pytest.fixture
def routed(lab):
    """h1 reaches the controller (the lab's gateway) through h2, its default router: h1's
    route to the management subnet goes, h2 forwards. Yields (lab, router, wrong): a
    wrong router is an unused address on the link. Put back afterwards."""
    h1, h2 = lab.hosts[0], lab.hosts[1]
    net = ipaddress.ip_network(lab.subnet)
    wrong = str(net.broadcast_address - 5)
    sh(lab, h2.name, "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.send_redirects=0 "
                     "net.ipv4.conf.eth0.send_redirects=0")  # fmt: skip
    sh(lab, h1.name, f"ip route del {net} dev eth0; ip route add {h2.address} dev eth0 scope "
                     f"link; ip route add {wrong} dev eth0 scope link; ip route add default via "
                     f"{h2.address} dev eth0")  # fmt: skip
    try:
        yield lab, h2.address, wrong
    finally:
        sh(lab, h2.name, "sysctl -qw net.ipv4.ip_forward=0")
        sh(lab, h1.name, f"ip route flush table main; ip route add {net} dev eth0 proto "
                         f"kernel scope link src {h1.address}")  # fmt: skip


def default_route(lab, host: str) -> list[tuple]:
    found = json.loads(sh(lab, host, "ip -j route show default"))
    return [(r.get("gateway"), r["dev"]) for r in found]


def test_the_route_to_the_controller_is_guarded_and_a_wrong_gateway_rolls_back(routed, capsys):
    lab, router, wrong = routed
    host = lab.host_names[0]
    code, doc = run(
        capsys, lab, {"name": "gateway", "route": {"dest": "default", "gateway": wrong}}, "--check"
    )
    (result,) = doc["results"]
    assert code == 0 and [(t["effect"], t["cuts"]) for t in result["data"]["management_path"]] \
        == [(f"route to the controller changed (via {router} dev eth0 -> via {wrong} dev eth0)",
             False)], result  # fmt: skip

    code, doc = run(capsys, lab, {"name": "gone", "route": {"dest": "default", "state": "absent"}})
    (result,) = doc["results"]
    assert code == 1 and result["msg"].startswith("refused before any change"), result
    assert "route to the controller removed" in result["msg"]
    assert default_route(lab, host) == [(router, "eth0")]

    path = lab.inventory_path.parent / "wrong-gateway.yml"
    task = {"name": "gateway", "route": {"dest": "default", "gateway": wrong}}
    path.write_text(yaml.safe_dump([{"hosts": host, "tasks": [task]}]))
    code, out, err = finish(start_vnetctl("run", str(path), "-i", str(lab.inventory_path),
                                          "--format", "json", "--confirm-timeout", "10s"),
                            timeout=150)  # fmt: skip
    assert code == 2, out + err
    lines = [r for r in json.loads(out)["results"] if r["host"] == host and r["index"] == -1]
    assert lines and lines[0]["msg"].startswith("rolled back: contact lost after applying task "
                                                "'gateway'"), lines  # fmt: skip
    assert default_route(lab, host) == [(router, "eth0")]
