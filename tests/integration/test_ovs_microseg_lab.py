"""Micro-segmentation on real Open vSwitch (userspace datapath, issue 30): one lab host,
bridge br-ms with three VM-like ports (tests/integration/microseg_vms.py: msweb, msdb,
msother), the policy compiled by vnet_ovs_microseg and installed through its plan() as
the host does (one `ovs-ofctl --bundle add-flows`). Real TCP with data both ways (return traffic by
conntrack state), ICMP and ICMPv6 echo, IPv4 and IPv6; a port made again with a new
OpenFlow number sends nothing until plan() runs again; a flow removed by hand is drift
that one plan repairs; another tool's flow is left alone. Every namespace, bridge and
process made here is removed by its own name or id.

`pytest -s` prints the measured figures (flows per port, install and update time)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import yaml

from tests.integration import microseg_vms as vms
from tests.labhosts import own_lab
from vnetctl.catalog import Catalog
from vnetctl.cli.main import main
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

Catalog().host_lib()  # installs the host library's modules
import vnet_ovs  # noqa: E402
import vnet_ovs_microseg as ms  # noqa: E402

OURS = "cookie=0x766e000000000000/0xffff000000000000"
BRIDGE = "br-ms"
VMS = {  # name: (MAC, IPv4, IPv6); guest msNAME, its port msNAMEp (microseg_vms)
    "web": ("52:54:00:30:00:01", "10.30.0.1", "fd00::1"),
    "db": ("52:54:00:30:00:02", "10.30.0.2", "fd00::2"),
    "other": ("52:54:00:30:00:03", "10.30.0.3", "fd00::3"),
}
LISTEN = (5432, 22, 8080, 8081)  # db's listeners
IPERF_PORT = 5201


def sh(lab, script: str) -> str:
    done = host_exec(lab.name, lab.host_names[0], ["sh", "-c", script])
    assert done.returncode == 0, f"{script}: {done.stderr}"
    return done.stdout


def add_port(lab, vm: str) -> None:
    """The port's OVSDB record again (after del-port), marked as libvirt marks it."""
    sh(lab, f"ovs-vsctl add-port {BRIDGE} ms{vm}p -- set interface ms{vm}p "
            f"external_ids:attached-mac={VMS[vm][0]}")  # fmt: skip


@contextmanager
def guests(lab) -> Iterator[None]:
    """br-ms (userspace datapath) with a guest per VM, db listening on LISTEN."""
    host = lab.host_names[0]
    sh(lab, f"ovs-vsctl add-br {BRIDGE} -- set bridge {BRIDGE} datapath_type=netdev "
            f"&& ip link set {BRIDGE} up")  # fmt: skip
    try:
        for vm, (mac, ip4, ip6) in VMS.items():
            guest = {"name": "ms" + vm, "mac": mac, "addresses": [ip4, ip6]}
            vms.add_vm(lab, host, guest, BRIDGE, mtu=1500, ovs=True)
        with vms.listening(lab, "msdb", list(LISTEN), seconds=3600):
            yield
    finally:
        for vm in VMS:
            vms.remove_vm(lab, "ms" + vm)
        host_exec(lab.name, host, ["ovs-vsctl", "--if-exists", "del-br", BRIDGE])


def tcp(lab, src: str, dst: str, port: int, v6=False, timeout=1.5, source=None) -> str:
    address = VMS[dst][2 if v6 else 1]
    return vms.connect(lab, "ms" + src, "tcp", address, port, timeout, source)


def ping(lab, src: str, dst: str, v6=False) -> bool:
    return vms.probe(lab, "ms" + src, "icmp", VMS[dst][2 if v6 else 1]) == "pass"


def web_ip(lab, *argv: str) -> None:
    argv = ["ip", "-n", vms.namespace(lab, "msweb"), *argv]
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mso")
    with own_lab("mso", folder, hosts=1, ovs=True) as state, guests(state):
        yield state


