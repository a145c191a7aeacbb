"""ansible.cfg and ANSIBLE_* as ansible-core 2.19 finds and reads them (compared with
`ansible-config dump` on the same files), and what vnetctl's commands take from them:
the command line beats the environment, which beats the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.real_ansible import ansible, clean_env, needs_ansible
from vnetctl.ansible_cfg import find_config_file, load_ansible_config
from vnetctl.cli.common import (
    accept_new_host_keys,
    cli_defaults,
    forks,
    run_context,
    run_options,
)
from vnetctl.cli.main import main, parse_args
from vnetctl.errors import InputError

FULL = """\
[defaults]
forks = 7
remote_user = ops ; an inline comment, as Ansible reads it
host_key_checking = False
no_such_key = ignored, as Ansible ignores it
inventory = inv.yml, other.ini
private_key_file = keys/id
vault_password_file = ~/.vault-pass
vault_identity_list = prod@~/.prod-pass, dev@prompt
roles_path = r1:/abs/r2
timeout = 25
remote_port = 2022
[ssh_connection]
ssh_args = -o ControlMaster=no
[privilege_escalation]
become = yes
become_user = admin
become_method = sudo
[some_other_section]
x = 1
"""
# vnetctl's setting -> ansible-config's name
NAMES = {
    "forks": "DEFAULT_FORKS", "remote_user": "DEFAULT_REMOTE_USER",
    "host_key_checking": "HOST_KEY_CHECKING", "inventory": "DEFAULT_HOST_LIST",
    "private_key_file": "DEFAULT_PRIVATE_KEY_FILE", "timeout": "DEFAULT_TIMEOUT",
    "vault_password_file": "DEFAULT_VAULT_PASSWORD_FILE", "roles_path": "DEFAULT_ROLES_PATH",
    "become": "DEFAULT_BECOME", "become_user": "DEFAULT_BECOME_USER",
    "vault_identity_list": "DEFAULT_VAULT_IDENTITY_LIST", "remote_port": "DEFAULT_REMOTE_PORT",
    "become_method": "DEFAULT_BECOME_METHOD",
}  # fmt: skip


@pytest.fixture
def home(tmp_path: Path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    for name in [n for n in os.environ if n.startswith("ANSIBLE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    return home


def dumped(cwd: Path, env: dict[str, str]) -> dict[str, object]:
    out = ansible("ansible-config", "dump", "--only-changed", "-f", "json", cwd=cwd, env=env)
    return {item["name"]: item["value"] for item in json.loads(out.stdout) if "name" in item}


@needs_ansible
@pytest.mark.parametrize("where", ["cwd", "home", "ANSIBLE_CONFIG file", "ANSIBLE_CONFIG dir"])
def test_the_file_found_and_its_values_are_ansibles(home, where):
    work = Path.cwd()
    env = clean_env(home)
    folder = {"cwd": work, "home": home}.get(where, home.parent / "conf")
    folder.mkdir(exist_ok=True)
    path = folder / ("ansible.cfg" if where != "home" else ".ansible.cfg")
    path.write_text(FULL)
    if where.startswith("ANSIBLE_CONFIG"):
        env["ANSIBLE_CONFIG"] = str(path if where.endswith("file") else folder)
        (work / "ansible.cfg").write_text("[defaults]\nforks = 99\n")  # not read: env first
    env["ANSIBLE_REMOTE_USER"] = "from-env"  # the environment beats the file
    ours = load_ansible_config(env, work)
    assert ours.path == path
    theirs = {"DEFAULT_BECOME_METHOD": "sudo", **dumped(work, env)}  # sudo: a default
    ssh_args = ours.values.pop("ssh_args")  # the ssh plugin's: not in the base dump
    assert {k: theirs[v] for k, v in NAMES.items()} == ours.values
    assert ssh_args == "-o ControlMaster=no"
    assert ours.values["remote_user"] == "from-env" and ours.values["forks"] == 7


def test_order_of_the_search(home):
    work = Path.cwd()
    assert find_config_file({"HOME": str(home)}, work) is None
    (home / ".ansible.cfg").write_text("")
    assert find_config_file({"HOME": str(home)}, work) == home / ".ansible.cfg"
    (work / "ansible.cfg").write_text("")
    assert find_config_file({"HOME": str(home)}, work) == work / "ansible.cfg"
    work.chmod(0o777)  # world-writable: Ansible does not trust ./ansible.cfg there
    try:
        assert find_config_file({"HOME": str(home)}, work) == home / ".ansible.cfg"
    finally:
        work.chmod(0o755)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("forks = 3\n", 1, "malformed Ansible configuration: File contains no section headers"),
        ("[defaults]\nforks = 3\n  [x\nno equals sign here\n", 4, "malformed Ansible"),
        ("[defaults]\nforks = 3\nforks = 4\n", 3, "option 'forks' in section 'defaults' already"),
        ("[defaults]\n\nforks = many\n", 3, "forks must be an integer, got 'many'"),
        ("[privilege_escalation]\nbecome = maybe\n", 2, "become must be a boolean"),
    ],
)
def test_a_malformed_file_is_an_error_with_file_and_line(home, text, line, words):
    (Path.cwd() / "ansible.cfg").write_text(text)
    with pytest.raises(InputError) as info:
        load_ansible_config(dict(os.environ), Path.cwd())
    assert str(info.value).startswith(f"{Path.cwd() / 'ansible.cfg'}:{line}: ")
    assert words in str(info.value)


def test_command_line_beats_environment_beats_file(home, monkeypatch):
    (Path.cwd() / "ansible.cfg").write_text(FULL)
    args = parse_args(["facts", "-i", "x.yml"])
    assert forks(args) == 7 and accept_new_host_keys(args) is True
    assert cli_defaults(args) == {
        "vnetctl_user": "ops", "vnetctl_become": True, "vnetctl_become_user": "admin",
        "vnetctl_private_key_file": str(Path.cwd() / "keys/id"), "vnetctl_connect_timeout": 25,
        "vnetctl_port": 2022,
    }  # fmt: skip
    monkeypatch.setenv("ANSIBLE_FORKS", "9")
    monkeypatch.setenv("ANSIBLE_REMOTE_USER", "envuser")
    monkeypatch.setenv("ANSIBLE_BECOME", "false")
    assert forks(args) == 9
    assert cli_defaults(args)["vnetctl_user"] == "envuser"
    assert cli_defaults(args)["vnetctl_become"] is False
    args = parse_args(["facts", "-i", "x.yml", "-f", "3", "-u", "cli", "-b"])
    assert run_options(args, check=True).forks == 3
    assert cli_defaults(args)["vnetctl_user"] == "cli" and cli_defaults(args)["vnetctl_become"]


def test_host_key_checking_on_or_unset_accepts_no_new_keys(home, monkeypatch):
    args = parse_args(["facts", "-i", "x.yml"])
    assert accept_new_host_keys(args) is False
    monkeypatch.setenv("ANSIBLE_HOST_KEY_CHECKING", "True")
    assert accept_new_host_keys(args) is False


def test_forks_out_of_range_in_the_file_is_bad_input(home, capsys):
    (Path.cwd() / "ansible.cfg").write_text("[defaults]\nforks = 0\n")
    (Path.cwd() / "inv.yml").write_text("all:\n  hosts:\n    h1:\n")
    (Path.cwd() / "site.yml").write_text("- hosts: all\n  tasks: []\n")
    assert main(["run", "site.yml", "-i", "inv.yml"]) == 1
    err = capsys.readouterr().err
    assert f"forks ({Path.cwd() / 'ansible.cfg'}:2) is 0: outside 1..1000" in err


def test_roles_path_of_the_file_finds_a_role(home, capsys):
    work = Path.cwd()
    (work / "shared" / "base" / "tasks").mkdir(parents=True)
    (work / "shared" / "base" / "tasks" / "main.yml").write_text("[]\n")
    (work / "ansible.cfg").write_text("[defaults]\nroles_path = shared\ninventory = inv.yml\n")
    (work / "inv.yml").write_text("all:\n  hosts:\n    h1:\n")
    (work / "site.yml").write_text("- hosts: all\n  roles: [base]\n  tasks: []\n")
    assert main(["run", "site.yml", "--syntax-check"]) == 0, capsys.readouterr().err


def test_a_become_method_other_than_sudo_is_refused_where_become_is_on(home, monkeypatch):
    (Path.cwd() / "ansible.cfg").write_text("[privilege_escalation]\nbecome_method = su\n")
    assert "vnetctl_become" not in cli_defaults(parse_args(["facts", "-i", "x.yml"]))
    with pytest.raises(InputError) as info:
        cli_defaults(parse_args(["facts", "-i", "x.yml", "-b"]))
    assert str(info.value) == (
        f"become_method = su ({Path.cwd() / 'ansible.cfg'}:2): vnetctl becomes root with sudo only"
    )


def test_the_files_connection_settings_reach_hosts_below_their_inventory(home):
    work = Path.cwd()
    (work / "ansible.cfg").write_text(
        "[defaults]\nremote_user = cfguser\nremote_port = 2022\ntimeout = 25\n"
        "private_key_file = id_cfg\n"
    )
    (work / "inv.yml").write_text(
        "all:\n  hosts:\n    plain:\n    own: {ansible_user: ops, ansible_port: 2200}\n"
    )
    run = run_context(parse_args(["facts", "-i", "inv.yml"]), check=True)
    plain, own = run.spec("plain"), run.spec("own")
    assert (plain.user, plain.port, plain.connect_timeout) == ("cfguser", 2022, 25)
    assert plain.key_file == str(work / "id_cfg")
    assert (own.user, own.port) == ("ops", 2200)  # the inventory beats ansible.cfg


@pytest.mark.parametrize(
    "ssh_args",
    [
        "-o UserKnownHostsFile=kh/known -o StrictHostKeyChecking=yes",
        "-o ControlMaster=no -oUserKnownHostsFile=kh/known",
        "-o 'UserKnownHostsFile kh/known'",
    ],
)
def test_ssh_args_known_hosts_file_reaches_hosts_below_their_inventory(home, ssh_args):
    """Ansible's ssh connection checks host keys against the UserKnownHostsFile of
    [ssh_connection] ssh_args; vnetctl ignored it (~/.ssh/known_hosts): a project whose
    ansible.cfg names its known_hosts there was refused with 'host key unknown'."""
    work = Path.cwd()
    (work / "ansible.cfg").write_text(f"[ssh_connection]\nssh_args = {ssh_args}\n")
    (work / "inv.yml").write_text(
        "all:\n  hosts:\n    plain:\n    own: {vnetctl_known_hosts: /etc/own_known}\n"
    )
    run = run_context(parse_args(["facts", "-i", "inv.yml"]), check=True)
    assert run.spec("plain").known_hosts == "kh/known"  # as ssh reads it: from the cwd
    assert run.spec("own").known_hosts == "/etc/own_known"


def test_ssh_args_with_several_known_hosts_files_is_refused(home):
    (Path.cwd() / "ansible.cfg").write_text(
        "[ssh_connection]\nssh_args = -o 'UserKnownHostsFile=/a /b'\n"
    )
    with pytest.raises(InputError) as info:
        cli_defaults(parse_args(["facts", "-i", "x.yml"]))
    assert "UserKnownHostsFile names several files (/a /b)" in str(info.value)
    assert f"{Path.cwd() / 'ansible.cfg'}:2" in str(info.value)


@pytest.mark.parametrize(
    ("ssh_args", "accepts"),
    [
        ("-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null", True),
        ("-oStrictHostKeyChecking=accept-new", True),
        ("-o StrictHostKeyChecking=yes -o StrictHostKeyChecking=no", False),  # first wins
        ("-C -o ControlMaster=auto", False),
    ],
)
def test_ssh_args_strict_host_key_checking_off_accepts_new_keys(home, ssh_args, accepts):
    """Ansible's ssh connection connects to hosts not yet known where ssh_args says
    StrictHostKeyChecking=no; vnetctl refused them (and, reading ssh_args' known_hosts
    file, would now read /dev/null for the usual lab ssh_args above)."""
    (Path.cwd() / "ansible.cfg").write_text(f"[ssh_connection]\nssh_args = {ssh_args}\n")
    assert accept_new_host_keys(parse_args(["facts", "-i", "x.yml"])) is accepts
