"""Open vSwitch as the dataplane, on two lab hosts cabled back to back on two links
(eth1-eth1, eth2-eth2: no switch between, so LACP can negotiate): bonds that fail over and
negotiate LACP, port groups that keep VLANs apart, port security against forged MACs,
flow export to real collectors, and drift for each change made by hand."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, load_state
from vnetctl.lab.lab import in_host_argv
from vnetctl.lab.ovs import wire_back_to_back

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
TEAMING = str(ROOT / "playbooks" / "ovs-teaming.yml")
MONITORED = str(Path(__file__).parent / "playbooks" / "ovs-monitored.yml")
FAILOVER_BOUND_S = 5.0  # measured ~1.5 s on the lab; a bound, not the expectation
FLOWING = 5  # ping replies before the active member goes down: traffic flows
# VM-like ports: (port, namespace, VLAN's group, address; MAC from the host's index)
VMS = {"web1": "192.168.10.{i}/24", "db1": "192.168.20.{i}/24"}


@pytest.fixture(scope="module")
def pair(lab_required, tmp_path_factory):
    with own_lab("ot", tmp_path_factory.mktemp("ot"), hosts=2, ovs=True) as state:
        wire_back_to_back(state, *state.host_names)
        for host in state.host_names:  # ovs-vsctl clients per run, counted from the db log
            sh(state, host, "ovs-appctl -t ovsdb-server vlog/set jsonrpc:file:dbg")
        assert main(["run", TEAMING, "-i", str(state.inventory_path)]) == 0
        start_vms(state)  # after the bridge exists, as VMs start on a configured host
        yield load_state(state.name)


def sh(lab, host: str, script: str) -> str:
    done = host_exec(lab.name, host, ["sh", "-c", script])
    assert done.returncode == 0, f"{host}: {script}: {done.stderr}"
    return done.stdout


def vnetctl(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def apply(capsys, lab, playbook: str, *extra: str) -> dict:
    code, doc = vnetctl(capsys, "run", playbook, "-i", str(lab.inventory_path), *extra)
    assert code == 0, doc
    return doc


def changed(doc: dict) -> list[str]:
    return [f"{r['host']}: {r['task']}" for r in doc["results"] if r["status"] == "changed"]


def mac(index: int, port: str) -> str:
    """The VM's MAC: its host's index and its port's place in VMS."""
    return f"52:54:00:{list(VMS).index(port):02x}:00:{index:02x}"


def start_vms(lab) -> None:
    """What libvirt does when a VM starts: a port on the bridge, the VM's MAC recorded in
    external_ids:attached-mac; the VM is a namespace behind a veth."""
    for i, host in enumerate(lab.host_names, start=1):
        for port, address in VMS.items():
            ns = "vm-" + port
            sh(
                lab,
                host,
                f"""
ip netns add {ns}
ip link add {port} type veth peer name eth0 netns {ns}
ethtool -K {port} tx off >/dev/null 2>&1 || true
ip link set {port} up
ip -n {ns} link set eth0 address {mac(i, port)}
ip -n {ns} addr add {address.format(i=i)} dev eth0
ip -n {ns} link set eth0 up
ovs-vsctl add-port br-vm {port} -- set interface {port} external_ids:attached-mac={mac(i, port)}
""",
            )


def ping(lab, host: str, vm: str, address: str, count: int = 3) -> bool:
    argv = ["ip", "netns", "exec", "vm-" + vm, "ping", "-c", str(count), "-i", "0.2",
            "-W", "1", address]  # fmt: skip
    return host_exec(lab.name, host, argv).returncode == 0


def reaches(lab, host: str, vm: str, address: str, within: float = 10.0) -> bool:
    """Pings pass within `within` seconds (a bond just reconfigured relearns MACs)."""
    deadline = time.monotonic() + within
    while not ping(lab, host, vm, address):
        if time.monotonic() > deadline:
            return False
    return True


def ovsdb_clients(lab, host: str) -> int:
    """ovs-vsctl processes so far: each opens its own session, starting with get_schema."""
    log = sh(lab, host, "cat /run/openvswitch/ovsdb-server.log")
    return log.count('received request, method="get_schema", params=["_Server"]')


