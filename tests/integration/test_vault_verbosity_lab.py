"""Vault, -K and -v..-vvvv on the lab (issue 32).

- A project as an Ansible user keeps it: the login password a `!vault` value in the
  inventory, sudo's password in a vault-encrypted group_vars file (vault id `ops`), a
  bridge named from a `!vault` value; `vnetctl run --vault-id ...` logs in with the
  password and becomes root with sudo's (sudo -S, its password on stdin), and no
  decrypted value appears in anything printed, at any verbosity, with --diff.
- `-K` asks sudo's password on the terminal.
- What each verbosity level adds: -v the skipped tasks and items with their condition,
  -vv the rendered arguments, -vvv the host commands and the SSH steps, -vvvv the SSH
  library's debug log; and what the level below does not show.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.integration.test_become import PASSWORD, password_user  # noqa: F401 (fixture)
from tests.terminal import under_a_terminal
from vnetctl.lab import reset_hosts
from vnetctl.lab.sshd import PASSWORD_USER

pytestmark = pytest.mark.lab

ROOT = Path(__file__).parents[2]
ANSIBLE_VAULT = ROOT / ".venv-ansible" / "bin" / "ansible-vault"
SITE = str(ROOT / "playbooks" / "site.yml")
VAULT_PW = "Vault-0ps-pw"
BRIDGE = "brV4ultS3cr3t"  # a valid interface name: hosts quote it back in commands
LEAKS = (PASSWORD, VAULT_PW, BRIDGE, BRIDGE.lower())
BOOK = """\
- name: verbosity
  hosts: all
  vars: {vm_mtu: 9000}
  tasks:
    - name: storage mtu
      link: {name: eth2, mtu: "{{ vm_mtu }}", admin_state: up}
    - name: only on the first host
      link: {name: eth1, mtu: 1500}
      when: inventory_hostname == groups.all[0]
    - name: uplinks
      link: {name: "{{ item }}", mtu: 9000}
      loop: [eth1, eth2]
      when: item != 'eth1'
    - name: bridge named from the vault
      linux_bridge: {name: "{{ bridge_secret }}", stp: false}
