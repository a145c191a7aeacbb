"""Ansible vault: files and `!vault` values made by the real `ansible-vault` (ansible-core
2.19 from requirements/ansible.lock) decrypted by vnetctl, in every place Ansible reads
them (vars_files, group_vars, host_vars, -e @FILE, a role's vars), with every way
Ansible takes a password (files, scripts, client scripts, vault ids, the environment, a
prompt on the terminal); what cannot be decrypted is refused naming the file (and the
line of a `!vault` value), before any host is contacted; decrypted values are secrets."""

from __future__ import annotations

import getpass
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.terminal import under_a_terminal
from vnetctl import secrets
from vnetctl.cli.common import cli_defaults, plan_from_args, run_context
from vnetctl.cli.main import build_parser, main
from vnetctl.errors import InputError
from vnetctl.vault import cipher, keyring

ROOT = Path(__file__).parents[2]
ANSIBLE_VAULT = ROOT / ".venv-ansible" / "bin" / "ansible-vault"
pytestmark = pytest.mark.skipif(not ANSIBLE_VAULT.exists(), reason="needs .venv-ansible")

DEFAULT_PW, PROD_PW = "vault-Def4ult", "vault-Pr0d"
UPLINK, TOKEN, EXTRA, ROLE_MTU = "vethsecr3t", "tok-9f8e7d6c5b", "ext-c0ffee42", 1397
NOTE = "vaultfilenote"
# 192.0.2.0/24 is TEST-NET-1: nothing answers there, a contact attempt would hang or fail
INVENTORY = "[kvm]\nkvm1 ansible_host=192.0.2.1\n"
BOOK = """\
- hosts: kvm
  vars_files: [vars/secret.yml]
  roles: [net]
  tasks:
    - name: uplink
      link: {name: "{{ uplink }}", mtu: "{{ role_mtu }}"}
    - name: token
      link: {name: "{{ token }}"}
    - name: extra
      link: {name: "{{ from_extra }}"}
    - name: derived
      link: {name: "{{ plain_note | upper }}"}
"""