def test_an_active_backup_bond_fails_over_then_lacp_negotiates(pair, capsys):
    h1, h2 = pair.host_names
    ab = ("-e", '{"bond_mode": "active-backup", "bond_lacp": "off"}')
    apply(capsys, pair, TEAMING, *ab)  # and the VMs started since take their groups' policy
    assert reaches(pair, h1, "web1", "192.168.10.2")

    show = sh(pair, h1, "ovs-appctl bond/show uplink")
    assert "bond_mode: active-backup" in show
    active = re.search(r"active member mac: \S+\((\w+)\)", show).group(1)
    outage = failover_outage(pair, h1, active)
    with capsys.disabled():  # the measurement, for the record
        print(f"\nactive-backup failover: {outage:.2f} s without replies after {active} went down")
    assert outage < FAILOVER_BOUND_S
    sh(pair, h1, f"ip link set {active} up")

    before = {h: ovsdb_clients(pair, h) for h in pair.host_names}
    doc = apply(capsys, pair, TEAMING)  # balance-tcp, LACP active on both ends
    changing = {h: ovsdb_clients(pair, h) - before[h] for h in pair.host_names}
    assert sorted(changed(doc)) == [f"{h1}: the VM bridge and its LACP uplink bond",
                                    f"{h2}: the VM bridge and its LACP uplink bond"]  # fmt: skip
    bridge = next(r for r in doc["results"] if r["host"] == h1 and r["module"] == "ovs_bridge")
    assert any("LACP re-negotiates" in c for c in bridge["commands"])
    wait_until(lambda: "status: active negotiated" in sh(pair, h1, "ovs-appctl lacp/show uplink"),
               15, f"LACP negotiated on {h1}'s uplink (ovs-appctl lacp/show uplink)")  # fmt: skip
    assert "bond_mode: balance-tcp" in sh(pair, h2, "ovs-appctl bond/show uplink")
    assert reaches(pair, h1, "web1", "192.168.10.2")

    before = {h: ovsdb_clients(pair, h) for h in pair.host_names}
    doc = apply(capsys, pair, TEAMING)
    assert changed(doc) == []
    per_host = {h: ovsdb_clients(pair, h) - before[h] for h in pair.host_names}
    with capsys.disabled():
        print(
            f"\novs-vsctl processes per host: {changing} in the run that changed the bond "
            f"(read, one transaction, verify), {per_host} in a run that changes nothing"
        )
    assert set(per_host.values()) == {1}  # every OVSDB fact of the play in one read
    assert set(changing.values()) == {3}


