"""Security per port group as vSphere's distributed switch has it (issue 25), proven with
raw frames on both dataplanes: MAC address changes (a guest that changed its MAC gets
nothing for the new one), forged transmits, promiscuous mode (a load balancer's port
gets a copy of its segment's traffic, and nothing more with reject), each setting drift
when changed by hand, and repaired by a run.

One lab host; the guests are veth pairs in it (`vsN` sends and listens, `vsNp` is the
port): vs1 and vs2 in group `web`, vs3 the load balancer in group `lb`, vs4 in no group
(as an uplink). Every device made here is removed by name.

`pytest -s` prints what each guest received."""

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
MAC = {f"vs{i}": f"52:54:00:78:00:0{i}" for i in (1, 2, 3, 4)}
CHANGED = "52:54:00:78:00:99"  # the MAC vs1's guest changes to
UNKNOWN = "52:54:00:78:00:77"  # a MAC no one has
PLANES = ("linux", "ovs")


@pytest.fixture(scope="module")
def lab(lab_required, tmp_path_factory):
    with own_lab("vs", tmp_path_factory.mktemp("vs"), hosts=1, ovs=True) as state:
        add_guests(state, state.host_names[0], MAC)
        yield state


def sh(lab, host, *argv):
    done = host_exec(lab.name, host, list(argv))
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


@pytest.fixture(params=PLANES)
def plane(request, lab):
    yield request.param
    host = lab.host_names[0]
    if request.param == "linux":
        host_exec(lab.name, host, ["ip", "link", "del", "br-vs"])
        host_exec(lab.name, host, ["nft", "delete", "table", "bridge", "vnetctl"])
    else:
        host_exec(lab.name, host, ["ovs-vsctl", "--if-exists", "del-br", "br-vs"])
    host_exec(lab.name, host, ["nft", "delete", "table", "netdev", "vnetctl"])


def tasks(plane, web=None, lb=None):
    """br-vs with the four ports, web (vs1, vs2) and lb (vs3) with these settings."""
    module = "port_group" if plane == "linux" else "ovs_port_group"
    macs = "guests" if plane == "linux" else "addresses"
    if plane == "linux":
        bridge = {"linux_bridge": {"name": "br-vs", "ports": [g + "p" for g in MAC], "stp": False,
                                   "forward_delay": 0}}  # fmt: skip
    else:
        bridge = {"ovs_bridge": {"name": "br-vs", "datapath_type": "netdev",
                                 "ports": [{"name": "vs?p", "type": "vm"}]}}  # fmt: skip

    def group(name, guests, settings):
        declared = [{"port": g + "p", "mac": MAC[g]} for g in guests]
        args = {"name": name, "bridge": "br-vs", "ports": [g + "p" for g in guests],
                macs: declared, **(settings or {})}  # fmt: skip
        return {"name": "group " + name, module: args}

    return [dict(bridge, name="bridge"), group("web", ["vs1", "vs2"], web),
            group("lb", ["vs3"], lb)]  # fmt: skip


def run(capsys, lab, tmp_path, task_list, *extra, code=0):
    path = tmp_path / "play.yml"
    host = lab.host_names[0]
    path.write_text(yaml.safe_dump([{"name": "security", "hosts": host, "tasks": task_list}]))
    got = main(["run", str(path), "-i", str(lab.inventory_path), "--format", "json", *extra])
    doc = json.loads(capsys.readouterr().out)
    assert got == code, doc
    return doc


def frame(dev, tag, src=None, dst=None):
    return {"dev": dev, "tag": tag, "src": src or MAC[dev], "dst": dst, "kind": "raw"}


def send(lab, frames, listen):
    spec = {"send": frames, "listen": listen, "count": 2}
    got = json.loads(sh(lab, lab.host_names[0], "python3", "-c", FRAMES, json.dumps(spec)))
    print(f"\n{json.dumps(got)}", file=sys.stderr)  # stdout is the runs' JSON
    return got


# vs2 is learned, vs1's guest changes its MAC (and is learned there when its forged
# transmits are accepted), then vs2 sends to the changed MAC, to vs1's and to no one's
MAC_CHANGE = [
    frame("vs2", "hello"),
    frame("vs1", "from-changed", src=CHANGED),
    frame("vs2", "to-changed", dst=CHANGED),
    frame("vs2", "to-own", dst=MAC["vs1"]),
    frame("vs2", "to-unknown", dst=UNKNOWN),
]