def rule(rid, action, proto, peers, ports=None, icmp=None, family="any"):
    out = {"id": rid, "action": action, "family": family, "proto": proto, "peers": peers,
           "log": False}  # fmt: skip
    if ports:
        out["ports"] = ports
    if icmp:
        out["icmp_types"] = icmp
    return out


def policy() -> dict:
    """db takes 5432 and 8000-8080 from web (IPv4 and IPv6), echo from web, and denies
    22 to everyone by an explicit rule; web and other take nothing unasked."""
    web = [VMS["web"][1] + "/32", VMS["web"][2] + "/128"]
    db_in = [rule("db/1", "allow", "tcp", web, ports=[5432, "8000-8080"]),
             rule("db/2", "allow", "icmp", web, icmp=["echo-request"], family="ipv4"),
             rule("db/3", "allow", "icmpv6", web, icmp=["echo-request"], family="ipv6"),
             rule("db/4", "deny", "tcp", ["any"], ports=[22])]  # fmt: skip
    ports = [
        {"port": "mswebp", "mac": VMS["web"][0], "groups": ["web"], "ingress": [],
         "egress": [], "default_ingress": "drop", "default_egress": "allow"},
        {"port": "msdbp", "mac": VMS["db"][0], "groups": ["db"], "ingress": db_in,
         "egress": [], "default_ingress": "drop", "default_egress": "allow"},
        {"port": "msotherp", "mac": VMS["other"][0], "groups": ["other"], "ingress": [],
         "egress": [], "default_ingress": "drop", "default_egress": "allow"},
    ]  # fmt: skip
    return {"bridge": BRIDGE, "ports": ports}


def facts(lab) -> dict:
    """What the module's FACTS read: vnetctl's flows, and OVSDB's port numbers (the
    query the play's one ovs-vsctl makes for them), checked against ovs-vsctl get."""
    dump = sh(lab, f"ovs-ofctl --names --no-stats dump-flows {BRIDGE} {OURS}")
    rows = sh(lab, "ovs-vsctl --format=json --data=json --columns=name,ofport list Interface")
    (interfaces,) = vnet_ovs.parse_output(rows)
    one = sys.modules["vnet_ovs_config"].one  # OVSDB's empty set: no number yet
    numbers = ms.ofports({"ovs_config": {"interfaces": {
        row["name"]: {"ofport": one(row["ofport"])} for row in interfaces}}})  # fmt: skip
    assert numbers["msdbp"] == int(sh(lab, "ovs-vsctl get interface msdbp ofport"))
    return {"flows": dump, "ofports": numbers}


def install(lab, steps) -> float:
    """The steps as the host runs them (one bundle per bridge); seconds taken."""
    started = time.monotonic()
    for argv, stdin in vnet_ovs.ofctl_batches([line for _, line in steps]):
        done = host_exec(lab.name, lab.host_names[0], argv, input=stdin)
        assert done.returncode == 0, done.stderr
    return time.monotonic() - started


def apply(lab, ir=None) -> None:
    install(lab, ms.plan(ir or policy(), facts(lab)))
    assert ms.plan(ir or policy(), facts(lab)) == [], "a second plan still changes something"


def matrix(lab) -> dict:
    cells = {}
    for v6 in (False, True):
        ip = "IPv6" if v6 else "IPv4"
        for port in (5432, 22, 8080, 8081):
            cells[f"web->db tcp/{port} {ip}"] = tcp(lab, "web", "db", port, v6)
        cells[f"other->db tcp/5432 {ip}"] = tcp(lab, "other", "db", 5432, v6)
        cells[f"web->db echo {ip}"] = "ok" if ping(lab, "web", "db", v6) else "dropped"
        cells[f"other->db echo {ip}"] = "ok" if ping(lab, "other", "db", v6) else "dropped"
        cells[f"db->web tcp/5432 {ip}"] = tcp(lab, "db", "web", 5432, v6)
    return cells


