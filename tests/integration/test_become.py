"""A non-root SSH user: without become the kernel refuses, with become (sudo) it works.

The user exists only on one lab host: useradd and sudoers write to that host's own /etc
(an overlay in its private mount namespace)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tests.labhosts import wait_until
from vnetctl.cli.main import main
from vnetctl.lab import host_exec
from vnetctl.lab.sshd import PASSWORD_USER

pytestmark = pytest.mark.lab

SITE = str(Path(__file__).parents[2] / "playbooks" / "site.yml")


@pytest.fixture
def ops_user(lab3, fresh_hosts):
    host = lab3.host_names[0]
    steps = [
        ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh", "ops"],
        ["usermod", "-p", "*", "ops"],  # not locked: sshd without PAM refuses locked users
        [
            "sh",
            "-c",
            "echo 'ops ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/vnetctl-ops && "
            "chmod 0440 /etc/sudoers.d/vnetctl-ops",
        ],
    ]
    for argv in steps:
        run = host_exec(lab3.name, host, argv)
        assert run.returncode == 0, run.stderr
    yield host
    host_exec(lab3.name, host, ["rm", "-f", "/etc/sudoers.d/vnetctl-ops"])
    host_exec(lab3.name, host, ["userdel", "ops"])


def inventory_as_ops(lab3, tmp_path, become: bool) -> str:
    doc = yaml.safe_load(Path(lab3.inventory_path).read_text())
    doc["all"]["vars"].update(ansible_user="ops", ansible_become=become)
    path = tmp_path / f"ops-{become}.yml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def run_json(capsys, *argv):
    code = main(["run", *argv, "--format", "json"])
    return code, json.loads(capsys.readouterr().out)


def test_non_root_user_needs_become(lab3, ops_user, capsys, tmp_path):
    code, doc = run_json(
        capsys, SITE, "-i", inventory_as_ops(lab3, tmp_path, False), "--limit", ops_user
    )
    assert code == 2
    assert "Operation not permitted" in doc["results"][0]["msg"]

    code, doc = run_json(
        capsys, SITE, "-i", inventory_as_ops(lab3, tmp_path, True), "--limit", ops_user
    )
    assert code == 0, doc
    assert doc["stats"][ops_user]["changed"] == 2
    who = host_exec(lab3.name, ops_user, ["ip", "-j", "link", "show", "br-vm"])
    assert json.loads(who.stdout)[0]["mtu"] == 9000


PASSWORD = "Corr3ct-h0rse"


@contextmanager
def sudo_password_user(lab: str, host: str) -> Iterator[str]:
    """A user on `host` of lab `lab` who logs in with a password (or the lab's key: one
    authorized_keys file serves every user) and whose sudo asks for that password."""
    steps = [
        ["useradd", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/bin/sh",
         PASSWORD_USER],
        ["sh", "-c", f"echo '{PASSWORD_USER}:{PASSWORD}' | chpasswd"],
        ["sh", "-c", f"echo '{PASSWORD_USER} ALL=(ALL) ALL' > /etc/sudoers.d/vnetctl-pw && "
         "chmod 0440 /etc/sudoers.d/vnetctl-pw"],
    ]  # fmt: skip
    for argv in steps:
        run = host_exec(lab, host, argv)
        assert run.returncode == 0, run.stderr
    try:
        yield host
    finally:
        host_exec(lab, host, ["rm", "-f", "/etc/sudoers.d/vnetctl-pw"])
        # userdel refuses while a session of the user is still closing (exit 8); 6: gone
        wait_until(lambda: host_exec(lab, host, ["userdel", PASSWORD_USER]).returncode in (0, 6),
                   15, f"{PASSWORD_USER} removed (its sessions closed)")  # fmt: skip


@pytest.fixture
def password_user(lab3, fresh_hosts):
    with sudo_password_user(lab3.name, lab3.host_names[1]) as host:
        yield host


def inventory_with_passwords(lab3, tmp_path, become_password: str) -> str:
    doc = yaml.safe_load(Path(lab3.inventory_path).read_text())
    doc["all"]["vars"].pop("ansible_ssh_private_key_file", None)
    doc["all"]["vars"].update(
        ansible_user=PASSWORD_USER,
        ansible_password=PASSWORD,
        ansible_become=True,
        ansible_become_password=become_password,
    )
    path = tmp_path / "pw.yml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize("transport", ["asyncssh", "paramiko"])
def test_password_login_and_sudo_with_a_password(lab3, password_user, capsys, tmp_path, transport):
    inventory = inventory_with_passwords(lab3, tmp_path, PASSWORD)
    argv = [SITE, "-i", inventory, "--limit", password_user, "--transport", transport]
    code = main(["run", *argv, "--format", "json"])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 0, doc
    assert doc["stats"][password_user]["changed"] == 2
    assert PASSWORD not in out + err
    log = Path(lab3.host(password_user).sshd_log).read_text()
    assert f"Accepted password for {PASSWORD_USER}" in log  # not a key found elsewhere

    inventory = inventory_with_passwords(lab3, tmp_path, "wrong-" + PASSWORD)
    code = main(["run", SITE, "-i", inventory, "--limit", password_user, "--transport",
                 transport, "--format", "json"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 2
    assert "sudo refused the become password" in json.loads(out)["results"][0]["msg"]
    assert PASSWORD not in out + err