def failover_outage(lab, host: str, member: str) -> float:
    """The longest gap between ping replies (every 50 ms) across the member going down."""
    argv = in_host_argv(lab, lab.host(host), ["ip", "netns", "exec", "vm-web1", "ping", "-D",
                                              "-i", "0.05", "-c", "120", "-W", "1",
                                              "192.168.10.2"])  # fmt: skip
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as pinger:
        try:
            head = []  # ping writes a line per reply: read until replies flow
            while sum(" bytes from " in line for line in head) < FLOWING:
                line = pinger.stdout.readline()  # ping's -c 120 bounds this loop
                assert line, f"ping ended before replies flowed:\n{''.join(head)}"
                head.append(line)
            sh(lab, host, f"ip link set {member} down")
            pinger.wait(timeout=30)  # its ~10 kB of output fit in the pipe meanwhile
            out = "".join(head) + pinger.stdout.read()
        finally:
            pinger.kill()
    stamps = [float(s) for s in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", out, re.M)]
    assert len(stamps) > 40, out
    return max(b - a for a, b in zip(stamps, stamps[1:], strict=False))


def test_port_groups_keep_vlans_apart_across_hosts(pair, capsys):
    h1, h2 = pair.host_names
    apply(capsys, pair, TEAMING)
    assert reaches(pair, h1, "web1", "192.168.10.2")  # VLAN 10 to VLAN 10, across the bond
    assert reaches(pair, h1, "db1", "192.168.20.2")  # VLAN 20 to VLAN 20
    # a web VM on h2 moved to the db address plan: same subnet, other VLAN: unreachable
    sh(pair, h2, "ip -n vm-db1 addr add 192.168.10.9/24 dev eth0")
    try:
        assert not ping(pair, h1, "web1", "192.168.10.9", count=2)
    finally:
        sh(pair, h2, "ip -n vm-db1 addr del 192.168.10.9/24 dev eth0")
    tags = sh(pair, h2, "ovs-vsctl get port web1 tag; ovs-vsctl get port db1 tag").split()
    assert tags == ["10", "20"]


SEND = """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
src = bytes.fromhex(sys.argv[1].replace(":", ""))
for _ in range(3):
    s.send(b"\\xff" * 6 + src + b"\\x88\\xb5" + sys.argv[2].encode().ljust(46, b"."))
"""
RECEIVE = """
import socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
s.bind(("eth0", 0))
print("ready", flush=True)  # bound: every frame from now on is queued for it
s.settimeout(0.2)
end = time.monotonic() + 3
while time.monotonic() < end:
    try:
        print(s.recv(2048)[14:].split(b".")[0].decode(), flush=True)
    except socket.timeout:
        pass
"""


def test_port_security_drops_a_forged_mac_and_leaves_foreign_rules(pair, capsys):
    h1, h2 = pair.host_names
    apply(capsys, pair, TEAMING)
    foreign = "cookie=0x1234,priority=5,in_port=db1,actions=NORMAL"
    sh(pair, h1, f"ovs-ofctl add-flow br-vm {foreign}")
    with subprocess.Popen(
        in_host_argv(pair, pair.host(h2), ["ip", "netns", "exec", "vm-db1", "python3", "-c",
                                           RECEIVE]),  # fmt: skip
        stdout=subprocess.PIPE, text=True,
    ) as receiver:  # fmt: skip
        try:
            assert receiver.stdout.readline() == "ready\n", "the receiver did not start"
            for source, tag in ((mac(1, "db1"), "legitimate"), ("52:54:00:66:66:66", "forged")):
                argv = ["ip", "netns", "exec", "vm-db1", "python3", "-c", SEND, source, tag]
                assert host_exec(pair.name, h1, argv).returncode == 0
            receiver.wait(timeout=10)  # it listens 3 s
            seen = receiver.stdout.read()
        finally:
            receiver.kill()
    assert "legitimate" in seen.split() and "forged" not in seen.split()

    # a new MAC declared: only vnetctl's rules are replaced, the foreign one stays
    sh(pair, h1, "ovs-vsctl set interface db1 external_ids:attached-mac=52:54:00:77:77:77")
    doc = apply(capsys, pair, TEAMING, "--limit", h1)
    assert changed(doc) == [f"{h1}: database VMs on VLAN 20, each sending only from its own MAC"]
    flows = sh(pair, h1, "ovs-ofctl dump-flows br-vm")
    assert "cookie=0x1234" in flows and "52:54:00:77:77:77" in flows
    assert mac(1, "db1") not in flows
    sh(pair, h1, f"ovs-vsctl set interface db1 external_ids:attached-mac={mac(1, 'db1')}")
    assert changed(apply(capsys, pair, TEAMING, "--limit", h1))
    assert "cookie=0x1234" in sh(pair, h1, "ovs-ofctl dump-flows br-vm")


COLLECT = "/run/vnetctl-collect"
NFDUMP = f"nfdump -R {COLLECT}/nf -q -o 'fmt:%sa %da %pr'"  # the closed files' flows
ICMP_FLOW = r"192\.168\.10\.1\s+192\.168\.10\.2\s+ICMP"


def test_flow_export_reaches_real_collectors(pair, capsys):
    h1, h2 = pair.host_names
    collector = pair.host(h2).address
    sh(
        pair,
        h2,
        f"""
mkdir -p {COLLECT}/nf
nfcapd -w {COLLECT}/nf -p 4739 -b {collector} -t 2 -P {COLLECT}/nfcapd.pid -D >/dev/null
sfacctd -L {collector} -l 6343 -P print -O csv -c src_host,dst_host,proto -r 1 \
    -o {COLLECT}/sflow.csv -F {COLLECT}/sfacctd.pid -D >/dev/null 2>&1
""",
    )
    try:
        apply(capsys, pair, MONITORED, "-e", f"collector={collector}")
        deadline = time.monotonic() + 20
        sflow = ""
        while "192.168.10.1,192.168.10.2" not in sflow:
            assert time.monotonic() < deadline, f"no sFlow record for the test traffic: {sflow}"
            ping(pair, h1, "web1", "192.168.10.2", count=3)
            sflow = sh(pair, h2, f"cat {COLLECT}/sflow.csv 2>/dev/null || true")
        # the IPFIX record of the same traffic: exported once the cache's active timeout
        # (1 s) passes, readable once nfcapd closes its file (-t 2: every 2 s)
        wait_until(lambda: re.search(ICMP_FLOW, sh(pair, h2, NFDUMP)), 20,
                   "an IPFIX record of the test traffic at nfcapd")  # fmt: skip
    finally:
        collectors = sh(pair, h2, f"cat {COLLECT}/nfcapd.pid {COLLECT}/sfacctd.pid").split()
        sh(pair, h2, "kill " + " ".join(collectors))
        wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in collectors), 10,
                   "the collectors ended")  # fmt: skip
    sh(pair, h2, f"rm -rf {COLLECT}")