def expected() -> dict:
    out = {}
    for ip in ("IPv4", "IPv6"):
        out.update({f"web->db tcp/5432 {ip}": "ok", f"web->db tcp/22 {ip}": "dropped",
                    f"web->db tcp/8080 {ip}": "ok", f"web->db tcp/8081 {ip}": "dropped",
                    f"other->db tcp/5432 {ip}": "dropped", f"web->db echo {ip}": "ok",
                    f"other->db echo {ip}": "dropped",
                    f"db->web tcp/5432 {ip}": "dropped"})  # fmt: skip
    return out


@pytest.fixture
def clean(lab):
    yield lab
    mine = f"cookie={ms.BASE:#x}/{ms.MASK:#x}"
    sh(lab, f"ovs-ofctl del-flows {BRIDGE} {mine} && ovs-ofctl del-flows {BRIDGE} cookie=0x77/-1")


def test_everything_passes_without_the_policy(clean):
    """The matrix's drops are the policy's, not the lab's (web listens on nothing)."""
    got = matrix(clean)
    assert {k for k, v in got.items() if v != "ok"} == {k for k in got if k.startswith("db->")}
    assert {got[k] for k in got if k.startswith("db->")} == {"refused"}


def test_allow_deny_matrix_and_return_traffic(clean):
    apply(clean)
    got = matrix(clean)
    print("\n" + json.dumps(got, indent=1))
    assert got == expected()
    flows = ms.read(facts(clean)["flows"], facts(clean)["ofports"])
    per_port = {mac: sum(len(t) for r in s.values() for t in r.values())
                for mac, s in flows["ports"].items()}  # fmt: skip
    print(f"flows per port: {per_port}, shared: {len(flows['shared'])}")


def test_a_port_made_again_sends_nothing_until_plan_runs(clean):
    apply(clean)
    assert tcp(clean, "web", "db", 5432) == "ok"
    ir = policy()
    before = facts(clean)["ofports"]["msdbp"]
    sh(clean, f"ovs-vsctl del-port {BRIDGE} msdbp")
    add_port(clean, "db")
    after = facts(clean)["ofports"]["msdbp"]
    assert after != before, "OVS gave the port its old number: the test proves nothing"
    assert tcp(clean, "web", "db", 5432) == "dropped"  # db's replies: its MAC, a new port
    assert tcp(clean, "other", "db", 5432) == "dropped"
    steps = ms.plan(ir, facts(clean))
    assert any(f"in_port={before}," in line for _, line in steps)  # the old number's go
    apply(clean, ir)
    assert tcp(clean, "web", "db", 5432) == "ok"
    assert tcp(clean, "web", "db", 22) == "dropped"
    assert tcp(clean, "other", "db", 5432) == "dropped"


def test_a_rule_removed_by_hand_is_drift_and_other_flows_stay(clean):
    apply(clean)
    sh(clean, f"ovs-ofctl add-flow {BRIDGE} cookie=0x77,table=50,priority=5,actions=drop")
    db_mac = VMS["db"][0]
    cookie = ms.rule_cookie(db_mac, "ingress", "db/1")
    sh(clean, f"ovs-ofctl del-flows {BRIDGE} cookie={cookie:#x}/-1")
    assert tcp(clean, "web", "db", 5432) == "dropped"  # no longer allowed
    now = ms.read(facts(clean)["flows"], facts(clean)["ofports"])
    want = ms.desired(policy(), facts(clean)["ofports"])
    assert "db/1" in want["ports"][db_mac]["ingress"]
    assert "db/1" not in now["ports"][db_mac]["ingress"]
    assert now["ports"][db_mac]["ingress"]["db/4"] == want["ports"][db_mac]["ingress"]["db/4"]
    steps = ms.plan(policy(), facts(clean))
    assert steps and all(" add " in line for _, line in steps)
    apply(clean)
    assert tcp(clean, "web", "db", 5432) == "ok"
    assert "cookie=0x77" in sh(clean, f"ovs-ofctl dump-flows {BRIDGE} cookie=0x77/-1")