def vault(*argv: str, cwd: Path, stdin: str | None = None) -> str:
    done = subprocess.run([str(ANSIBLE_VAULT), *argv], cwd=cwd, input=stdin, text=True,
                          capture_output=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project as an Ansible user has it: group_vars encrypted for vault id `prod`,
    a `!vault` value in host_vars, an encrypted vars_file, role vars and -e file."""
    top = tmp_path_factory.mktemp("vaulted")
    (top / "default.pw").write_text(DEFAULT_PW + "\n")
    (top / "prod.pw").write_text(PROD_PW)
    (top / "hosts").write_text(INVENTORY)
    (top / "book.yml").write_text(BOOK)
    for folder in ("group_vars", "host_vars", "vars", "roles/net/vars", "roles/net/tasks"):
        (top / folder).mkdir(parents=True)
    (top / "roles/net/tasks/main.yml").write_text("[]\n")
    files = {
        "group_vars/kvm.yml": (f"uplink: {UPLINK}\n", ["--vault-id", "prod@prod.pw"]),
        "vars/secret.yml": (f"plain_note: {NOTE}\n", []),
        "extra.yml": (f"from_extra: {EXTRA}\n", []),
        "roles/net/vars/main.yml": (f"role_mtu: {ROLE_MTU}\n", []),
    }
    for name, (text, how) in files.items():
        (top / name).write_text(text)
        vault("encrypt", *(how or ["--vault-password-file", "default.pw"]), name, cwd=top)
    tagged = vault("encrypt_string", "--vault-password-file", "default.pw", "--name", "token",
                   TOKEN, cwd=top)  # fmt: skip
    (top / "host_vars/kvm1.yml").write_text("note: plain\n" + tagged)
    return top


def plan(project: Path, *options: str):
    args = build_parser().parse_args(["run", str(project / "book.yml"), "-i",
                                      str(project / "hosts"), *options])  # fmt: skip
    context = run_context(args, check=True)
    (play,) = plan_from_args(args, context)
    return {t.name: t.args for t in play.tasks["kvm1"]}


def test_the_real_ansible_vaults_files_decrypt(project):
    for name in ("group_vars/kvm.yml", "vars/secret.yml"):
        text = (project / name).read_text()
        assert text.startswith("$ANSIBLE_VAULT;1.2;AES256;prod" if "kvm" in name
                               else "$ANSIBLE_VAULT;1.1;AES256")  # fmt: skip
    envelope = cipher.parse((project / "group_vars/kvm.yml").read_text())
    assert (envelope.version, envelope.label) == ("1.2", "prod")
    assert cipher.decrypt(envelope, PROD_PW.encode()) == f"uplink: {UPLINK}\n".encode()
    with pytest.raises(cipher.WrongPassword):
        cipher.decrypt(envelope, DEFAULT_PW.encode())


def test_every_place_decrypts_with_ids_and_password_files(project):
    args = plan(project, "--vault-id", f"prod@{project}/prod.pw", "--vault-password-file",
                str(project / "default.pw"), "-e", f"@{project}/extra.yml")  # fmt: skip
    assert args["uplink"]["name"] == UPLINK and args["uplink"]["mtu"] == ROLE_MTU
    names = [args[t]["name"] for t in ("token", "extra", "derived")]
    assert names == [TOKEN, EXTRA, NOTE.upper()]
    assert type(args["uplink"]["name"]) is str  # marshalled to hosts: no str subclass
    for value in (UPLINK, TOKEN, EXTRA, str(ROLE_MTU), NOTE, NOTE.upper()):
        assert secrets.redact(f"x {value} y") == "x *** y", value


def test_a_1_2_file_is_tried_with_every_password_whatever_its_label(project):
    # Ansible tries the label's passwords first, then the others
    args = plan(project, "--vault-id", f"other@{project}/prod.pw", "--vault-id",
                f"{project}/default.pw", "-e", f"@{project}/extra.yml")  # fmt: skip
    assert args["uplink"]["name"] == UPLINK


def test_environment_password_file_and_executable_scripts(project, monkeypatch, tmp_path):
    script = tmp_path / "pass.sh"
    script.write_text(f"#!/bin/sh\necho '{DEFAULT_PW}'\n")
    client = tmp_path / "vault-client.py"  # a client script is told which id it is asked for
    client.write_text(f"#!{sys.executable}\nimport sys\nassert sys.argv[1:] == "
                      f"['--vault-id', 'prod']\nprint({PROD_PW!r})\n")  # fmt: skip
    for path in (script, client):
        path.chmod(0o700)
    monkeypatch.setenv("ANSIBLE_VAULT_PASSWORD_FILE", str(script))
    args = plan(project, "--vault-id", f"prod@{client}", "-e", f"@{project}/extra.yml")
    assert args["uplink"]["name"] == UPLINK and args["token"]["name"] == TOKEN


def cli(capsys, project: Path, *options: str) -> tuple[int, str]:
    code = main(["run", str(project / "book.yml"), "-i", str(project / "hosts"),
                 "--syntax-check", *options])  # fmt: skip
    out, err = capsys.readouterr()
    return code, out + err


def test_no_password_names_the_file_and_contacts_no_host(project, capsys):
    code, text = cli(capsys, project)
    assert code == 1, text
    assert "group_vars/kvm.yml: vault-encrypted (vault id 'prod') and no vault password " in text
    assert "--vault-password-file, --vault-id or --ask-vault-pass" in text


def test_a_wrong_password_names_the_file(project, capsys):
    code, text = cli(capsys, project, "--vault-password-file", str(project / "default.pw"))
    assert code == 1
    assert "group_vars/kvm.yml: vault-encrypted (vault id 'prod'): none of the vault " in text
    assert f"wrong password? tried default@file {project}/default.pw" in text
    assert DEFAULT_PW not in text and PROD_PW not in text


def test_a_file_for_another_vault_id_names_the_file(project, capsys):
    code, text = cli(capsys, project, "--vault-id", f"prod@{project}/prod.pw")
    assert code == 1, text
    # vars/secret.yml is encrypted for the default id: the first file that fails
    assert "vars/secret.yml: vault-encrypted and no" not in text
    assert "secret.yml: vault-encrypted: none of the vault passwords given decrypts it" in text


def uses_token(project: Path, top: Path, name: str = "'{{ token }}'") -> None:
    """A project whose host_vars hold the `!vault` token; its task's link is `name`."""
    (top / "book.yml").write_text(f"- hosts: kvm\n  tasks:\n    - link: {{name: {name}}}\n")
    (top / "hosts").write_text(INVENTORY)
    (top / "host_vars").mkdir(exist_ok=True)
    (top / "host_vars/kvm1.yml").write_text((project / "host_vars/kvm1.yml").read_text())


def test_an_unused_vault_value_needs_no_password_as_in_ansible(project, capsys, tmp_path):
    uses_token(project, tmp_path, name="eth1")
    code, text = cli(capsys, tmp_path)
    assert code == 0, text
    uses_token(project, tmp_path)
    code, text = cli(capsys, tmp_path)
    assert code == 1
    assert f"the !vault value at {tmp_path}/host_vars/kvm1.yml:2 cannot be decrypted: " in text
    assert "no vault password was given" in text and "variable 'token'" in text


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("", "from file {path} is empty"),
        (None, "vault password file {path}: file not found"),
        ("#!/bin/sh\nexit 3\n", "vault password script {path} (vault id 'default') exited with 3"),
    ],
)
def test_bad_password_sources_are_refused(project, capsys, tmp_path, content, words):
    path = tmp_path / "pw"
    if content is not None:
        path.write_text(content)
        path.chmod(0o700 if content.startswith("#!") else 0o600)
    code, text = cli(capsys, project, "--vault-password-file", str(path))
    assert code == 1 and words.format(path=path) in text, text


