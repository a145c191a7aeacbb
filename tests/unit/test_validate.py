"""Argument validation against Ansible-style specs: conversions, errors at the arg's line."""

from __future__ import annotations

import pytest
from fake_catalog import BRIDGE_SPEC
from hypothesis import given
from hypothesis import strategies as st

from vnetctl.errors import InputError, Location
from vnetctl.playbook.validate import validate_args

SPEC = {
    **BRIDGE_SPEC,
    "vlans": {"type": "list", "elements": "int"},
    "options": {"type": "dict"},
    "extra": {"type": "raw"},
    "untyped": {},
    "modes": {"type": "list", "elements": "str", "choices": ["a", "b"]},
}
LINES = {"name": 3, "mtu": 4, "stp": 5, "ports": 6, "state": 7, "vlans": 9}


def where_of(key: str | None) -> Location:
    return Location("book.yml", LINES.get(key, 2) if key else 2)


def check(**args):
    return validate_args("linux_bridge", SPEC, {"name": "br0", **args}, where_of, "task 't'")


def error(**args) -> str:
    with pytest.raises(InputError) as info:
        check(**args)
    return str(info.value)


@pytest.mark.parametrize(
    ("arg", "given_value", "expected"),
    [
        ("mtu", 9000, 9000),
        ("mtu", "9000", 9000),
        ("mtu", " 9000 ", 9000),
        ("mtu", 9000.0, 9000),
        ("stp", True, True),
        ("stp", "yes", True),
        ("stp", "True", True),
        ("stp", "on", True),
        ("stp", 1, True),
        ("stp", "no", False),
        ("stp", "false", False),
        ("stp", 0, False),
        ("forward_delay", 2, 2.0),
        ("forward_delay", "1.5", 1.5),
        ("name", 100, "100"),
        ("ports", ["eth1", "eth2"], ["eth1", "eth2"]),
        ("ports", "eth1, eth2", ["eth1", "eth2"]),
        ("ports", [], []),
        ("vlans", ["10", 20], [10, 20]),
        ("options", {"a": 1}, {"a": 1}),
        ("options", '{"a": 1}', {"a": 1}),
        ("extra", [1, {"b": None}], [1, {"b": None}]),
        ("untyped", 12, "12"),  # no type: str, as in Ansible
        ("modes", ["a", "b"], ["a", "b"]),
    ],
)
def test_conversions(arg, given_value, expected):
    result = check(**{arg: given_value})[arg]
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"mtu": 9000.5}, "book.yml:4: task 't': argument 'mtu' of module 'linux_bridge': "
                          "expected an integer, got 9000.5 (number)"),
        ({"mtu": "jumbo"}, "book.yml:4: task 't': argument 'mtu' of module 'linux_bridge': "
                           "expected an integer, got 'jumbo' (string)"),
        ({"mtu": True}, "expected an integer, got True (boolean)"),
        ({"stp": "maybe"}, "book.yml:5: task 't': argument 'stp' of module 'linux_bridge': "
                           "expected true or false (yes/no), got 'maybe' (string)"),
        ({"stp": 2}, "expected true or false"),
        ({"name": True}, "book.yml:3: task 't': argument 'name' of module 'linux_bridge': "
                         "expected a string, got True (boolean)"),
        ({"name": ["a"]}, "expected a string, got ['a'] (list)"),
        ({"ports": ["eth1", {"x": 1}]}, "book.yml:6: task 't': argument 'ports' of module "
                                        "'linux_bridge': item 2: expected a string, got "
                                        "{'x': 1} (mapping)"),
        ({"ports": {"eth1": 1}}, "expected a list, got {'eth1': 1} (mapping)"),
        ({"forward_delay": "soon"}, "expected a finite number, got 'soon' (string)"),
        ({"options": [1]}, "expected a mapping, got [1] (list)"),
        ({"state": "presnt"}, "book.yml:7: task 't': argument 'state' of module "
                              "'linux_bridge': 'presnt' is not one of: present, absent (did "
                              "you mean 'present'?)"),
        ({"modes": ["a", "c"]}, "'c' is not one of: a, b"),
        ({"vlans": ["ten"]}, "item 1: expected an integer, got 'ten' (string)"),
        ({"sttp": True}, "book.yml:2: task 't': unknown argument 'sttp' for module "
                         "'linux_bridge' (did you mean 'stp'?); known: extra, forward_delay, "
                         "modes, mtu, name, options, ports, state, stp, untyped, vlans"),
    ],
)  # fmt: skip
def test_bad_values_are_errors_at_the_arguments_line(args, expected):
    message = error(**args)
    assert expected in message, message


def test_missing_required_is_at_the_tasks_line():
    with pytest.raises(InputError) as info:
        validate_args("linux_bridge", SPEC, {"mtu": 1500}, where_of, "task 't'")
    assert str(info.value) == (
        "book.yml:2: task 't': missing required argument 'name' for module 'linux_bridge'"
    )
    with pytest.raises(InputError, match="'name' of module 'linux_bridge' is required"):
        validate_args("linux_bridge", SPEC, {"name": None}, where_of)


def test_defaults_filled_unset_left_out_null_means_unset():
    assert check() == {"name": "br0", "state": "present"}
    assert check(mtu=None, stp=False) == {"name": "br0", "stp": False, "state": "present"}
    assert check(state="absent")["state"] == "absent"
    assert check(vlans=["7"]) == {"name": "br0", "vlans": [7], "state": "present"}


def test_defaults_are_copies():
    spec = {"ports": {"type": "list", "default": []}}
    first = validate_args("m", spec, {}, where_of)
    first["ports"].append("x")
    assert validate_args("m", spec, {}, where_of) == {"ports": []}


def test_unknown_spec_type_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown type 'number'"):
        validate_args("m", {"x": {"type": "number"}}, {"x": 1}, where_of)


@given(st.integers(min_value=-(2**63), max_value=2**63))
def test_any_integer_survives_as_int_or_its_text(n):
    assert check(mtu=n)["mtu"] == n
    assert check(mtu=str(n))["mtu"] == n
    assert check(name=n)["name"] == str(n)
