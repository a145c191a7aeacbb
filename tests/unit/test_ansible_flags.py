"""ansible-playbook's flags: -u, -b/--become, --become-user (below every variable, as in
Ansible), --syntax-check (everything checked, no host contacted), and for the flags
vnetctl lacks, one line naming what to use instead of the whole usage."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnetctl.cli.ansible_flags import NEAREST
from vnetctl.cli.main import main

BOOK = "- hosts: kvm\n  tasks:\n    - link: {name: eth1, mtu: 1500}\n"
# 192.0.2.0/24 is TEST-NET-1: nothing answers there, a contact attempt would hang or fail
INVENTORY = "[kvm]\nkvm1 ansible_host=192.0.2.1\nkvm2 ansible_host=192.0.2.2 ansible_user=ops\n"


@pytest.fixture
def files(tmp_path: Path) -> tuple[str, str, str]:
    (tmp_path / "book.yml").write_text(BOOK)
    (tmp_path / "hosts").write_text(INVENTORY)
    return str(tmp_path / "book.yml"), "-i", str(tmp_path / "hosts")


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("flag", sorted(NEAREST))
def test_ansible_flags_vnetctl_lacks_get_one_line(capsys, files, flag):
    code, out, err = cli(capsys, "run", *files, flag, "x")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "usage:" not in err, err
    assert f"{flag} is an ansible-playbook option vnetctl does not have: " in err


def test_unknown_flags_still_get_the_usage(capsys, files):
    code, _, err = cli(capsys, "run", *files, "--no-such-flag")
    assert code == 1 and "usage:" in err


def test_syntax_check_contacts_no_host(capsys, files):
    code, out, err = cli(capsys, "run", *files, "--syntax-check")
    assert (code, err) == (0, ""), err
    assert "syntax and inputs OK, no host contacted" in out


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["-e", "ansible_port=ssh"], "expected a port number"),
        (["-e", "vnetctl_timeout=soon"], "or a duration"),
        (["--limit", "nope"], "nope"),
    ],
)
def test_syntax_check_refuses_bad_input(capsys, files, extra, words):
    code, out, err = cli(capsys, "run", *files, "--syntax-check", *extra)
    assert code == 1 and words in err and "OK" not in out


def test_syntax_check_refuses_a_bad_task(capsys, files, tmp_path):
    (tmp_path / "book.yml").write_text("- hosts: kvm\n  tasks:\n    - link: {name: eth1, mtu: x}\n")
    code, _, err = cli(capsys, "run", *files, "--syntax-check")
    assert code == 1 and "book.yml:3" in err


def specs_with(files, *argv: str):
    from vnetctl.cli.common import run_context
    from vnetctl.cli.main import parse_args

    run = run_context(parse_args(["run", *files, *argv]), check=True)
    return run.spec("kvm1"), run.spec("kvm2")


def test_user_and_become_flags_are_defaults_below_every_variable(files):
    kvm1, kvm2 = specs_with(files)
    assert (kvm1.user, kvm2.user, kvm1.become) == (None, "ops", False)
    kvm1, kvm2 = specs_with(files, "-u", "admin", "-b", "--become-user", "netops")
    assert (kvm1.user, kvm2.user) == ("admin", "ops")  # the inventory's ansible_user wins
    assert (kvm1.become, kvm1.become_user) == (True, "netops")
    kvm1, kvm2 = specs_with(files, "-u", "admin", "-e", "vnetctl_user=x ansible_become=false")
    assert (kvm1.user, kvm2.user, kvm1.become) == ("x", "x", False)
