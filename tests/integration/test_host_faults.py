"""What vnetctl writes on a host, and commit confirmed, when things go wrong there (issue
31): a /run/lock that is full or fills up, a journal that does not check out, boot
configuration files that do not fit, a controller killed while a host waits for its
confirmation. A full filesystem is a small tmpfs of the test's own, mounted in the lab
host's private mount namespace (its sshd's: every session sees it) and filled to the
space the case needs."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.integration.faults import finish, mtu, start_vnetctl, vnetctl_pids
from tests.labhosts import wait_until
from vnetctl.hostside.confirm_files import RESERVE
from vnetctl.lab import host_exec

pytestmark = pytest.mark.lab

KIB = 1024


def sh(lab, host: str, script: str) -> str:
    return host_exec(lab.name, host, ["sh", "-c", script], check=True).stdout


@contextmanager
def small_fs(lab, host: str, size: int, free: int, where: str = "/run/lock", inodes: str = ""):
    """`where` on `host` a tmpfs of `size` KiB with `free` KiB left (a file fills the
    rest; `inodes`: its nr_inodes); what was there before, again afterwards."""
    limit = f",nr_inodes={inodes}" if inodes else ""
    sh(lab, host, f"mkdir -p {where} && mount -t tmpfs -o size={size}k,mode=1777{limit} "
                  f"vnetctl-test {where}")  # fmt: skip
    try:
        if size > free:
            sh(lab, host, f"dd if=/dev/zero of={where}/fill bs=1k count={size - free} 2>&1")
        yield
    finally:
        wait_until(lambda: vnetctl_pids(lab, host) == [], 90, f"no vnetctl process on {host}")
        sh(lab, host, f"umount {where}")


def run_lock(lab, host: str) -> list[str]:
    """vnetctl's files in /run/lock besides the lock itself."""
    found = sh(lab, host, "cd /run/lock && ls -A").split()
    return [n for n in found if n.startswith("vnetctl") and n != "vnetctl.lock"]


def link(lab, host: str, name: str) -> dict:
    return json.loads(sh(lab, host, f"ip -j link show {name}"))[0]


def book(tmp_path: Path, victim: str, mtus: int = 1) -> str:
    """eth1's MTU changed `mtus` times (the last to 1400), then the victim's eth0 down."""
    tasks = [{"name": f"eth1 mtu {i}", "link": {"name": "eth1", "mtu": 1400 - mtus + 1 + i}}
             for i in range(mtus)]  # fmt: skip
    tasks.append({"name": "eth0 down", "link": {"name": "eth0", "admin_state": "down"},
                  "when": f"inventory_hostname == '{victim}'"})  # fmt: skip
    path = tmp_path / "cut.yml"
    path.write_text(yaml.safe_dump([{"hosts": "all", "tasks": tasks}]))
    return str(path)


def cut_off(lab, victim: str, tmp_path: Path):
    """vnetctl (JSON) running `book` on the victim under an 8 s timer, once the victim
    is cut off: its eth0 down, the host waiting for a confirmation that cannot come."""
    argv = ["--limit", victim, "--format", "json", "--confirm-timeout", "8s"]
    proc = start_vnetctl("run", book(tmp_path, victim), "-i", str(lab.inventory_path), *argv)
    wait_until(lambda: "UP" not in link(lab, victim, "eth0")["flags"], 30, "eth0 down")
    return proc


def run(lab, *argv: str, timeout: float = 150) -> tuple[int, dict, str]:
    code, out, err = finish(start_vnetctl("run", *argv, "-i", str(lab.inventory_path),
                                          "--format", "json"), timeout=timeout)  # fmt: skip
    assert "Traceback" not in out + err
    return code, json.loads(out), err


def host_lines(doc: dict, host: str) -> list[tuple[str, str, str]]:
    return [(r["task"], r["status"], r["msg"]) for r in doc["results"] if r["host"] == host]


@pytest.mark.parametrize(
    ("free", "inodes", "said"),
    [
        (16, "1", "cannot open the host lock /run/lock/vnetctl.lock: No space left on device"),
        (0, "", "refused before any change: cannot arm the rollback timer in /run/lock/"),
        (4, "", "refused before any change: cannot arm the rollback timer in /run/lock/"),
    ],
    ids=["no-inode-for-the-lock", "no-room-for-the-holder", "no-room-to-arm"],
)
def test_a_run_lock_too_full_refuses_the_play_before_any_change(lab3, fresh_hosts, tmp_path,
                                                                free, inodes, said):  # fmt: skip
    """Before: the first journal write failed with a raw traceback from the host."""
    victim = lab3.host_names[0]
    with small_fs(lab3, victim, size=16, free=free, inodes=inodes):
        code, doc, err = run(lab3, book(tmp_path, victim), "--limit", victim,
                             "--confirm-timeout", "8s")  # fmt: skip
        assert code == 2, err
        failed = [r for r in doc["results"] if r["status"] == "failed"]
        assert len(failed) == 1 and failed[0]["msg"].startswith(said), failed
        assert "No space left on device" in failed[0]["msg"]
        assert {r["status"] for r in doc["results"]} == {"failed", "not_started"}
        assert mtu(lab3, victim) == 1500 and "UP" in link(lab3, victim, "eth0")["flags"]
        assert run_lock(lab3, victim) == []  # no directory, no temporary file left


