"""NIOC classes on an Open vSwitch bond (issue 26), on real OVS (userspace datapath):
playbooks/nioc-ovs.yml on h1 (br-nioc, bond `uplink` of eth1+eth2 in balance-slb, the
host's ports mgmt0, vmotion0 and storage0 on VLANs 10, 20 and 30, `traffic_shaping` with
`ovs: true`), h1 and h2 cabled back to back; h2 a plain OVS bridge with eth1 and eth2 as
trunks and a namespace per VLAN. Frames OVS sends out a member veth pass that veth's
egress qdisc tagged: each class counts exactly its VLAN's frames, whichever member slb
chose; a limited class measures its limit with iperf3 through OVS; drift is clean, a hand
change on one member is drift and one run repairs it; ovs-vswitchd restarting leaves the
members' qdiscs (the port's linux-noop QoS), and deletes them without it."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.labhosts import own_lab, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec
from vnetctl.lab.lab import in_host_argv
from vnetctl.lab.ovs import START_SCRIPT, wire_back_to_back

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
PLAYBOOK = str(ROOT / "playbooks" / "nioc-ovs.yml")
FRAMES = (Path(__file__).parent / "frames.py").read_text()
VARS = json.dumps({"member_speed": 100, "ovs_datapath": "netdev", "management_vlan": 10,
                   "migration_vlan": 20, "storage_vlan": 30})  # fmt: skip
VLANS = {10: "mgmt0", 20: "vmotion0", 30: "storage0"}  # h1's port on each VLAN
CLASS_IDS = {"management": "1:a4ff", "migration": "1:e092", "storage": "1:3c84"}
COUNT = 7  # frames per VLAN; each class must count exactly these
IPERF_TIMEOUT = 20
TARGET = 30 * 1448 / 1518  # limit 30 Mbit/s of tagged frames, as TCP payload (iperf3)


def sh(lab, host: str, script: str) -> str:
    done = host_exec(lab.name, host, ["sh", "-c", script])
    assert done.returncode == 0, f"{host}: {script}: {done.stderr}"
    return done.stdout


def far_end(lab, host: str) -> None:
    """h2: br0 with eth1 and eth2 as trunks (h1's balance-slb takes a broadcast on its
    active member only: no loop) and a namespace vmV on each VLAN V, at 192.168.V.2."""
    script = [
        "ovs-vsctl add-br br0 -- set bridge br0 datapath_type=netdev",
        "ovs-vsctl add-port br0 eth1 trunks=10,20,30 -- add-port br0 eth2 trunks=10,20,30",
    ]
    for vid in VLANS:
        script += [f"ip netns add vm{vid}",
                   f"ip link add p{vid} type veth peer name e0 netns vm{vid}",
                   f"ethtool -K p{vid} tx off >/dev/null",
                   f"ip netns exec vm{vid} ethtool -K e0 tx off >/dev/null",
                   f"ip link set p{vid} up", f"ip -n vm{vid} link set e0 up",
                   f"ip -n vm{vid} addr add 192.168.{vid}.2/24 dev e0",
                   f"ovs-vsctl add-port br0 p{vid} tag={vid}"]  # fmt: skip
    sh(lab, host, "\n".join(["set -e", *script]))


def vnetctl(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def pair(lab_required, tmp_path_factory):
    with own_lab("sq", tmp_path_factory.mktemp("sq"), hosts=2, ovs=True) as state:
        wire_back_to_back(state, *state.host_names)
        h1, h2 = state.host_names
        # h1's own ports send no IPv6 (ND, MLD) that the classes would count too
        sh(state, h1, "sysctl -qw net.ipv6.conf.default.disable_ipv6=1")
        far_end(state, h2)
        run = ["run", PLAYBOOK, "-i", str(state.inventory_path), "-l", h1, "-e", VARS]
        assert main(run) == 0
        yield state


def packets(lab, host: str) -> dict[str, int]:
    """{classid: packets} summed over the bond's members."""
    out: dict[str, int] = {}
    for member in ("eth1", "eth2"):
        text = sh(lab, host, f"tc -s class show dev {member}")
        for cid, n in re.findall(r"class htb (\S+) .*?\n\s*Sent \d+ bytes (\d+) pkt", text):
            out[cid] = out.get(cid, 0) + int(n)
    return out


def drift(capsys, lab, host: str, tmp_path: Path) -> tuple[int, dict]:
    history = ["--history", str(tmp_path / "h.sqlite")]
    return vnetctl(capsys, "drift", PLAYBOOK, "-i", str(lab.inventory_path), "-l", host,
                   "-e", VARS, *history)  # fmt: skip


def shaping_result(capsys, lab, host: str) -> dict:
    code, doc = vnetctl(capsys, "run", PLAYBOOK, "-i", str(lab.inventory_path), "-l", host,
                        "-e", VARS, "--tags", "shaping")  # fmt: skip
    assert code == 0, doc
    (result,) = doc["results"]
    return result