def test_a_rule_changed_by_hand_is_drift_that_one_plan_repairs(clean):
    """db's default drop turned into a pass (mod-flows keeps the cookie, not the note)."""
    apply(clean)
    assert tcp(clean, "other", "db", 5432) == "dropped"
    cookie = ms.rule_cookie(VMS["db"][0], "ingress", "default")
    sh(clean, f"ovs-ofctl mod-flows {BRIDGE} cookie={cookie:#x}/-1,table=42,"
              f"'actions=resubmit(,{ms.COMMIT})'")  # fmt: skip
    assert tcp(clean, "other", "db", 5432) == "ok"
    now = ms.read(facts(clean)["flows"], facts(clean)["ofports"])
    assert "default" not in now["ports"][VMS["db"][0]]["ingress"] and now["unlabelled"]
    apply(clean)
    assert tcp(clean, "other", "db", 5432) == "dropped"


def test_install_and_update_time_100_groups_of_20_rules(clean):
    """100 member ports (one group each, ports need not exist: numbers 1000+), 20 rules
    each (10 in, 10 out, 2 peers, a port range); printed, bounded loosely."""
    ports = []
    for g in range(100):
        peers = [f"10.31.{g}.0/24", f"fd00:31:{g}::/64"]
        rules = [rule(f"g{g}/{i}", "allow" if i % 3 else "deny", "tcp", peers,
                      ports=[1000 + i, "8000-8080"]) for i in range(10)]  # fmt: skip
        ports.append({"port": f"vm{g}", "mac": f"52:54:00:31:00:{g:02x}",
                      "groups": [f"g{g}"], "ingress": rules, "egress": rules,
                      "default_ingress": "drop", "default_egress": "allow"})  # fmt: skip
    ir = {"bridge": BRIDGE, "ports": ports}
    numbers = {f"vm{g}": 1000 + g for g in range(100)}
    started = time.monotonic()
    steps = ms.plan(ir, {"flows": "", "ofports": numbers})
    planned = time.monotonic() - started
    took = install(clean, steps)
    dumped = facts(clean)["flows"]
    assert ms.plan(ir, {"flows": dumped, "ofports": numbers}) == []
    ports[7]["ingress"] = ports[7]["ingress"][1:]  # one rule less: every position moves
    update = ms.plan(ir, {"flows": dumped, "ofports": numbers})
    took_update = install(clean, update)
    load = [f"{n:.2f}" for n in os.getloadavg()]
    print(f"\n{len(steps)} flows (100 ports x 20 rules): planned in {planned:.2f}s, installed "
          f"in {took:.2f}s; one rule removed: {len(update)} steps in {took_update:.2f}s; "
          f"load {' '.join(load)}")  # fmt: skip
    assert took < 120


SPOOFED = "10.30.0.9"  # an address web takes that port security does not know


@pytest.fixture
def secured(clean, tmp_path, capsys):
    """Port security (ovs_port_group, vnet_ovs_portsec) on br-ms too, run by vnetctl."""
    addresses = [{"port": f"ms{vm}p", "mac": mac, "ips": [ip4, ip6]}
                 for vm, (mac, ip4, ip6) in VMS.items()]  # fmt: skip
    group = {"name": "vms", "bridge": BRIDGE, "ports": ["ms*p"], "port_security": True,
             "addresses": addresses}  # fmt: skip
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": clean.host_names[0],
                                     "tasks": [{"ovs_port_group": group}]}]))  # fmt: skip

    def run_group():
        code = main(["run", str(play), "-i", str(clean.inventory_path), "--format", "json"])
        doc = json.loads(capsys.readouterr().out)
        assert code == 0, json.dumps(doc)[:3000]

    web_ip(clean, "addr", "add", f"{SPOOFED}/24", "dev", "eth0")
    yield run_group
    web_ip(clean, "addr", "del", f"{SPOOFED}/24", "dev", "eth0")
    sh(clean, f"ovs-ofctl del-flows {BRIDGE} {OURS}")  # the group's rules and the gate
    for vm in VMS:
        sh(clean, f"ovs-vsctl remove interface ms{vm}p external_ids vnetctl-port-group")


