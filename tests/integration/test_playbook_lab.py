"""Loops, roles and rolling plays on a 5-host lab: each host gets exactly the bridges of
its own host_vars list; a rolling mesh MTU change whose health gate fails on its first
batch leaves the other hosts untouched; one role serves two playbooks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.labhosts import own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, reset_hosts, start_sshd

pytestmark = pytest.mark.lab

PLAYBOOKS = Path(__file__).parents[2] / "playbooks"
BRIDGES, ROLLING = str(PLAYBOOKS / "vm-bridges.yml"), str(PLAYBOOKS / "rolling-mtu.yml")
MESH = str(PLAYBOOKS / "vxlan-mesh.yml")
# unique per test process: two test runs on one machine must not share a lab
OWN_BRIDGES = {  # host index -> its vm_bridges in host_vars (None: no list, the default)
    0: [{"name": "br-a", "ports": ["eth1"]}, {"name": "br-b"}],
    1: [{"name": "br-c", "ports": ["eth1", "eth2"], "mtu": 9000}],
    2: [{"name": "br-d"}, {"name": "br-e", "ports": ["eth2"]}, {"name": "br-f"}],
    3: [],
    4: None,
}


@pytest.fixture(scope="module")
def lab5(lab_required, tmp_path_factory):
    with own_lab("pb", tmp_path_factory.mktemp("pb"), hosts=5) as state:
        yield state


@pytest.fixture
def lab(lab5):
    for host in lab5.host_names:
        start_sshd(lab5.name, host)
        host_exec(lab5.name, host, ["sh", "-c", "for n in $(ip netns list | cut -d' ' -f1); "
                                    "do ip netns del $n; done"])  # fmt: skip
    reset_hosts(lab5.name)
    return lab5


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def links(lab, host: str) -> dict[str, dict]:
    out = host_exec(lab.name, host, ["ip", "-j", "-d", "link"]).stdout
    return {link["ifname"]: link for link in json.loads(out)}


def bridges(lab, host: str) -> dict[str, tuple[list[str], int]]:
    """Each bridge of the host: (its ports, its MTU)."""
    found = links(lab, host)
    ports = {}
    for name, link in found.items():
        if link.get("master"):
            ports.setdefault(link["master"], []).append(name)
    return {name: (sorted(ports.get(name, [])), link["mtu"]) for name, link in found.items()
            if link.get("linkinfo", {}).get("info_kind") == "bridge"}  # fmt: skip


def diff_blocks(out: str) -> dict[tuple[str, str], list[str]]:
    """(host, task line) -> the --diff lines under it."""
    blocks: dict[tuple[str, str], list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("changed: ["):
            host, _, task = line[len("changed: [") :].partition("] ")
            current = blocks.setdefault((host, task), [])
        elif line.startswith("    ") and current is not None:
            current.append(line.strip())
        else:
            current = None
    return blocks


def test_each_host_gets_exactly_its_own_bridges_from_its_host_vars_list(lab, capsys, tmp_path):
    inventory = tmp_path / "lab.yml"
    shutil.copy(lab.inventory_path, inventory)
    for index, own in OWN_BRIDGES.items():
        if own is not None:
            path = tmp_path / "host_vars" / f"{lab.host_names[index]}.yml"
            path.parent.mkdir(exist_ok=True)
            path.write_text(yaml.safe_dump({"vm_bridges": own}))
    wanted = {
        lab.host_names[i]: {
            b["name"]: (sorted(b.get("ports", [])), b.get("mtu", 1500))
            for b in (own if own is not None else [{"name": "br-vm", "ports": ["eth1"]}])
        }
        for i, own in OWN_BRIDGES.items()
    }

    code, out, err = cli(capsys, "run", BRIDGES, "-i", str(inventory), "--check", "--diff")
    assert code == 0, out + err
    shown = diff_blocks(out)
    for host, own in wanted.items():
        for name, (ports, mtu) in own.items():
            fields = shown[(host, f"VM bridges (item={name}) - would be created")]
            assert "state: absent -> present" in fields
            assert f"ports: (none) -> [{', '.join(ports)}]" in fields
            assert (f"mtu: (none) -> {mtu}" in fields) is (mtu != 1500)
    assert len(shown) == sum(len(own) for own in wanted.values())  # no item twice
    h3 = lab.host_names[2]

    code, out, err = cli(capsys, "run", BRIDGES, "-i", str(inventory), "--format", "json")
    assert code == 0, out + err
    results = json.loads(out)["results"]
    for host, own in wanted.items():
        mine = [r for r in results if r["host"] == host]
        assert [r["resource"] for r in mine] == [f"bridge {name}" for name in own]
        assert [r["task"] for r in mine] == [f"VM bridges (item={name})" for name in own]
        assert bridges(lab, host) == own, host  # exactly its own: nothing of the others'

    code, out, _ = cli(capsys, "run", BRIDGES, "-i", str(inventory), "--format", "json")
    assert code == 0 and {r["status"] for r in json.loads(out)["results"]} == {"ok"}

    h2 = lab.host_names[1]
    host_exec(lab.name, h3, ["ip", "link", "del", "br-e"], check=True)
    host_exec(lab.name, h2, ["ip", "link", "set", "br-c", "mtu", "1400"], check=True)
    argv = ["drift", BRIDGES, "-i", str(inventory), "--no-history", "--format", "json"]
    code, out, err = cli(capsys, *argv)
    assert code == 2, out + err
    drifted = {
        h["host"]: {(i["resource"], i["kind"], i["field"]) for i in h["items"]}
        for h in json.loads(out)["hosts"]
        if h["state"] != "in_sync"
    }
    assert drifted == {  # each item its own resource: the others of the loop in sync
        h2: {("bridge br-c", "different", "mtu")},
        h3: {("bridge br-e", "missing", None)},
    }


def probes_left(lab) -> dict[str, str]:
    found = {}
    for host in lab.host_names:
        out = host_exec(lab.name, host, ["ip", "netns", "list"]).stdout.strip()
        if out:
            found[host] = out
    return found


def mtus(lab, host: str) -> dict[str, int]:
    found = links(lab, host)
    return {n: found[n]["mtu"] for n in ("eth0", "br-vx100", "vxlan100", "br-vx200")}


def test_a_rolling_mesh_change_stops_at_the_gate_of_its_first_batch(lab, capsys):
    """Under confirm_timeout the batch is confirmed only once its gates passed: the
    failed mesh gate has its host roll the play back by itself, and the run says so,
    once, with the hosts it never started."""
    inv = str(lab.inventory_path)
    first, rest = lab.host_names[0], lab.host_names[1:]
    code, out, err = cli(capsys, "run", MESH, "-i", inv)
    assert code == 0, out + err
    before = {h: mtus(lab, h) for h in lab.host_names}
    jumbo = ["-e", "underlay_mtu=9000", "-e", "overlay_mtu=8950"]

    code, out, err = cli(capsys, "run", ROLLING, "-i", inv, *jumbo)
    assert code == 2, out + err
    assert f"BATCH 1/3 of mesh MTU, rolling: {first}\n" in out
    assert "confirmed over a new connection" not in out  # the gate failed first
    assert "BATCH 2/3" not in out
    reason = (
        f"health gate mesh_check failed after batch 1 of 3 of play 'mesh MTU, rolling' on {first}"
    )
    assert (f"failed: [{first}] (confirm) - rolled back: {reason}; the host's state equals "
            "the state before the play\n") in out  # fmt: skip
    assert (f"rollout stopped: {reason}; rolled back by their hosts: {first}; not started: "
            f"4 hosts: {rest[0]} to {rest[-1]}\n") in out  # fmt: skip
    assert out.count("rollout stopped") == 1 and "not started: [" not in out
    others = ", ".join(rest)
    gate = f"failed: [{first}] (health gate mesh_check) - VNI 100, 200 at MTU 8950: MTU "
    assert f"{gate}(small frames pass, full-size ones do not) to {others}; from {others}\n" in out
    assert {h: mtus(lab, h) for h in lab.host_names} == before  # rolled back; untouched
    assert all(m["eth0"] == 1500 and m["vxlan100"] == 1450 for m in before.values())
    assert probes_left(lab) == {}

    code, out, _ = cli(capsys, "run", ROLLING, "-i", inv, *jumbo, "--format", "json")
    doc = json.loads(out)
    assert code == 2 and doc["exit_code"] == 2
    assert doc["rollout_stopped"] == {"reason": reason, "gate": True, "rolled_back": [first],
                                      "changed": [], "not_started": rest}  # fmt: skip
    for host in rest:
        assert [(r["task"], r["status"]) for r in doc["results"] if r["host"] == host] == [
            ("(rollout)", "not_started")
        ]
    assert {h: mtus(lab, h) for h in lab.host_names} == before

    code, out, err = cli(capsys, "run", ROLLING, "-i", inv)  # the lab's own values: healthy
    assert code == 0, out + err
    assert out.count("health gates passed after batch") == 3
    assert out.count("confirmed over a new connection") == len(lab.host_names)
    assert {h: mtus(lab, h)["eth0"] for h in lab.host_names} == dict.fromkeys(lab.host_names, 1500)
    assert probes_left(lab) == {}


ROLE_TASKS = """\
- name: uplink MTU
  link:
    name: "{{ uplink }}"
    mtu: "{{ uplink_mtu }}"