def test_each_vlan_out_the_bond_is_counted_by_its_class(pair):
    h1 = pair.host_names[0]
    for vid, port in VLANS.items():
        before = packets(pair, h1)
        spec = {"send": [{"dev": port, "src": f"02:00:00:26:00:{vid:02x}", "tag": str(vid),
                          "vlans": []}], "listen": [], "count": COUNT}  # fmt: skip
        done = host_exec(pair.name, h1, ["python3", "-c", FRAMES, json.dumps(spec)])
        assert done.returncode == 0, done.stderr
        after = packets(pair, h1)
        sent = {cid: after[cid] - before.get(cid, 0) for cid in after}
        mine = {"10": "management", "20": "migration", "30": "storage"}[str(vid)]
        assert sent[CLASS_IDS[mine]] == COUNT, (vid, sent)
        others = [CLASS_IDS[c] for c in CLASS_IDS if c != mine]  # 1:2 takes what else h1 sends
        assert all(sent.get(cid, 0) == 0 for cid in others), (vid, sent)


def test_a_limited_class_holds_its_limit_through_ovs(pair):
    h1, h2 = pair.host_names
    argv = ["ip", "netns", "exec", "vm20", "timeout", str(IPERF_TIMEOUT), "iperf3", "-s", "-1"]
    server = in_host_argv(pair, pair.host(h2), argv)
    with subprocess.Popen(server, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as srv:
        wait_until(lambda: ":5201 " in sh(pair, h2, "ip netns exec vm20 ss -Hltn"), 10,
                   "iperf3 listening on h2's VLAN 20")  # fmt: skip
        out = sh(pair, h1, f"timeout {IPERF_TIMEOUT} iperf3 -c 192.168.20.2 -B 192.168.20.1"
                           " -t 3 -O 1 -J")  # fmt: skip
        srv.wait(timeout=IPERF_TIMEOUT)
    rate = json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e6
    print(f"\nMEASURED migration limit 30 through OVS: {rate:.2f} Mbit/s (expected "
          f"{TARGET:.1f}), load average {os.getloadavg()}")  # fmt: skip
    assert abs(rate - TARGET) <= 0.10 * TARGET, rate


def test_drift_is_clean_and_a_hand_change_on_one_member_is_drift_one_run_repairs(
    pair, capsys, tmp_path
):
    h1 = pair.host_names[0]
    code, doc = drift(capsys, pair, h1, tmp_path)
    assert code == 0, doc
    shown = sh(pair, h1, "tc -d class show dev eth2 classid 1:e092")
    kept = {k: re.search(rf" {k} (\S+)", shown).group(1) for k in ("rate", "burst", "cburst")}
    sh(pair, h1, "tc class change dev eth2 parent 1:1 classid 1:e092 htb ceil 50mbit prio 0"
                 " quantum 819200 " + " ".join(f"{k} {v}" for k, v in kept.items()))  # fmt: skip
    code, doc = drift(capsys, pair, h1, tmp_path)
    found = [(i["field"], i["declared"], i["actual"]) for h in doc["hosts"] for i in h["items"]]
    assert code != 0 and found == [("members.eth2.classes.migration.limit", 30, 50)], doc
    result = shaping_result(capsys, pair, h1)
    (command,) = result["commands"]  # one class change on that member
    assert command.startswith("tc class change dev eth2 parent 1:1 classid 1:e092 htb ")
    assert " ceil 30mbit " in command, command
    assert drift(capsys, pair, h1, tmp_path)[0] == 0


def restart_vswitchd(lab, host: str) -> None:
    pid = sh(lab, host, "cat /run/openvswitch/ovs-vswitchd.pid").strip()
    sh(lab, host, "ovs-appctl -t ovs-vswitchd exit")
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10, "ovs-vswitchd to exit")
    sh(lab, host, START_SCRIPT)
    bond = ["ovs-appctl", "-t", "ovs-vswitchd", "bond/show", "uplink"]  # after its first pass
    wait_until(lambda: host_exec(lab.name, host, bond).returncode == 0, 10, "the bond back")


def roots(lab, host: str) -> list[str]:
    return [sh(lab, host, f"tc qdisc show dev {m} root").split(" ")[1] for m in ("eth1", "eth2")]


def test_ovs_restarting_leaves_the_members_qdiscs_and_would_delete_them_without_noop(pair, capsys):
    h1 = pair.host_names[0]
    assert sh(pair, h1, "ovs-vsctl get qos uplink type").strip().strip('"') == "linux-noop"
    restart_vswitchd(pair, h1)
    assert roots(pair, h1) == ["htb", "htb"]

    sh(pair, h1, "ovs-vsctl -- destroy qos uplink -- clear port uplink qos")
    restart_vswitchd(pair, h1)
    wait_until(lambda: roots(pair, h1) == ["noqueue", "noqueue"], 10,
               "OVS to delete the members' HTB roots (the evidence: no QoS row)")  # fmt: skip
    result = shaping_result(capsys, pair, h1)  # one run puts both back
    assert result["commands"][:2] == ["ovs-vsctl --id=@vnetctl_noop create qos "
                                      "type=linux-noop",
                                      "ovs-vsctl set port uplink qos=@vnetctl_noop"]  # fmt: skip
    assert roots(pair, h1) == ["htb", "htb"]