def test_a_bad_vault_id_is_refused(project, capsys):
    code, text = cli(capsys, project, "--vault-id", "prod@")
    assert code == 1 and "expected [LABEL@]SOURCE" in text


def test_the_prompt_needs_a_terminal(project, capsys, monkeypatch):
    monkeypatch.setattr(keyring, "tty_available", lambda: False)
    code, text = cli(capsys, project, "--ask-vault-pass")
    assert code == 1 and "a vault password prompt needs a terminal" in text


def test_ask_vault_pass_prompts_on_the_terminal_and_never_echoes(project):
    argv = [sys.executable, "-m", "vnetctl", "run", str(project / "book.yml"), "-i",
            str(project / "hosts"), "--syntax-check", "--vault-id", f"prod@{project}/prod.pw",
            "-J", "-e", f"@{project}/extra.yml"]  # fmt: skip
    code, shown = under_a_terminal(argv, [("Vault password: ", DEFAULT_PW + "\n")])
    assert code == 0, shown
    assert "Vault password: " in shown and "no host contacted" in shown
    assert DEFAULT_PW not in shown


def test_vault_password_repr_hides_it():
    password = keyring.VaultPassword("prod", "prompt", b"hunter2-x")
    assert "hunter2" not in repr(password) + str(password)
    with pytest.raises(TypeError):
        __import__("pickle").dumps(password)