def test_drift_of_each_hand_change_in_every_format(pair, capsys, tmp_path):
    h1, h2 = pair.host_names
    collector = pair.host(h2).address
    extra = ("-e", f"collector={collector}")
    apply(capsys, pair, MONITORED, *extra)
    sh(pair, h1, "ovs-vsctl set port uplink bond_mode=balance-slb")  # bond mode
    sh(pair, h1, "ovs-vsctl set port web1 tag=99")  # a port's tag
    sh(
        pair,
        h2,
        "ovs-vsctl -- --id=@m create mirror name=extra select_all=true "
        "output_vlan=55 -- add bridge br-vm mirrors @m",
    )  # an extra mirror
    sh(pair, h2, "ovs-vsctl clear bridge br-vm ipfix")  # a flow-export target removed
    reports = {f: tmp_path / f"drift.{f}" for f in ("text", "html", "junit", "prometheus")}
    code, doc = vnetctl(capsys, "drift", MONITORED, "-i", str(pair.inventory_path), *extra,
                        "--history", str(tmp_path / "h.sqlite"),
                        *(f"--report={f}={p}" for f, p in reports.items()))  # fmt: skip
    assert code == 2, doc
    found = {(i["host"], i["resource"], i["kind"], i["field"]) for h in doc["hosts"]
             for i in h["items"]}  # fmt: skip
    assert found == {
        (h1, "ovs bridge br-vm", "different", "bonds.uplink.mode"),
        (h1, "port group web", "different", "ports.web1.tag"),
        (h2, "ovs bridge br-vm", "extra", "mirror_names"),
        (h2, "ovs bridge br-vm", "missing", "ipfix"),
    }, doc
    text, html = reports["text"].read_text(), reports["html"].read_text()
    for needle in ("balance-slb", "ports.web1.tag", "extra", f"{collector}:4739"):
        assert needle in text and needle in html, needle
    junit = reports["junit"].read_text()
    assert "bonds.uplink.mode" in junit and "mirror_names" in junit
    prom = reports["prometheus"].read_text()
    assert re.search(rf'vnetctl_drift_items{{[^}}]*host="{h2}"[^}}]*kind="extra"[^}}]*}} 1', prom)
    assert main(["run", MONITORED, "-i", str(pair.inventory_path), *extra]) == 0
    capsys.readouterr()
    code, doc = vnetctl(capsys, "drift", MONITORED, "-i", str(pair.inventory_path), *extra,
                        "--no-history")  # fmt: skip
    assert code == 0, doc