@pytest.mark.parametrize("mac_changes", ["reject", "accept"])
def test_mac_changes_and_forged_transmits(lab, plane, capsys, tmp_path, mac_changes):
    """mac_changes reject: a guest that changed its MAC receives nothing for it (nor
    frames flooded for MACs no one has), only for its vNIC's MAC and broadcast; accept:
    it does. forged_transmits accept lets its frames from the new MAC out (vs4 hears
    them); reject (the default) does not."""
    web = {"forged_transmits": "accept", "mac_changes": mac_changes}
    run(capsys, lab, tmp_path, tasks(plane, web=web))
    got = send(lab, MAC_CHANGE, ["vs1", "vs4"])
    if mac_changes == "reject":
        assert got["vs1"] == ["hello", "to-own"]
    else:
        assert got["vs1"] == ["hello", "to-changed", "to-own", "to-unknown"]
    assert "from-changed" in got["vs4"]

    run(capsys, lab, tmp_path, tasks(plane))  # all rejected, the defaults
    got = send(lab, MAC_CHANGE, ["vs1", "vs4"])
    assert got["vs1"] == ["hello", "to-own"] and "from-changed" not in got["vs4"]


# vs2 is learned; vs1 sends to it from its own MAC and from a forged one; vs4 (an uplink)
# sends to vs1 and to vs2
SEGMENT = [
    frame("vs2", "hello"),
    frame("vs1", "uni", dst=MAC["vs2"]),
    frame("vs1", "forged", src=CHANGED, dst=MAC["vs2"]),
    frame("vs4", "from-uplink", dst=MAC["vs1"]),
    frame("vs4", "to-lb", dst=MAC["vs3"]),
]


def test_promiscuous_accept_copies_the_segment_to_the_port_and_reject_does_not(
    lab, plane, capsys, tmp_path
):
    """The load balancer's port (vs3) gets copies of unicast between the others, its
    own frames once, and no copy of what forged transmits dropped; reject: broadcast
    and its own only. The other guests are untouched."""
    run(capsys, lab, tmp_path, tasks(plane, lb={"promiscuous": "accept"}))
    got = send(lab, SEGMENT, ["vs2", "vs3"])
    assert got["vs3"] == ["from-uplink", "hello", "to-lb", "uni"]
    assert got["vs2"] == ["uni"]  # the forged frame was dropped at vs1's port

    run(capsys, lab, tmp_path, tasks(plane, lb={"promiscuous": "reject"}))
    got = send(lab, SEGMENT, ["vs2", "vs3"])
    assert got["vs3"] == ["hello", "to-lb"] and got["vs2"] == ["uni"]


def test_a_copy_removed_by_hand_is_drift_and_a_run_puts_it_back(lab, plane, capsys, tmp_path):
    lb = tasks(plane, lb={"promiscuous": "accept"})
    run(capsys, lab, tmp_path, lb)
    host = lab.host_names[0]
    sh(lab, host, "nft", "delete", "chain", "netdev", "vnetctl", "copy/vs3p/vs1p")
    assert send(lab, SEGMENT, ["vs3"])["vs3"] == ["from-uplink", "hello", "to-lb"]

    check = run(capsys, lab, tmp_path, lb, "--check")
    drift = [c for r in check["results"] for c in r.get("changes", [])]
    field = "copies" if plane == "linux" else "taps"
    assert [c["field"] for c in drift] == [field]
    missing = set(drift[0]["after"]) - set(drift[0]["before"])
    assert [line.split()[0] for line in missing] == ["copy/vs3p/vs1p"]

    run(capsys, lab, tmp_path, lb)
    assert send(lab, SEGMENT, ["vs3"])["vs3"] == ["from-uplink", "hello", "to-lb", "uni"]
    again = run(capsys, lab, tmp_path, lb, "--check")
    assert {r["status"] for r in again["results"]} == {"ok"}


def test_absent_removes_the_groups_filters_and_copies(lab, plane, capsys, tmp_path):
    run(capsys, lab, tmp_path, tasks(plane, lb={"promiscuous": "accept"}))
    gone = tasks(plane)
    for task in gone[1:]:
        args = next(v for k, v in task.items() if k.endswith("port_group"))
        args["state"] = "absent"
    run(capsys, lab, tmp_path, gone)
    host = lab.host_names[0]
    left = json.loads(sh(lab, host, "nft", "-j", "list", "ruleset", "netdev"))["nftables"]
    assert [i for i in left if "chain" in i or "rule" in i] == []
    got = send(lab, MAC_CHANGE, ["vs1", "vs3"])
    assert "to-changed" in got["vs1"]
    assert got["vs3"] == ["from-changed", "hello", "to-own", "to-unknown"]  # floods only
