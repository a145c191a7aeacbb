"""Issue 31, nothing lost or leaked, on real hosts: a drift check on a full disk keeps
its reports, a scoped IPv6 value never reaches nft, facts and snapshots hide secrets,
and a host cut off mid-play is never said not to have started a task it ran."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.integration.faults import finish, start_vnetctl, vnetctl_pids, wait_all_started
from tests.labhosts import wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec, reset_hosts
from vnetctl.secrets import new_run

pytestmark = pytest.mark.lab

DRIFT_BOOK = str(Path(__file__).parent / "playbooks" / "drift.yml")
SCOPED = "fd00::1%x } ; flush ruleset ; add table ip evil"
PASSWORD = "S3cretPassw0rd"  # a valid interface name: hosts name it back


def sh(lab, host: str, script: str) -> str:
    done = host_exec(lab.name, host, ["sh", "-c", script])
    assert done.returncode == 0, f"{host}: {script}: {done.stderr}"
    return done.stdout


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MiB filesystem of the test's own (tmpfs), unmounted at the end."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def fill(mount: Path) -> None:
    """Every free block taken."""
    with open(mount / "filler", "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass


def test_a_drift_check_on_a_full_disk_writes_its_reports_and_says_so(
    lab3, fresh_hosts, full_disk, tmp_path, capsys
):
    inv = str(lab3.inventory_path)
    assert main(["run", DRIFT_BOOK, "-i", inv, "--format", "json"]) == 0
    db = full_disk / "history.sqlite"
    sh(lab3, lab3.host_names[0], "ip link set dev eth2 mtu 1500")  # drift: exit 2
    report = tmp_path / "drift.json"
    check = ["drift", DRIFT_BOOK, "-i", inv, "--history", str(db), f"--report=json={report}"]
    assert main(check) == 2
    capsys.readouterr()
    fill(full_disk)
    report.unlink()
    assert main(check) == 2  # the drift's code, not an error
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "not recorded" in lines[0] and "Traceback" not in err, err
    doc = json.loads(report.read_text())
    assert doc["summary"]["exit_code"] == 2 and doc["summary"]["items"]["different"] == 1
    assert "eth2" in out


@pytest.fixture
def guarded_port(lab3, fresh_hosts):
    """Host 1 with a guest-like veth pair (vm1, its port vm1p) and a table of someone
    else's in nftables, which nothing of vnetctl's may touch."""
    host = lab3.host_names[0]
    sh(lab3, host, "ip link add vm1 type veth peer name vm1p && ip link set vm1p up")
    sh(lab3, host, "nft add table inet keepme")
    yield host
    reset_hosts(lab3.name, [host])


def test_a_scoped_ipv6_address_is_refused_on_the_host_and_reaches_no_tool(
    lab3, guarded_port, tmp_path, capsys
):
    tasks = [
        {"name": "bridge", "linux_bridge": {"name": "br-pg", "ports": ["vm1p"], "stp": False}},
        {"name": "guarded", "port_group": {
            "name": "web", "bridge": "br-pg", "ports": ["vm1p"], "port_security": True,
            "guests": [{"port": "vm1p", "mac": "52:54:00:77:00:01", "ips": [SCOPED]}]}},
    ]  # fmt: skip
    book = tmp_path / "pg.yml"
    book.write_text(yaml.safe_dump([{"hosts": guarded_port, "tasks": tasks}]))
    code = main(["run", str(book), "-i", str(lab3.inventory_path), "--format", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2, doc
    failed = next(r for r in doc["results"] if r["status"] == "failed")
    assert failed["task"] == "guarded"
    # refused by the address rule before any step, not by nft's own refusal of '%'
    assert "is not an IP address" in failed["msg"] and "nft" not in failed["msg"], failed["msg"]
    tables = sh(lab3, guarded_port, "nft list tables")
    assert "table inet keepme" in tables and "evil" not in tables, tables


@pytest.fixture
def secret_inventory(lab3, fresh_hosts, tmp_path):
    """The inventory with a password; on the hosts, by hand, a bridge named like it and
    an alias holding it: what the hosts report back."""
    data = yaml.safe_load(lab3.inventory_path.read_text())
    data["all"]["vars"]["vault_password"] = PASSWORD
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(data))
    h1, h2 = lab3.host_names[:2]
    sh(lab3, h1, f"ip link add {PASSWORD} type bridge")
    sh(lab3, h2, f"ip link set dev eth2 alias 'uplink {PASSWORD}'")
    new_run()  # a command of its own, as from a shell: no secret read before it
    try:
        yield str(tmp_path / "inv.yml")
    finally:
        new_run()
        reset_hosts(lab3.name)


def test_facts_and_snapshot_hide_secret_values(lab3, secret_inventory, tmp_path, capsys):
    """Neither command renders a task, so no secret was ever read: every secret
    variable is registered before a command runs."""
    assert main(["facts", "-i", secret_inventory]) == 0
    out, err = capsys.readouterr()
    hosts = json.loads(out)["hosts"]
    assert "***" in [link["ifname"] for link in hosts[lab3.host_names[0]]["links"]]
    assert main(["snapshot", "-i", secret_inventory, "-o", str(tmp_path / "snap.yml")]) == 0
    snapshot = (tmp_path / "snap.yml").read_text()
    assert "linux_bridge: {name: '***'" in snapshot or "name: '***'" in snapshot, snapshot
    text = out + err + snapshot + "".join(capsys.readouterr())
    assert PASSWORD not in text


def test_a_host_cut_off_mid_play_never_reports_not_started_for_a_task_it_ran(
    lab3, fresh_hosts, tmp_path
):
    """The victim's cable pulled while it runs a long play: no EOF reaches it, so it
    goes on as far as the controller's acknowledgements let it. Each task sets its own
    MTU, so the MTU it ends with is the last task it ran."""
    tasks = 300
    book = tmp_path / "numbered.yml"
    numbered = [{"name": f"mtu {i}", "link": {"name": "eth1", "mtu": 1300 + i}}
                for i in range(tasks)]  # fmt: skip
    book.write_text(yaml.safe_dump([{"name": "numbered", "hosts": "all", "tasks": numbered}]))
    victim = lab3.hosts[1]
    cable = f"vnl{lab3.name}-{victim.index}e0"
    proc = start_vnetctl("run", str(book), "-i", str(lab3.inventory_path), "--format", "json")
    wait_all_started(lab3)
    subprocess.run(["ip", "link", "set", "dev", cable, "down"], check=True)
    try:
        code, out, err = finish(proc, timeout=120)
    finally:
        subprocess.run(["ip", "link", "set", "dev", cable, "up"], check=True)
    assert code == 3, err
    wait_until(lambda: not vnetctl_pids(lab3, victim.name), 60, "the victim's play ended")
    link = host_exec(lab3.name, victim.name, ["ip", "-j", "link", "show", "eth1"], check=True)
    ran_to = json.loads(link.stdout)[0]["mtu"] - 1300
    status = {r["index"]: r["status"] for r in json.loads(out)["results"]
              if r["host"] == victim.name and r["index"] >= 0}  # fmt: skip
    assert len(status) == tasks
    lied = [i for i in range(ran_to + 1) if status[i] == "not_started"]
    assert lied == [], (ran_to, lied)
    assert "not_started" in status.values()  # the rest is said, and is true
    assert main(["run", str(book), "-i", str(lab3.inventory_path), "--format", "json"]) == 0
