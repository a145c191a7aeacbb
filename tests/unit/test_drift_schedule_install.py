"""`drift schedule install`: the check is loaded and planned before anything is written,
and the unit and the cron line run exactly the check that was typed: every option of
`vnetctl drift` survives, whatever characters its values hold."""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from vnetctl.cli.main import build_parser, commands_of, main
from vnetctl.drift import schedule

PLAYBOOK = "- hosts: all\n  tasks:\n    - link: {name: eth1, mtu: 9000}\n"
INVENTORY = (
    "all:\n  hosts:\n    h1: {ansible_host: 192.0.2.10}\n    h2: {ansible_host: 192.0.2.11}\n"
)
# `drift` options a schedule takes in its own sense, or not at all
NOT_THE_CHECKS = {
    "--every": "the schedule's own interval (the check's would loop forever in the unit)",
    "--count": "belongs to --every's loop, which a scheduled check does not run",
    "-h": "help",
    "-J": "a prompt: a scheduled check has no terminal (refused)",
    "-K": "a prompt: a scheduled check has no terminal (refused)",
}


@pytest.fixture
def check(tmp_path, monkeypatch) -> Path:
    """A working directory with a playbook and an inventory that plan."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "inv.yml").write_text(INVENTORY)
    (tmp_path / "vars.yml").write_text("vm_mtu: 9000\n")
    (tmp_path / "reports").mkdir()
    (tmp_path / "vault pass").write_text("not used: nothing here is encrypted\n")
    return tmp_path


def drift_parser() -> argparse.ArgumentParser:
    return dict(commands_of(build_parser()))["drift"]


def sample(action: argparse.Action, where: Path) -> list[str]:
    """The option with a value `drift` accepts, as awkward to quote as it can be."""
    option = max(action.option_strings, key=len)
    values = {
        "extra_vars": [json.dumps({"note": "50% of $HOME: \"x\" \\ 'y'"}), f"@{where}/vars.yml"],
        "report": [f"json={where}/reports/d %h $USER.json", f"prometheus={where}/reports/d.prom"],
        "history": [f"{where}/drift history.sqlite"],
        "output": [f"{where}/reports/out.txt"],
        "limit": ["h*,!h2"],
        "shard": ["2/4"],
        "inventory": [f"{where}/inv.yml"],
        "roles_path": [f"{where}/roles dir:/etc/vnetctl/roles"],
        "user": ["ops"],
        "become_user": ["netops"],
        "vault_id": [f"ops@{where}/vault pass", f"{where}/vault pass"],
        "vault_password_file": [f"{where}/vault pass"],
        "tags": ["untagged,always"],  # Ansible's own tags: the playbook here has none
        "skip_tags": ["never"],
    }
    if action.nargs == 0:
        return [option]
    if action.choices:
        return [option, [c for c in action.choices if c != action.default][-1]]
    if action.dest in values:
        return [token for value in values[action.dest] for token in (option, value)]
    for candidate in ("3", "90s"):  # typed options (bounded integers, times)
        try:
            action.type(candidate)
        except (argparse.ArgumentTypeError, ValueError, TypeError):
            continue
        return [option, candidate]
    raise AssertionError(f"new drift option {option}: give it a sample value in this test")


def every_check_option(where: Path) -> list[str]:
    tokens = []
    for action in drift_parser()._actions:
        if not action.option_strings or set(action.option_strings) & set(NOT_THE_CHECKS):
            continue
        tokens += sample(action, where)
    return tokens


def exec_start(unit_text: str) -> list[str]:
    """ExecStart= as systemd reads it: specifiers (%%), variables ($$), quotes."""
    line = next(x for x in unit_text.splitlines() if x.startswith("ExecStart="))
    words = shlex.split(line.removeprefix("ExecStart=").replace("%%", "\0"))
    return [w.replace("\0", "%").replace("$$", "$") for w in words]


def cron_command(cron_text: str) -> list[str]:
    """The command of the cron line as cron (\\% is %) and then sh read it."""
    line = next(x for x in cron_text.splitlines() if x.startswith(("*", "0")))
    command = line.split(None, 6)[6].replace("\\%", "%")
    assert "%" not in line.replace("\\%", "")  # an unescaped % would end the command
    words = shlex.split(command)
    return words[words.index("&&") + 1 : words.index(next(w for w in words if w.startswith(">>")))]


def test_every_drift_option_survives_into_the_unit_and_the_cron_line(check):
    typed = ["site.yml", *every_check_option(check)]
    assert main(["drift", "schedule", "install", "--systemd", "--name", "all", "--unit-dir",
                 str(check / "units"), *typed]) == 0  # fmt: skip
    assert main(["drift", "schedule", "install", "--cron", "--every=1h", "--name", "all",
                 *typed, "--cron-dir", str(check / "cron")]) == 0  # fmt: skip
    service = (check / "units" / "vnetctl-drift-all.service").read_text()
    cron = (check / "cron" / "vnetctl-drift-all").read_text()
    expected = vars(drift_parser().parse_args(typed))
    for scheduled in (exec_start(service), cron_command(cron)):
        assert Path(scheduled[0]).name == "vnetctl" and scheduled[1] == "drift"
        assert scheduled[2:] == typed  # as typed, in order
        assert vars(drift_parser().parse_args(scheduled[2:])) == expected
    assert "WorkingDirectory=" + str(check) in service and f"cd {check} &&" in cron


@pytest.mark.parametrize("prompt", ["-J", "--ask-vault-pass", "-K", "--ask-become-pass"])
def test_a_schedule_that_would_prompt_is_refused(check, capsys, prompt):
    code = main(["drift", "schedule", "install", "site.yml", "-i", "inv.yml", prompt,
                 "--systemd", "--unit-dir", "units", "--name", "p"])  # fmt: skip
    assert code == 1 and "no terminal to ask a password on" in capsys.readouterr().err
    assert not (check / "units").exists()


def test_the_schedules_own_options_stay_out_of_the_check(check):
    assert main(["drift", "schedule", "install", "site.yml", "--every", "30m", "-i", "inv.yml",
                 "--name", "own", "--systemd", "--unit-dir", "units", "--retries", "5",
                 "--accept-new-host-keys"]) == 0  # fmt: skip
    service = (check / "units" / "vnetctl-drift-own.service").read_text()
    assert exec_start(service)[2:] == ["site.yml", "-i", "inv.yml", "--retries", "5",
                                       "--accept-new-host-keys"]  # fmt: skip
    assert "OnUnitActiveSec=1800s" in (check / "units" / "vnetctl-drift-own.timer").read_text()


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (["-i", "inventory/prod.yml"], "inventory/prod.yml"),
        (["-i", "inv.yml", "--limit", "nosuchhost"], "nosuchhost"),
        (["-i", "inv.yml", "-e", "@missing.yml"], "missing.yml"),
        (["-i", "inv.yml", "--report", "html=/nonexistent/d.html"], "/nonexistent"),
        (["-i", "inv.yml", "--history", "/nonexistent/h.sqlite"], "/nonexistent"),
        (["-i", "inv.yml", "--report", "xml=d.xml"], "expected FORMAT=PATH"),
    ],
)
def test_a_check_that_cannot_run_is_refused_and_nothing_written(check, capsys, broken, message):
    for kind in (["--systemd", "--unit-dir", "units"], ["--cron", "--cron-dir", "cron"]):
        assert main(["drift", "schedule", "install", *kind, "--name", "x", "site.yml",
                     *broken]) == 1  # fmt: skip
        assert message in capsys.readouterr().err
    assert not (check / "units").exists() and not (check / "cron").exists()


def test_a_playbook_that_does_not_plan_is_refused(check, capsys):
    (check / "bad.yml").write_text("- hosts: all\n  tasks:\n    - linux_brige: {name: b}\n")
    code = main(["drift", "schedule", "install", "--systemd", "--unit-dir", "units",
                 "--name", "x", "bad.yml", "-i", "inv.yml"])  # fmt: skip
    assert code == 1 and "bad.yml:3" in capsys.readouterr().err
    assert not (check / "units").exists()


def test_the_minimum_interval_is_in_the_help_and_the_error(check, capsys):
    for argv in (["drift", "--help"], ["drift", "schedule", "install", "--help"]):
        assert main(argv) == 0
        assert f"at least {schedule.MIN_INTERVAL}s" in " ".join(capsys.readouterr().out.split())
    assert main(["drift", "site.yml", "-i", "inv.yml", "--every", "5s"]) == 1
    assert f"at least {schedule.MIN_INTERVAL}s between checks" in capsys.readouterr().err


def test_the_enable_hint_for_a_unit_dir_works_as_printed(check, capsys):
    """The printed commands, run against a root directory with systemctl --root, link the
    units from where they were written and enable the timer."""
    units = check / "units"
    assert main(["drift", "schedule", "install", "--systemd", "--name", "site", "--unit-dir",
                 str(units), "site.yml", "-i", "inv.yml"]) == 0  # fmt: skip
    hint = capsys.readouterr().out.splitlines()[-1]
    assert hint.startswith("enable it with: ")
    systemctl = shutil.which("systemctl")
    assert systemctl, "systemctl is needed (scripts/setup.sh installs systemd)"
    root = check / "root"
    shutil.copytree(units, root / units.relative_to("/"))  # as the root sees the unit dir
    for command in hint.removeprefix("enable it with: ").split(" && "):
        argv = shlex.split(command)
        assert argv[0] == "systemctl"
        argv = [systemctl, f"--root={root}", *(a for a in argv[1:] if a != "--now")]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{command}: {done.stderr}"
    enabled = subprocess.run(
        [systemctl, f"--root={root}", "is-enabled", "vnetctl-drift-site.timer",
         "vnetctl-drift-site.service"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert enabled.stdout.split() == ["enabled", "linked"]


def test_a_check_of_stacked_inventories_keeps_every_i(check):
    (check / "extra.ini").write_text("[edge]\nextra1 ansible_host=192.0.2.99\n")
    typed = ["site.yml", "-i", "inv.yml", "-i", "extra.ini", "--limit", "extra1,h1"]
    install = ["drift", "schedule", "install", "--systemd", "--unit-dir", "units", "--name", "two"]
    assert main([*install, *typed]) == 0  # planned on both sources: --limit names a host of each
    service = (check / "units" / "vnetctl-drift-two.service").read_text()
    assert exec_start(service)[2:] == typed


def test_an_inventory_from_the_environment_is_written_out(check, monkeypatch):
    monkeypatch.setenv("ANSIBLE_INVENTORY", "inv.yml")
    install = ["drift", "schedule", "install", "--systemd", "--unit-dir", "units", "--name", "env"]
    assert main([*install, "site.yml"]) == 0
    service = (check / "units" / "vnetctl-drift-env.service").read_text()
    assert exec_start(service)[2:] == ["site.yml", "-i", str(check / "inv.yml")]