def iperf_pair(lab, h1: str, h2: str) -> list[float]:
    """Mbit/s of TCP payload of two flows on VLAN 20 at once: from h1's vmotion0 and
    from namespace mig2 to h2's vm20, to two one-test servers."""
    argv = ["ip", "netns", "exec", "vm20", "timeout", str(IPERF_TIMEOUT), "iperf3", "-s", "-1"]
    servers = [in_host_argv(lab, lab.host(h2), [*argv, "-p", str(p)]) for p in (5201, 5202)]
    clients = [["timeout", str(IPERF_TIMEOUT), "iperf3", "-c", "192.168.20.2", "-B",
                "192.168.20.1", "-p", "5201", "-t", "4", "-O", "1", "-J"],
               ["ip", "netns", "exec", "mig2", "timeout", str(IPERF_TIMEOUT), "iperf3", "-c",
                "192.168.20.2", "-p", "5202", "-t", "4", "-O", "1", "-J"]]  # fmt: skip
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    with subprocess.Popen(servers[0], **quiet) as one, subprocess.Popen(servers[1], **quiet) as two:
        wait_until(lambda: all(f":{p} " in sh(lab, h2, "ip netns exec vm20 ss -Hltn")
                               for p in (5201, 5202)), 10, "iperf3 servers on h2")  # fmt: skip
        argvs = [in_host_argv(lab, lab.host(h1), c) for c in clients]
        with subprocess.Popen(argvs[0], stdout=subprocess.PIPE, text=True) as a, \
                subprocess.Popen(argvs[1], stdout=subprocess.PIPE, text=True) as b:  # fmt: skip
            outputs = [p.communicate(timeout=IPERF_TIMEOUT + 5)[0] for p in (a, b)]
        one.wait(timeout=IPERF_TIMEOUT)
        two.wait(timeout=IPERF_TIMEOUT)
    return [json.loads(o)["end"]["sum_received"]["bits_per_second"] / 1e6 for o in outputs]


def test_each_member_holds_the_limit_at_its_own_speed_two_flows_twice_the_limit(pair):
    """balance-slb puts guests' MACs on members; NIOC's limit is per adapter: two
    migration sources on different members get the limit each."""
    h1, h2 = pair.host_names
    mac = sh(pair, h1, "cat /sys/class/net/vmotion0/address").strip()

    def hash_of(address: str) -> str:  # the bond's hash of a MAC on VLAN 20
        return sh(pair, h1, f"ovs-appctl bond/hash {address} 20").strip()

    other = next(m for m in (f"02:00:00:26:20:{i:02x}" for i in range(1, 64))
                 if hash_of(m) != hash_of(mac))  # fmt: skip
    sh(pair, h1, "\n".join(["set -e", "ip netns add mig2",
                            "ip link add m2 type veth peer name e0 netns mig2",
                            f"ip -n mig2 link set e0 address {other}",
                            "ethtool -K m2 tx off >/dev/null",
                            "ip netns exec mig2 ethtool -K e0 tx off >/dev/null",
                            "ip link set m2 up", "ip -n mig2 link set e0 up",
                            "ip -n mig2 addr add 192.168.20.3/24 dev e0",
                            "ovs-vsctl add-port br-nioc m2 tag=20",
                            f"ovs-appctl bond/migrate uplink {hash_of(mac)} eth1",
                            f"ovs-appctl bond/migrate uplink {hash_of(other)} eth2"]))  # fmt: skip
    try:
        before = [class_bytes(pair, h1, m) for m in ("eth1", "eth2")]
        rates = iperf_pair(pair, h1, h2)
        sent = [class_bytes(pair, h1, m) - b for m, b in zip(("eth1", "eth2"), before, strict=True)]
    finally:
        sh(pair, h1, "ovs-vsctl --if-exists del-port br-nioc m2; ip netns del mig2")
    print(f"\nMEASURED two migration flows, one per member, limit 30 each: "
          f"{rates[0]:.2f} + {rates[1]:.2f} = {sum(rates):.2f} Mbit/s (expected {TARGET:.1f}"
          f" each), load average {os.getloadavg()}")  # fmt: skip
    # behaviour, not a benchmark: each member still holds the limit, and together they
    # pass more than one limit's worth (a shared limit would cap the sum at ~28.6); the
    # flows' exact rates depend on the CPU the userspace datapaths get (seen: 15.5-28.6
    # beside 25.5-28.6 on the 2 shared cores, old and new code alike)
    assert all(r <= 1.10 * TARGET for r in rates), rates
    assert sum(rates) > 1.3 * TARGET, rates
    assert min(sent) > 5_000_000, sent  # both members carried the class (4 s at ~30 Mbit/s)


def class_bytes(lab, host: str, member: str) -> int:
    text = sh(lab, host, f"tc -s class show dev {member} classid {CLASS_IDS['migration']}")
    return int(re.search(r"Sent (\d+) bytes", text).group(1))
