"""`-e` extra vars: key=value with YAML types, inline mappings, @files; errors with file
and line."""

from __future__ import annotations

import pytest

from vnetctl.errors import InputError
from vnetctl.playbook.extra_vars import parse_extra_vars


def test_extra_vars_key_value_types():
    values = ["vm_mtu=1500 name='br vm' flag=true", "ports=[eth1,eth2] e= z=010 t=1:30 f=1.5"]
    assert parse_extra_vars(values) == {
        "vm_mtu": 1500, "name": "br vm", "flag": True, "ports": ["eth1", "eth2"], "e": "",
        "z": "010", "t": "1:30", "f": 1.5,
    }  # fmt: skip
    assert parse_extra_vars("s='\"9000\"' msg='a: b' n=null o=off") == {
        "s": "9000", "msg": "a: b", "n": None, "o": False,
    }  # fmt: skip
    assert parse_extra_vars(["a=1", "a=2"]) == {"a": 2}
    assert parse_extra_vars(None) == {}


def test_extra_vars_inline_and_files(tmp_path):
    assert parse_extra_vars(['{"a": 1, "b": [2]}', "{c: yes}"]) == {"a": 1, "b": [2], "c": True}
    (tmp_path / "v.yml").write_text("vm_mtu: 1500\nuplink: eth3\n")
    (tmp_path / "v.json").write_text('{"vm_mtu": 1400}')
    assert parse_extra_vars([f"@{tmp_path}/v.yml", f"@{tmp_path}/v.json"]) == {
        "vm_mtu": 1400, "uplink": "eth3",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.yml", "a: 1\nb: [2\n", "bad.yml:3: YAML syntax error"),
        ("list.yml", "- a\n- b\n", "list.yml:1: -e @"),
        ("dup.yml", "a: 1\na: 2\n", "dup.yml:2: duplicate key (first defined at line 1)"),
        ("key.yml", "a: 1\nvm-mtu: 2\n", "key.yml:2: -e @key.yml: the variable name on"),
    ],
)
def test_extra_vars_file_errors_have_file_and_line(tmp_path, name, text, expected):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError) as info:
        parse_extra_vars([f"@{tmp_path}/{name}"])
    assert str(info.value).replace(f"{tmp_path}/", "").startswith(expected), str(info.value)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("novalue", "-e: expected key=value"),
        ("vm-mtu=1", "-e: expected key=value"),
        ("a='open", "-e: cannot split"),
        (
            "@/nonexistent/vars.yml",
            "/nonexistent/vars.yml: extra-vars file not found (-e @/nonexistent/vars.yml)",
        ),
        ("{a: [1}", "-e:1: YAML syntax error"),
    ],
)
def test_extra_vars_errors(value, words):
    with pytest.raises(InputError) as info:
        parse_extra_vars([value])
    assert str(info.value).startswith(words), str(info.value)