"""


def vault(*argv: str, cwd: Path) -> str:
    done = subprocess.run([str(ANSIBLE_VAULT), *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def vnetctl(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    return subprocess.run([sys.executable, "-m", "vnetctl", *args], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env=env, check=False)  # fmt: skip


def assert_hidden(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} shown in:\n{text}"


@pytest.fixture
def project(lab3, tmp_path):
    """The lab's inventory with the vault's values, its password file (label `ops`)."""
    if not ANSIBLE_VAULT.exists():
        pytest.skip("needs .venv-ansible (setup.sh)")
    (tmp_path / "ops.pw").write_text(VAULT_PW + "\n")
    (tmp_path / "group_vars").mkdir()
    tagged = vault("encrypt_string", "--vault-id", "ops@ops.pw", "--name", "bridge_secret",
                   BRIDGE, cwd=tmp_path)  # fmt: skip
    (tmp_path / "group_vars" / "all.yml").write_text(tagged)
    (tmp_path / "book.yml").write_text(BOOK)
    inventory = tmp_path / "inv.yml"
    inventory.write_text(Path(lab3.inventory_path).read_text())
    try:
        yield tmp_path, str(inventory), f"ops@{tmp_path}/ops.pw"
    finally:
        reset_hosts(lab3.name)  # the bridge named from the secret


def as_password_user(tmp_path: Path, inventory: str, host: str, become_password: bool) -> str:
    """The inventory for the password user: its login password a `!vault` value in
    host_vars; with `become_password`, sudo's in a vault-encrypted group_vars file
    (else -K gives it)."""
    doc = yaml.safe_load(Path(inventory).read_text())
    doc["all"]["vars"].pop("ansible_ssh_private_key_file", None)
    doc["all"]["vars"].update(ansible_user=PASSWORD_USER, ansible_become=True)
    Path(inventory).write_text(yaml.safe_dump(doc))
    (tmp_path / "host_vars").mkdir(exist_ok=True)
    tagged = vault("encrypt_string", "--vault-id", "ops@ops.pw", "--name", "ansible_password",
                   PASSWORD, cwd=tmp_path)  # fmt: skip
    (tmp_path / "host_vars" / f"{host}.yml").write_text(tagged)
    secret = tmp_path / "group_vars" / "lab.yml"
    secret.unlink(missing_ok=True)
    if become_password:
        secret.write_text(f"ansible_become_password: {PASSWORD}\n")
        vault("encrypt", "--vault-id", "ops@ops.pw", str(secret), cwd=tmp_path)
    return inventory


def test_login_and_sudo_passwords_from_the_vault_never_shown(project, password_user):  # noqa: F811
    top, inventory, vault_id = project
    as_password_user(top, inventory, password_user, become_password=True)
    assert (top / "group_vars" / "lab.yml").read_text().startswith("$ANSIBLE_VAULT;1.2;")
    run = vnetctl("run", SITE, "-i", inventory, "--limit", password_user, "--vault-id",
                  vault_id, "-vvvv", "--diff")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"changed: [{password_user}] VM bridge with its uplink" in run.stdout
    assert "sudo -S" in run.stdout  # -vvv: the remote command; the password is on stdin
    assert "    $ ip -batch -\n    |   link add name br-vm type bridge" in run.stdout  # exact
    assert_hidden(run.stdout + run.stderr)

    without = vnetctl("run", SITE, "-i", inventory, "--limit", password_user)
    assert without.returncode == 1
    assert "vault-encrypted (vault id 'ops') and no vault password was given" in without.stderr
    assert "group_vars/lab.yml" in without.stderr


def test_ask_become_pass_on_the_terminal(project, password_user):  # noqa: F811
    top, inventory, vault_id = project
    as_password_user(top, inventory, password_user, become_password=False)
    argv = [sys.executable, "-m", "vnetctl", "run", SITE, "-i", inventory, "--limit",
            password_user, "--vault-id", vault_id, "-K"]  # fmt: skip
    code, shown = under_a_terminal(argv, [("BECOME password: ", PASSWORD + "\n")])
    assert code == 0, shown
    assert f"changed: [{password_user}] VM bridge with its uplink" in shown
    assert_hidden(shown)
    code, shown = under_a_terminal(argv, [("BECOME password: ", "wrong-" + PASSWORD + "\n")])
    assert code == 2 and "sudo refused the become password" in shown, shown


def levels(project, *extra: str) -> dict[int, str]:
    _, inventory, vault_id = project
    shown = {}
    for level in range(5):
        flag = ["-" + "v" * level] if level else []
        run = vnetctl("run", str(project[0] / "book.yml"), "-i", inventory, "--vault-id",
                      vault_id, "--check", "--diff", *flag, *extra)  # fmt: skip
        assert run.returncode == 0, run.stdout + run.stderr
        assert_hidden(run.stdout + run.stderr)
        shown[level] = run.stdout
    return shown


def test_what_each_verbosity_level_adds(lab3, fresh_hosts, project):
    first, second = lab3.host_names[:2]
    shown = levels(project)
    skipped = [
        f"skipping: [{second}] only on the first host (when: inventory_hostname == groups.all[0])",
        f"skipping: [{first}] uplinks (item=eth1) (when: item != 'eth1')",
    ]
    args = [
        f'task: [{first}] storage mtu link {{"admin_state": "up", "mtu": 9000, "name": "eth2"}}',
        f"task: [{first}] bridge named from the vault linux_bridge "
        '{"admin_state": "up", "name": "***", "state": "present"',
    ]
    commands = ["    $ ip -j -d link show", "    would run: ip link set dev eth2 mtu 9000",
                "    would run: ip link add name *** type bridge"]  # fmt: skip
    ssh = [f"[{first}] SSH connect to root@", f"[{first}] SSH connected in ",
           f"[{first}] remote process: "]  # fmt: skip
    debug = ["<asyncssh> "]
    for level, lines in enumerate([skipped, args, commands + ssh, debug], start=1):
        for line in lines:
            assert line in shown[level], f"-{'v' * level} lacks {line!r}:\n{shown[level]}"
            assert line not in shown[level - 1], f"shown below -{'v' * level}: {line!r}"


def test_vault_values_hidden_in_json_drift_reports_and_history(lab3, fresh_hosts, project):
    top, inventory, vault_id = project
    book, vault_args = str(top / "book.yml"), ("-i", inventory, "--vault-id", vault_id)
    as_json = vnetctl("run", book, *vault_args, "--check", "--format", "json")
    assert as_json.returncode == 0 and '"bridge ***"' in as_json.stdout, as_json.stdout
    db = top / "history.sqlite"
    reports = [f"--report={f}={top / ('drift.' + f)}" for f in ("json", "html", "junit")]
    drift = vnetctl("drift", book, *vault_args, "--history", str(db), *reports)
    assert drift.returncode == 2, drift.stdout + drift.stderr
    assert "***" in drift.stdout
    history = vnetctl("drift", "history", "--history", str(db), "--run", "1")
    assert "bridge ***" in history.stdout, history.stdout
    shown = [as_json.stdout, as_json.stderr, drift.stdout, drift.stderr, history.stdout]
    shown += [(top / f"drift.{f}").read_text() for f in ("json", "html", "junit")]
    assert_hidden("\n".join(shown))
    for path in top.glob("history.sqlite*"):
        assert not any(leak.encode() in path.read_bytes() for leak in LEAKS), path


def test_vvvv_with_paramiko_shows_its_debug_log(lab3, fresh_hosts):
    run = vnetctl("run", SITE, "-i", str(lab3.inventory_path), "--limit", lab3.host_names[0],
                  "--check", "--transport", "paramiko", "-vvvv")  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "<paramiko.transport> " in run.stdout and " with paramiko: " in run.stdout
