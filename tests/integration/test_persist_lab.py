"""Boot persistence on the lab: real hosts write their systemd-networkd units (each under
a directory of its own, vnetctl_persist_root: the lab has no systemd, and its hosts share
this machine's filesystem), only when they change; `run --check --diff` shows a file's
diff and writes nothing; drift reports a removed file as `not persisted`; a resource
declared absent takes its files along; `persist: none` writes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.faults import finish, start_vnetctl
from tests.labhosts import inventory_with, own_lab
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, reset_hosts, start_sshd

pytestmark = pytest.mark.lab

PLAY = """\
- name: persisted
  hosts: all
  {persist}
  tasks:
    - name: VM bridge
      linux_bridge: {{name: br-p, ports: [eth1], mtu: 9000, stp: false, state: {state}}}
    - name: storage NIC
      link: {{name: eth2, mtu: 9000}}
    - name: storage NIC shaped
      traffic_shaping:
        name: eth2
        speed: 1000
        classes: [{{name: iscsi, reservation: 100, match: [{{protocol: tcp, dport: 3260}}]}}]
    - name: tenant segment
      vxlan_mesh:
        name: persisted
        vtep_interface: eth0
        segments: [{{vni: 300, bridge: br-vx300, mtu: 1450}}]
"""
NET = "etc/systemd/network"
FILES = {
    f"{NET}/10-vnetctl-br-p.netdev", f"{NET}/10-vnetctl-br-p.network",
    f"{NET}/10-vnetctl-br-p.network.d/10-vnetctl-bridge-br-p.conf",
    f"{NET}/10-vnetctl-eth1.network",
    f"{NET}/10-vnetctl-eth1.network.d/10-vnetctl-bridge-br-p.conf",
    f"{NET}/10-vnetctl-eth2.network",
    f"{NET}/10-vnetctl-eth2.network.d/10-vnetctl-link-eth2.conf",
    "etc/vnetctl/boot.d/10-vnetctl-shaping-eth2.tc",  # filters: the oneshot's
    "etc/systemd/system/vnetctl-reapply.service",
    f"{NET}/10-vnetctl-eth0.network",
    f"{NET}/10-vnetctl-eth0.network.d/10-vnetctl-mesh-persisted.conf",
    f"{NET}/10-vnetctl-vxlan300.netdev", f"{NET}/10-vnetctl-vxlan300.link",
    f"{NET}/10-vnetctl-vxlan300.network",
    f"{NET}/10-vnetctl-vxlan300.network.d/10-vnetctl-mesh-persisted.conf",
    f"{NET}/10-vnetctl-br-vx300.netdev", f"{NET}/10-vnetctl-br-vx300.network",
    f"{NET}/10-vnetctl-br-vx300.network.d/10-vnetctl-mesh-persisted.conf",
}  # fmt: skip


@pytest.fixture(scope="module")
def lab2(lab_required, tmp_path_factory):
    with own_lab("ps", tmp_path_factory.mktemp("persist"), hosts=2) as state:
        yield state


@pytest.fixture
def lab(lab2, tmp_path):
    """The lab as `lab up` made it, an inventory giving each host its own root, and a
    playbook writer: (lab, inventory, {host: root}, write(persist, state) -> path)."""
    for host in lab2.host_names:
        start_sshd(lab2.name, host)
    reset_hosts(lab2.name)
    roots = {name: tmp_path / "roots" / name for name in lab2.host_names}
    inventory = inventory_with(lab2, tmp_path / "inventory.yml",
                               lambda name: {"vnetctl_persist_root": str(roots[name])})  # fmt: skip

    def book(persist: str = "persist: networkd", state: str = "present") -> str:
        path = tmp_path / "book.yml"
        path.write_text(PLAY.format(persist=persist, state=state))
        return str(path)

    return lab2, str(inventory), roots, book


def files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}


def run(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--format", "json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def failed(doc: dict) -> list[str]:
    """What an assertion shows of a run that did not succeed: its failed results."""
    return [f"{r['host']} {r['task']}: {r['msg']}" for r in doc["results"]
            if r["status"] not in ("ok", "changed", "skipped")]  # fmt: skip


def test_units_are_written_once_shown_in_check_mode_and_drift_and_removed(lab, capsys):
    state, inventory, roots, book = lab
    h1, h2 = state.host_names
    code, doc = run(capsys, "run", book(), "-i", inventory)
    assert code == 0, failed(doc)
    for host in (h1, h2):
        written = files(roots[host])
        assert set(written) == FILES
        assert "[Network]\nBridge=br-p\n" in written[f"{NET}/10-vnetctl-eth1.network.d/"
                                                     "10-vnetctl-bridge-br-p.conf"]  # fmt: skip
        peer = state.host(h2 if host == h1 else h1).address
        assert f"Destination={peer}" in written[f"{NET}/10-vnetctl-vxlan300.network.d/"
                                                "10-vnetctl-mesh-persisted.conf"]  # fmt: skip
    assert {r["data"]["persist"]["mode"] for r in doc["results"] if r["index"] >= 0} == {
        "networkd"}  # fmt: skip
    wants = roots[h1] / "etc/systemd/system/multi-user.target.wants/vnetctl-reapply.service"
    assert os.readlink(wants) == "/etc/systemd/system/vnetctl-reapply.service"
    assert "filter add dev eth2 parent 1: protocol ip" in written[
        "etc/vnetctl/boot.d/10-vnetctl-shaping-eth2.tc"]  # fmt: skip

    # a re-apply writes nothing
    stamps = {p: p.stat().st_mtime_ns for p in roots[h1].rglob("*") if p.is_file()}
    code, doc = run(capsys, "run", book(), "-i", inventory)
    assert code == 0 and {r["status"] for r in doc["results"]} == {"ok"}, [
        (r["host"], r["task"], r["msg"], r["data"]) for r in doc["results"] if r["status"] != "ok"
    ]
    assert {p: p.stat().st_mtime_ns for p in roots[h1].rglob("*") if p.is_file()} == stamps

    # a file removed by hand: check mode shows its diff and writes nothing
    lost = f"{NET}/10-vnetctl-eth2.network.d/10-vnetctl-link-eth2.conf"
    (roots[h1] / lost).unlink()
    assert main(["run", book(), "-i", inventory, "--check", "--diff"]) == 0
    out = capsys.readouterr().out
    assert f"+++ /{lost}" in out and "+MTUBytes=9000" in out
    assert "boot configuration: networkd (declared)" in out
    assert not (roots[h1] / lost).exists()

    # drift: not persisted on h1 only, the running state in sync everywhere
    code, doc = run(capsys, "drift", book(), "-i", inventory, "--no-history")
    assert code == 2, doc
    found = [(h["host"], i["resource"], i["kind"], i["field"], i["actual"])
             for h in doc["hosts"] for i in h["items"]]  # fmt: skip
    assert found == [(h1, "link eth2", "not persisted", "/" + lost, None)]

    # a run writes it again; the bridge declared absent takes its files along
    assert run(capsys, "run", book(), "-i", inventory)[0] == 0
    assert set(files(roots[h1])) == FILES
    code, doc = run(capsys, "drift", book(), "-i", inventory, "--no-history")
    assert code == 0, doc
    assert run(capsys, "run", book(state="absent"), "-i", inventory)[0] == 0
    left = set(files(roots[h1]))
    assert left == {f for f in FILES if "br-p" not in f and "eth1" not in f}


def test_persist_none_writes_nothing(lab, capsys):
    state, inventory, roots, book = lab
    code, doc = run(capsys, "run", book(persist="persist: none"), "-i", inventory)
    assert code == 0, doc
    assert all(not root.exists() or files(root) == {} for root in roots.values())
    modes = {r["data"]["persist"]["mode"] for r in doc["results"] if "persist" in r["data"]}
    assert modes == {"none"}


def test_a_commit_confirmed_rollback_takes_the_files_back_too(lab, tmp_path):
    """The management NIC into a bridge with a wrong address, under a rollback timer: the
    host undoes it by itself, and the units the task wrote go with it; the other host's
    harmless bridge is confirmed, its units stay."""
    state, inventory, roots, _ = lab
    victim, other = state.host_names
    wrong = state.subnet.rsplit(".", 1)[0] + ".250/24"
    task = {"linux_bridge": {
        "name": "br-mgmt",
        "ports": f"{{{{ ['eth0'] if inventory_hostname == '{victim}' else ['eth1'] }}}}",
        "addresses": f"{{{{ ['{wrong}'] if inventory_hostname == '{victim}' else omit }}}}",
    }}  # fmt: skip
    path = tmp_path / "cut.yml"
    path.write_text(yaml.safe_dump([{"hosts": "all", "persist": "networkd", "tasks": [task]}]))
    code, out, err = finish(start_vnetctl("run", str(path), "-i", inventory, "--format", "json",
                                          "--confirm-timeout", "10s"), timeout=150)  # fmt: skip
    assert code == 2, err
    lines = [r for r in json.loads(out)["results"] if r["host"] == victim and r["index"] == -1]
    assert lines and lines[0]["msg"].startswith("rolled back"), lines
    links = json.loads(host_exec(state.name, victim, ["ip", "-j", "link"], check=True).stdout)
    assert not any(link["ifname"] == "br-mgmt" for link in links)
    assert files(roots[victim]) == {}
    assert f"{NET}/10-vnetctl-br-mgmt.netdev" in files(roots[other])


def test_the_oneshot_unit_and_its_enable_link_removed_are_drift_and_a_run_writes_them(lab, capsys):
    """Without them the shaping filters are lost at boot: drift says so (not persisted,
    the unit and the link), a run writes both again, the link as a link."""
    state, inventory, roots, book = lab
    h1 = state.host_names[0]
    assert run(capsys, "run", book(), "-i", inventory)[0] == 0
    unit = roots[h1] / "etc/systemd/system/vnetctl-reapply.service"
    wants = roots[h1] / "etc/systemd/system/multi-user.target.wants/vnetctl-reapply.service"
    written = unit.read_text()
    unit.unlink()
    wants.unlink()
    code, doc = run(capsys, "drift", book(), "-i", inventory, "--no-history")
    found = [(h["host"], i["resource"], i["kind"], i["field"], i["actual"])
             for h in doc["hosts"] for i in h["items"]]  # fmt: skip
    assert code == 2 and found == [
        (h1, "shaping eth2", "not persisted", "/" + str(wants.relative_to(roots[h1])), None),
        (h1, "shaping eth2", "not persisted", "/" + str(unit.relative_to(roots[h1])), None),
    ], doc
    assert run(capsys, "run", book(), "-i", inventory)[0] == 0
    assert unit.read_text() == written
    assert os.readlink(wants) == "/etc/systemd/system/vnetctl-reapply.service"
    assert run(capsys, "drift", book(), "-i", inventory, "--no-history")[0] == 0
    if shutil.which("systemd-analyze"):
        done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0 and done.stderr == "", done.stderr
