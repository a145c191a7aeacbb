"""YAML input is bounded: alias bombs, recursive documents and huge files are refused at
once, before anything walks the data."""

from __future__ import annotations

import shlex
import time

import pytest

from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.extra_vars import parse_extra_vars
from vnetctl.playbook.loader import load_playbook
from vnetctl.yamlsrc import MAX_ALIAS_NODES, YamlTooLarge, load_yaml_file, load_yaml_text

REFUSAL_SECONDS = 0.5  # a bomb is refused from its composed nodes, without expanding it


def bomb(levels: int = 9, indent: str = "") -> str:
    """Nine aliases of nine aliases...: 9**levels strings once expanded (levels=9 is 387
    million: before the bound, planning a task that used it ran for minutes)."""
    lines = [f"{indent}l0: &l0 [" + ", ".join(['"lol"'] * 9) + "]"]
    lines += [
        f"{indent}l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)
    ]
    return "\n".join(lines) + "\n"


def refused_quickly(load) -> str:
    started = time.perf_counter()
    with pytest.raises(YamlTooLarge) as info:
        load()
    assert time.perf_counter() - started < REFUSAL_SECONDS
    return str(info.value)


def test_alias_bomb_in_an_inventory_is_refused_quickly(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    kvm1:\n  vars:\n" + bomb(indent="    "))
    message = refused_quickly(lambda: load_inventory(inventory))
    assert message.startswith(f"{inventory}: aliases expand this document by more than")
    assert "alias bomb" in message


def test_alias_bomb_in_group_vars_playbook_and_extra_vars(tmp_path):
    (tmp_path / "group_vars").mkdir()
    (tmp_path / "group_vars" / "all.yml").write_text(bomb())
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    kvm1:\n")
    assert "group_vars/all.yml" in refused_quickly(lambda: load_inventory(tmp_path / "hosts.yml"))

    book = tmp_path / "book.yml"
    book.write_text("- hosts: all\n  vars:\n" + bomb(indent="    ") + "  tasks: []\n")
    assert str(book) in refused_quickly(lambda: load_playbook(book, {}))

    (tmp_path / "vars.yml").write_text(bomb())
    refused_quickly(lambda: parse_extra_vars([f"@{tmp_path / 'vars.yml'}"]))
    inline = "{" + bomb().replace("\n", ", ").rstrip(", ") + "}"
    refused_quickly(lambda: parse_extra_vars([inline]))
    levels = ["&l0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 9)]
    refused_quickly(lambda: parse_extra_vars(["x=" + shlex.quote("[" + ", ".join(levels) + "]")]))


def test_recursive_document_is_refused_at_its_line():
    message = refused_quickly(lambda: load_yaml_text("a: 1\nb: &b [1, *b]\n", "r.yml"))
    assert message.startswith("r.yml:2: an alias refers to a node that contains it")


def test_ordinary_aliases_and_merge_keys_still_load():
    data = load_yaml_text(
        "base: &base {mtu: 9000, ports: &ports [eth1, eth2]}\n"
        "kvm1: {<<: *base, uplink: eth1}\n"
        "kvm2: {<<: *base, ports: *ports}\n",
        "ok.yml",
    )
    assert data["kvm1"] == {"mtu": 9000, "ports": ["eth1", "eth2"], "uplink": "eth1"}
    assert data["kvm2"]["ports"] == ["eth1", "eth2"]


def test_expansion_just_under_the_bound_loads():
    count = MAX_ALIAS_NODES // 2
    text = "x: &x [1]\nl: [" + ", ".join(["*x"] * (count // 2)) + "]\n"
    assert len(load_yaml_text(text, "ok.yml")["l"]) == count // 2


def test_a_file_above_the_size_bound_is_refused_before_reading(tmp_path, monkeypatch):
    monkeypatch.setattr("vnetctl.yamlsrc.MAX_YAML_BYTES", 1024)
    big = tmp_path / "big.yml"
    big.write_text("x: " + "a" * 2000 + "\n")
    with pytest.raises(InputError) as info:
        load_yaml_file(big)
    assert str(info.value) == (
        f"{big}: too large: more than 1024 bytes, the most vnetctl reads in one inventory, "
        "playbook or variables file"
    )