def test_ansible_inventory_list_json_keeps_vault_values_encrypted_and_vnetctl_decrypts(
    project, tmp_path
):
    """`ansible-inventory --list` prints a `!vault` value as {"__ansible_vault": TEXT}."""
    listing = ANSIBLE_VAULT.parent / "ansible-inventory"
    done = subprocess.run([str(listing), "-i", str(project / "hosts"), "--list", "--vault-id",
                           f"prod@{project}/prod.pw"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert '"__ansible_vault": "$ANSIBLE_VAULT;1.1;AES256' in done.stdout
    (tmp_path / "inventory.json").write_text(done.stdout)
    book = "- hosts: kvm\n  tasks:\n    - link: {name: '{{ token }}'}\n"
    (tmp_path / "book.yml").write_text(book)
    args = build_parser().parse_args(["run", str(tmp_path / "book.yml"), "-i",
                                      str(tmp_path / "inventory.json"), "--vault-password-file",
                                      str(project / "default.pw")])  # fmt: skip
    (play,) = plan_from_args(args, run_context(args, check=True))
    assert play.tasks["kvm1"][0].args["name"] == TOKEN


def test_ask_become_pass_is_a_default_below_every_variable(monkeypatch):
    args = build_parser().parse_args(["run", "b.yml", "-i", "h", "-K"])
    monkeypatch.setattr(keyring, "tty_available", lambda: False)
    with pytest.raises(InputError, match="-K/--ask-become-pass needs a terminal"):
        cli_defaults(args)
    monkeypatch.setattr(keyring, "tty_available", lambda: True)
    monkeypatch.setattr(getpass, "getpass", lambda prompt: "Typed-sudo-pw")
    assert cli_defaults(args) == {"vnetctl_become_password": "Typed-sudo-pw"}
    assert secrets.redact("x Typed-sudo-pw") == "x ***"


def test_a_password_file_encrypted_with_a_password_read_before_it(project, tmp_path):
    secret_pw = tmp_path / "default.pw.vault"
    secret_pw.write_text(DEFAULT_PW + "\n")
    vault("encrypt", "--vault-id", "prod@prod.pw", str(secret_pw), cwd=project)
    args = plan(project, "--vault-id", f"prod@{project}/prod.pw", "--vault-password-file",
                str(secret_pw), "-e", f"@{project}/extra.yml")  # fmt: skip
    assert args["token"]["name"] == TOKEN


def test_an_encrypted_playbook_runs_and_its_text_is_secret(project, tmp_path, capsys):
    (tmp_path / "hosts").write_text(INVENTORY)
    (tmp_path / "book.yml").write_text(
        "- hosts: kvm\n  tasks:\n    - name: Hidden-task-name\n      link: {name: eth1}\n"
    )
    vault("encrypt", "--vault-password-file", f"{project}/default.pw", "book.yml", cwd=tmp_path)
    code, text = cli(capsys, tmp_path, "--vault-password-file", str(project / "default.pw"))
    assert code == 0, text
    assert secrets.redact("Hidden-task-name") == "***"


def test_prompts_say_the_vault_id_they_ask_for(monkeypatch):
    monkeypatch.setattr(keyring, "tty_available", lambda: True)
    asked = []
    wanted = keyring.sources(["ops@prompt"], [], True, env={})
    ring = keyring.load(wanted, prompt=lambda text: asked.append(text) or "typed-pw")
    assert asked == ["Vault password (ops): ", "Vault password: "]
    got = [(p.label, p.source) for p in ring.passwords]
    assert got == [("ops", "prompt"), ("default", "prompt")]


def test_password_sources_in_ansibles_order():
    env = {"ANSIBLE_VAULT_IDENTITY_LIST": "x@f0, f00", "ANSIBLE_VAULT_PASSWORD_FILE": "f3"}
    got = keyring.sources(["a@f1"], ["f2"], True, env=env, config_password_file="cfg")
    assert [(s.label, s.where) for s in got] == [
        ("x", "f0"), ("default", "f00"), ("a", "f1"), ("default", "f2"), ("default", "f3"),
        ("default", "prompt"),
    ]  # fmt: skip
    # ansible.cfg's vault_password_file where the environment does not set one
    got = keyring.sources([], [], False, env={}, config_password_file="cfg")
    assert [(s.label, s.where) for s in got] == [("default", "cfg")]


def test_a_vault_value_with_a_wrong_password_names_its_file_and_line(project, capsys, tmp_path):
    uses_token(project, tmp_path)
    code, text = cli(capsys, tmp_path, "--vault-password-file", str(project / "prod.pw"))
    assert code == 1
    assert f"the !vault value at {tmp_path}/host_vars/kvm1.yml:2 cannot be decrypted: " in text
    assert "none of the vault passwords given decrypts it (wrong password?" in text
    assert PROD_PW not in text and TOKEN not in text


def test_ansible_cfg_gives_the_password_file_and_the_identities(project, monkeypatch, tmp_path):
    """ansible.cfg's vault_identity_list and vault_password_file (relative to the file),
    as ansible-playbook reads them with no vault flag given."""
    for name in ("ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_IDENTITY_LIST"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "ansible.cfg").write_text(
        f"[defaults]\nvault_identity_list = prod@{project}/prod.pw\n"
        "vault_password_file = default.pw\n"
    )
    (tmp_path / "default.pw").write_text((project / "default.pw").read_text())
    monkeypatch.setenv("ANSIBLE_CONFIG", str(tmp_path / "ansible.cfg"))
    args = plan(project, "-e", f"@{project}/extra.yml")
    assert args["uplink"]["name"] == UPLINK and args["token"]["name"] == TOKEN


def test_inventory_reads_vault_files_with_ansible_cfgs_password_files(
    project, tmp_path, capsys, monkeypatch
):
    """`vnetctl inventory` took no vault password at all: a project whose ansible.cfg
    names its vault password file (as ansible-inventory reads it) was refused."""
    for name in ("ANSIBLE_CONFIG", "ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_VAULT_IDENTITY_LIST",
                 "ANSIBLE_INVENTORY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "ansible.cfg").write_text(
        f"[defaults]\ninventory = {project}/hosts\nvault_password_file = {project}/default.pw\n"
        f"vault_identity_list = prod@{project}/prod.pw\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["inventory", "--host", "kvm1"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown == {"ansible_host": "192.0.2.1", "note": "plain", "token": "***",
                     "uplink": "***"}  # fmt: skip
    (tmp_path / "ansible.cfg").write_text(f"[defaults]\ninventory = {project}/hosts\n")
    argv = ["inventory", "--list", "--vault-id", f"prod@{project}/prod.pw",
            "--vault-password-file", f"{project}/default.pw"]  # fmt: skip
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["_meta"]["hostvars"]["kvm1"]["uplink"] == "***"