def test_a_journal_that_fills_run_lock_refuses_the_task_it_cannot_record(lab3, fresh_hosts,
                                                                          tmp_path):  # fmt: skip
    """Room to arm, not for the whole journal: the task whose state cannot be recorded
    is refused before it changes anything, the ones before it stand (confirmed)."""
    victim = lab3.host_names[1]
    tasks = 120  # ~250 bytes of journal each: more than the 16 KiB left after the reserve
    with small_fs(lab3, victim, size=RESERVE // KIB + 64, free=RESERVE // KIB + 16):
        code, doc, err = run(lab3, book(tmp_path, victim, mtus=tasks), "--limit", victim,
                             "--confirm-timeout", "30s")  # fmt: skip
        assert code == 2, err
        lines = host_lines(doc, victim)
        refused = [i for i, line in enumerate(lines) if line[1] == "failed"]
        assert len(refused) == 1 and 0 < refused[0] < tasks, lines
        (at,) = refused
        assert lines[at][2].startswith("refused before any change: ")
        assert "cannot journal the state before the task" in lines[at][2]
        assert "No space left on device" in lines[at][2]
        assert {line[1] for line in lines[:at]} == {"changed"}
        assert {line[1] for line in lines[at + 1 :]} == {"skipped"}  # eth0 down among them
        assert mtu(lab3, victim) == 1400 - tasks + at  # the last task that ran
        assert "UP" in link(lab3, victim, "eth0")["flags"]
        wait_until(lambda: run_lock(lab3, victim) == [], 10, "the confirmed play's files gone")


def test_run_lock_filled_after_arming_still_gets_the_rollback_said(lab3, fresh_hosts, tmp_path):
    """The result is written into space reserved when the timer was armed. Before: the
    watchdog rolled back, could not write its result and died; the run waited a minute
    more and said the host "rolls the play back by itself"."""
    victim = lab3.host_names[2]
    with small_fs(lab3, victim, size=RESERVE // KIB + 64, free=RESERVE // KIB + 64):
        proc = cut_off(lab3, victim, tmp_path)
        sh(lab3, victim, "cat /dev/zero > /run/lock/fill 2>/dev/null || true")
        assert sh(lab3, victim, "df --output=avail /run/lock").split()[-1] == "0"
        code, out, err = finish(proc, timeout=120)
        doc = json.loads(out)
        assert code == 2, err
        (line,) = [r for r in doc["results"] if r["task"] == "(confirm)"]
        assert line["msg"] == ("rolled back: contact lost after applying task 'eth0 down'; "
                               "the host's state equals the state before the play")  # fmt: skip
        assert "UP" in link(lab3, victim, "eth0")["flags"] and mtu(lab3, victim) == 1500
        assert run_lock(lab3, victim) == []


def test_a_journal_entry_that_does_not_check_out_is_never_read_and_is_said(lab3, fresh_hosts,
                                                                           tmp_path):  # fmt: skip
    """A damaged line in the journal (as a cut write left one): the watchdog rolls back
    what checks out and says what did not. Before: it failed to parse the journal at
    expiry, died without a word, and eth0 stayed down."""
    victim = lab3.host_names[0]
    proc = cut_off(lab3, victim, tmp_path)
    (journal,) = sh(lab3, victim, "ls /run/lock/vnetctl-confirm-*/journal").split()
    entry = json.dumps({"task": 7, "module": "link", "params": {"name": "eth2"}, "before": {}})
    sh(lab3, victim, f"printf '%s\\n' '0badc0de {entry}' '{{\"task\": 8, \"modu' >> {journal}")
    code, out, err = finish(proc, timeout=120)
    doc = json.loads(out)
    assert code == 2, err
    (line,) = [r for r in doc["results"] if r["task"] == "(confirm)"]
    assert line["msg"] == (
        "rollback incomplete: contact lost after applying task 'eth0 down'; left: 2 journal "
        "entries did not check out: what they held was not rolled back"
    )
    assert "UP" in link(lab3, victim, "eth0")["flags"] and mtu(lab3, victim) == 1500
    assert run_lock(lab3, victim) == []


def test_a_rollback_left_by_a_killed_controller_is_said_by_the_next_run(lab3, fresh_hosts,
                                                                        tmp_path):  # fmt: skip
    """vnetctl killed while a host it cut off waits for confirmation: the host rolls back
    by itself; the next run on it collects that result and says what happened, once."""
    victim = lab3.host_names[1]
    playbook = book(tmp_path, victim)
    with start_vnetctl("run", playbook, "-i", str(lab3.inventory_path), "--limit", victim,
                       "--confirm-timeout", "5s") as proc:  # fmt: skip
        wait_until(lambda: "UP" not in link(lab3, victim, "eth0")["flags"], 30, "eth0 down")
        proc.kill()
        proc.wait(timeout=10)
    wait_until(lambda: sh(lab3, victim, "ls /run/lock/vnetctl-confirm-*/result 2>&1 || true")
               .startswith("/run/lock"), 30, "the host's rollback result")  # fmt: skip
    assert "UP" in link(lab3, victim, "eth0")["flags"]

    harmless = tmp_path / "mtu.yml"
    harmless.write_text(yaml.safe_dump([{"hosts": "all", "tasks": [
        {"link": {"name": "eth1", "mtu": 1450}}]}]))  # fmt: skip
    code, doc, err = run(lab3, str(harmless), "--limit", victim)
    assert code == 0, err
    (earlier,) = doc["earlier_rollbacks"]
    assert (earlier["host"], earlier["rolled_back"], earlier["after_task"]) == (victim, True, 1)
    assert earlier["owner"].endswith(f": vnetctl run {playbook}")
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert re.fullmatch(
        rf"rolled back: an earlier run \(`{re.escape(earlier['owner'])}`\) armed a rollback "
        rf"timer at {stamp} and never confirmed it; the host undid it at {stamp}, from its "
        r"task #1 \(link\); the host's state equals the state before that play",
        earlier["msg"],
    ), earlier["msg"]
    assert run_lock(lab3, victim) == []

    code, out, err = finish(start_vnetctl("run", str(harmless), "-i", str(lab3.inventory_path),
                                          "--limit", victim))  # fmt: skip
    assert code == 0, err
    assert "earlier run" not in out  # said once, by the run that collected it


def test_boot_files_that_do_not_fit_leave_the_task_undone_whole(lab3, fresh_hosts, tmp_path):
    """A task's boot configuration files are all written, or none: on a disk that cannot
    hold them no file is changed (no half-written or temporary one, no new directory),
    and the task's running change is rolled back. Before: the files written before the
    disk filled stayed, a half-written one beside them, and the bridge stayed up."""
    victim, root = lab3.host_names[2], "/run/vnetctl-persist-test"
    inventory = yaml.safe_load(Path(lab3.inventory_path).read_text())
    inventory["all"]["children"]["lab"]["hosts"][victim].update(
        vnetctl_persist="networkd", vnetctl_persist_root=root
    )
    persisting = tmp_path / "persisting.yml"
    persisting.write_text(yaml.safe_dump(inventory))
    playbook = tmp_path / "bridge.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "all", "tasks": [
        {"name": "bridge", "linux_bridge": {"name": "br-full", "ports": ["eth1"], "mtu": 1400}},
    ]}]))  # fmt: skip
    argv = ["run", str(playbook), "-i", str(persisting), "--limit", victim, "--format", "json"]
    with small_fs(lab3, victim, size=8, free=8, where=root):  # two pages: not four files
        code, out, err = finish(start_vnetctl(*argv))
        assert code == 2, err
        (result,) = json.loads(out)["results"]
        assert result["status"] == "failed", result
        assert "; boot configuration not written: " in result["msg"]
        assert "No space left on device" in result["msg"]
        assert result["msg"].endswith(" (rolled back)")
        assert sh(lab3, victim, f"find {root} -mindepth 1").split() == []
        assert "br-full" not in sh(lab3, victim, "ip -br link")
        assert "master" not in link(lab3, victim, "eth1") and mtu(lab3, victim) == 1500
    with small_fs(lab3, victim, size=1024, free=1024, where=root):  # room: the same task
        code, out, err = finish(start_vnetctl(*argv))
        assert code == 0, err
        written = sh(lab3, victim, f"cd {root} && find . -type f").split()
        assert "./etc/systemd/network/10-vnetctl-br-full.netdev" in written
        assert not [name for name in written if name.endswith(".tmp")]
