"""`vnetctl inventory --list/--host/--graph`: the same text as the real ansible-inventory
(ansible-core 2.19) on the same sources, secrets shown as ***."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.unit.real_ansible import ansible, clean_env, needs_ansible
from vnetctl.cli.main import main

FIXTURES = Path(__file__).parent / "fixtures" / "inventories"
SOURCES = {
    "ini directory": ["-i", str(FIXTURES / "ini_dir")],
    "two sources": ["-i", str(FIXTURES / "ini_dir"), "-i", str(FIXTURES / "second")],
    "odd INI values": ["-i", str(FIXTURES / "ini_values")],
}
VIEWS = [
    ["--list"],
    ["--graph"],
    ["--graph", "--vars"],
    ["--graph", "dc"],
    ["--host", "kvm01"],
    ["--host", "lone"],
    ["--list", "--limit", "kvm:!kvm02"],
    ["--list", "--yaml"],
    ["--list", "--yaml", "--limit", "dc"],
]


def ours(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["inventory", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def theirs(tmp_path: Path, *argv: str) -> str:
    return ansible("ansible-inventory", *argv, cwd=tmp_path, env=clean_env(tmp_path)).stdout


@needs_ansible
@pytest.mark.parametrize("view", VIEWS, ids=" ".join)
@pytest.mark.parametrize("source", ["ini directory", "two sources"])
def test_same_text_as_ansible_inventory(tmp_path, capsys, source, view):
    code, out, _ = ours(capsys, *SOURCES[source], *view)
    assert code == 0
    assert out == theirs(tmp_path, *SOURCES[source], *view)


@needs_ansible
@pytest.mark.parametrize(
    "view", [["--list"], ["--list", "-y"], ["--graph", "--vars"]], ids=" ".join
)
def test_odd_values_printed_as_ansible_inventory_prints_them(tmp_path, capsys, view):
    code, out, _ = ours(capsys, *SOURCES["odd INI values"], *view)
    assert code == 0 and out == theirs(tmp_path, *SOURCES["odd INI values"], *view)


@needs_ansible
def test_secrets_are_stars_and_nothing_else_differs(tmp_path, capsys):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    h1:\n      ansible_become_password: s3cret-Pw\n"
        '      note: "{{ ansible_become_password }}"\n      mtu: 9000\n'
    )
    for view in (["--list"], ["--list", "--yaml"], ["--host", "h1"], ["--graph", "--vars"]):
        code, out, _ = ours(capsys, "-i", str(inventory), *view)
        assert code == 0 and "s3cret-Pw" not in out
        real = theirs(tmp_path, "-i", str(inventory), *view)
        stars = "'***'" if "--yaml" in view else "***"  # a bare *** is a YAML alias
        assert out == real.replace("s3cret-Pw", stars)


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--host", "nope"], "no host 'nope' in the inventory"),
        (["--graph", "nope"], "--graph: no group 'nope'"),
        (["--list", "--vars"], "--vars goes with --graph"),
        (["--host", "kvm01", "--limit", "kvm"], "--limit goes with --list"),
        (["--list", "dc"], "a GROUP goes with --graph"),
        (["--graph", "--yaml"], "--yaml goes with --list"),
    ],
)
def test_bad_input_is_one_line_exit_1(capsys, argv, words):
    code, out, err = ours(capsys, *SOURCES["ini directory"], *argv)
    assert (code, out) == (1, "") and words in err


def test_list_reads_back_as_an_inventory(tmp_path, capsys):
    """The --list JSON is itself an inventory source (the shape vnetctl reads)."""
    code, out, _ = ours(capsys, *SOURCES["two sources"], "--list")
    (tmp_path / "listed.json").write_text(out)
    assert ours(capsys, "-i", str(tmp_path / "listed.json"), "--list")[1] == out
    assert json.loads(out)["_meta"]["hostvars"]["kvm01"]["mtu"] == 9000


def test_a_secret_value_copied_under_another_name_is_hidden_and_yaml_stays_yaml(tmp_path, capsys):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  hosts:\n    h1:\n      ansible_password: s3cret-Pw\n      copy: s3cret-Pw\n"
    )
    code, out, _ = ours(capsys, "-i", str(inventory), "--list", "--yaml")
    assert code == 0 and "s3cret-Pw" not in out
    assert yaml.safe_load(out)["all"]["children"]["ungrouped"]["hosts"]["h1"] == {
        "ansible_password": "***",
        "copy": "***",
    }