"""


def test_one_role_serves_two_playbooks(lab, capsys, tmp_path):
    """`uplink` is beside the first playbook (roles/) and found by the second, elsewhere,
    through --roles-path; each uses it with its own variables."""
    role = tmp_path / "site" / "roles" / "uplink"
    (role / "tasks").mkdir(parents=True)
    (role / "defaults").mkdir()
    (role / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (role / "defaults" / "main.yml").write_text("uplink: eth1\nuplink_mtu: 9000\n")
    h1, h2, h3, h4, h5 = lab.host_names
    (tmp_path / "site" / "kvm.yml").write_text(f"- hosts: {h1},{h2}\n  roles: [uplink]\n")
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "storage.yml").write_text(
        f"- hosts: {h3}\n  roles:\n    - role: uplink\n"
        "      vars: {uplink: eth2, uplink_mtu: 4000}\n"
    )
    inv, roles = str(lab.inventory_path), str(tmp_path / "site" / "roles")
    books = [[str(tmp_path / "site" / "kvm.yml")],
             [str(tmp_path / "storage" / "storage.yml"), "--roles-path", roles]]  # fmt: skip
    for book in books:
        code, out, err = cli(capsys, "run", *book, "-i", inv)
        assert code == 0, out + err
        assert "changed: [" in out and "uplink : uplink MTU" in out
    assert [links(lab, h)["eth1"]["mtu"] for h in (h1, h2)] == [9000, 9000]
    assert (links(lab, h3)["eth2"]["mtu"], links(lab, h3)["eth1"]["mtu"]) == (4000, 1500)
    assert {links(lab, h)["eth1"]["mtu"] for h in (h4, h5)} == {1500}
    for book in books:
        code, out, err = cli(capsys, "drift", *book, "-i", inv, "--no-history")
        assert code == 0, out + err
