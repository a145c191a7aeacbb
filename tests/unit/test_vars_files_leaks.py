"""A file of variables that is not one (a `vars_files` name reaching /etc/shadow by
`..` or a symlink, `-e @FILE`, a role's vars) is refused without quoting a line, key
or value of it; relative `vars_files` names stay inside the playbook's directory
(issue 31)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.extra_vars import parse_extra_vars
from vnetctl.playbook.loader import load_playbook

HASH = "$6$rounds=5000$sAlTsAlT$Zk3QhashHASHhash0123456789abcdef"
SHADOW = f"root:{HASH}:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
FRAGMENTS = ("root:", HASH, "sAlTsAlT", "daemon", "99999")


@pytest.fixture
def tree(tmp_path) -> Path:
    """tmp/etc/shadow (outside), tmp/site/book.yml (the playbook's directory)."""
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "shadow").write_text(SHADOW)
    (tmp_path / "site" / "vars").mkdir(parents=True)
    return tmp_path


def book(tree: Path, name: str) -> Path:
    path = tree / "site" / "book.yml"
    path.write_text(f"- hosts: all\n  vars_files: ['{name}']\n  tasks: []\n")
    return path


def refused(load) -> str:
    with pytest.raises(InputError) as info:
        load()
    message = str(info.value)
    for fragment in FRAGMENTS:
        assert fragment not in message, message
    return message


@pytest.mark.parametrize("name", ["../etc/shadow", "vars/../../etc/shadow"])
def test_a_relative_name_leaving_the_playbooks_directory_is_refused(tree, name):
    path = book(tree, name)
    message = refused(lambda: load_playbook(path, Catalog()))
    assert f"vars_files: {name} leads outside {tree / 'site'}" in message


def test_a_symlink_out_of_the_playbooks_directory_is_refused(tree):
    (tree / "site" / "vars" / "site.yml").symlink_to(tree / "etc" / "shadow")
    path = book(tree, "vars/site.yml")
    assert "leads outside" in refused(lambda: load_playbook(path, Catalog()))


def test_an_absolute_name_is_read_but_never_quoted(tree):
    path = book(tree, str(tree / "etc" / "shadow"))
    message = refused(lambda: load_playbook(path, Catalog()))
    assert message.startswith(f"{tree / 'etc' / 'shadow'}:1: play 'all': a vars file: the "
                              "variable name on this line is not usable")  # fmt: skip


def test_extra_vars_from_a_file_that_is_not_one_are_never_quoted(tree):
    message = refused(lambda: parse_extra_vars([f"@{tree / 'etc' / 'shadow'}"]))
    assert "not shown: a file of variables may hold secrets" in message


@pytest.mark.parametrize(
    "text",
    [
        f"password: *{HASH[3:9]}\n",  # an undefined alias: PyYAML names it
        f'secret: "{HASH}\\q"\n',  # an unknown escape: PyYAML quotes the character
        f"{HASH}: 1\n{HASH}: 2\n",  # a duplicate key
        f"a: 1\n\t{HASH}: 2\n",  # a tab
        f"!{HASH[3:12]} x: 1\n",  # an unknown tag
    ],
)
def test_yaml_errors_in_a_vars_file_give_line_and_column_only(tree, text):
    (tree / "site" / "vars" / "bad.yml").write_text(text)
    path = book(tree, "vars/bad.yml")
    message = refused(lambda: load_playbook(path, Catalog()))
    assert f"{tree / 'site' / 'vars' / 'bad.yml'}:" in message
    for fragment in (HASH[3:9], HASH[3:12], "\\q"):
        assert fragment not in message, message


def test_group_vars_that_are_not_variables_are_never_quoted(tree):
    (tree / "inv" / "group_vars").mkdir(parents=True)
    (tree / "inv" / "group_vars" / "all.yml").write_text(f"- {HASH}\n")
    (tree / "inv" / "hosts.yml").write_text("all:\n  hosts: {h1: }\n")
    message = refused(lambda: load_inventory(tree / "inv" / "hosts.yml"))
    assert "all.yml must be a mapping of variables, got a list" in message


def test_a_playbooks_own_vars_still_name_the_bad_variable(tree):
    """What an operator typed into the playbook itself is shown, as before."""
    path = tree / "site" / "book.yml"
    path.write_text("- hosts: all\n  vars: {vm-mtu: 1}\n  tasks: []\n")
    with pytest.raises(InputError, match="variable name 'vm-mtu' is not usable"):
        load_playbook(path, Catalog())