def test_with_port_security_both_hold_and_a_port_made_again_waits_for_both(secured, clean):
    """Microseg hands what it passes to table 0 again, where port security checks it: a
    source address microseg allows (db takes web's whole subnet here) but port security
    does not know is dropped; a port made again is dropped by the gate, then by
    microseg's guard until microseg's plan runs too."""
    ir = policy()
    ir["ports"][1]["ingress"][0]["peers"] = ["10.30.0.0/24", "fd00::/64"]
    apply(clean, ir)
    assert tcp(clean, "web", "db", 5432, source=SPOOFED) == "ok"  # microseg alone: passes
    secured()
    apply(clean, ir)
    assert tcp(clean, "web", "db", 5432) == "ok"
    assert tcp(clean, "web", "db", 5432, source=SPOOFED) == "dropped"
    assert tcp(clean, "other", "db", 22) == "dropped"
    assert tcp(clean, "web", "db", 5432, v6=True) == "ok"
    cookie = sys.modules["vnet_ovs_config"].group_cookie("vms")
    rules = sh(clean, f"ovs-ofctl dump-flows {BRIDGE} cookie={cookie:#x}/-1,ip,in_port=mswebp")
    seen = re.search(r"n_packets=(\d+),.*priority=110,ip,.*nw_src=10.30.0.1 ", rules)
    assert seen and int(seen.group(1)) > 0, rules  # port security saw web's frames
    sh(clean, f"ovs-vsctl del-port {BRIDGE} msdbp")
    add_port(clean, "db")
    assert tcp(clean, "web", "db", 5432) == "dropped"
    secured()  # port security's run: the gate opens for the new number
    assert tcp(clean, "web", "db", 5432) == "dropped"  # microseg's guard still holds it
    apply(clean, ir)
    assert tcp(clean, "web", "db", 5432) == "ok"
    assert tcp(clean, "web", "db", 5432, source=SPOOFED) == "dropped"


def test_forwarding_throughput_with_and_without_the_policy(clean):
    """Printed, not bounded: the userspace datapath's rate depends on the CPU it gets;
    alternated twice, so the spread between runs shows beside the difference."""
    ir = policy()
    web = [VMS["web"][1] + "/32"]
    ir["ports"][1]["ingress"].insert(0, rule("db/0", "allow", "tcp", web, ports=[IPERF_PORT]))
    mine = f"cookie={ms.BASE:#x}/{ms.MASK:#x}"
    bare, policed = [], []
    for _ in range(2):
        sh(clean, f"ovs-ofctl del-flows {BRIDGE} {mine}")
        bare.append(vms.iperf(clean, "msweb", "msdb", VMS["db"][1], IPERF_PORT))
        apply(clean, ir)
        assert tcp(clean, "other", "db", 5432) == "dropped"  # the policy is on
        policed.append(vms.iperf(clean, "msweb", "msdb", VMS["db"][1], IPERF_PORT))
    load = " ".join(f"{n:.2f}" for n in os.getloadavg())
    flows = len(ms.read(facts(clean)["flows"])["flows"])
    print(
        f"\nweb->db TCP, Mbit/s: without the policy {bare[0]:.0f}, {bare[1]:.0f}; with it "
        f"({flows} flows, conntrack) {policed[0]:.0f}, {policed[1]:.0f}; load {load}"
    )
    assert min(bare + policed) > 0
