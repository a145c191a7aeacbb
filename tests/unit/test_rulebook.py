"""One argument rulebook: the host library's (vnet_params) is the only one. The controller
applies it before any host is touched and adds only file:line and "did you mean"; what one
side accepts the other accepts, with the same value."""

from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError, Location
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook
from vnetctl.playbook.validate import check_literal_args, validate_args

CATALOG = Catalog()
host = CATALOG.host_lib()


def where_of(key: str | None) -> Location:
    return Location("book.yml", {"mtu": 4, "segments": 5, "port": 6}.get(key, 3) if key else 2)


def on_controller(spec: dict, args: dict):
    try:
        return validate_args("m", spec, args, where_of)
    except InputError:
        return "refused"


def on_host(spec: dict, args: dict):
    try:
        return host.normalize_params(spec, args)
    except host.ModuleError:
        return "refused"


RULES = [
    {"type": "int"},
    {"type": "float"},
    {"type": "bool"},
    {"type": "str"},
    {},  # no type: str on both sides, as in Ansible
    {"type": "list", "elements": "int"},
    {"type": "list", "elements": "str"},
    {"type": "dict"},
    {"type": "ifname"},
    {"type": "int", "range": [68, 65535]},
    {"type": "str", "choices": ["up", "down"]},
    {"type": "list", "elements": "dict", "options": {"vni": {"type": "int", "required": True}}},
]
WORDS = ["y", "n", "t", "f", "Yes", " on ", "1", "0", "1.0", "9000", " 9000 ", "9000.5", "up",
         "a,b", "", '{"a": 1}', "{bad", "eth0", "-v", "abcdefghijklmnop"]  # fmt: skip
VALUES = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from([True, False, 0, 1, 1.0, 0.0, 2, 9000, 9000.0, 9000.5, 70000, 67, -1]),
    st.sampled_from([[], [1, "2"], ["eth1", "eth2"], [{"vni": "5"}], [{"vni": 5, "x": 1}]]),
    st.sampled_from([{}, {"a": 1}, [True], [1.5]]),
    st.integers(),
    st.text(max_size=6),
)


@settings(max_examples=400, deadline=None)
@given(rule=st.sampled_from(RULES), value=VALUES)
def test_host_and_controller_accept_and_refuse_the_same_values(rule, value):
    spec = {"x": rule}
    controller, host_side = on_controller(spec, {"x": value}), on_host(spec, {"x": value})
    if controller == "refused" or host_side == "refused":
        assert controller == host_side, (rule, value, controller, host_side)
    else:
        assert controller["x"] == host_side["x"] and type(controller["x"]) is type(host_side["x"])


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        ({"type": "bool"}, "y", True),  # Ansible's words, now on the host too
        ({"type": "bool"}, "F", False),
        ({"type": "bool"}, 1.0, True),
        ({}, 12, "12"),  # the default type is str on both sides
        ({"type": "list"}, 5, [5]),
        ({"type": "dict"}, '{"a": 1}', {"a": 1}),
    ],
)
def test_conversions_the_host_did_not_know(rule, value, expected):
    assert host.normalize_params({"x": rule}, {"x": value})["x"] == expected


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ({"type": "int"}, 9000.5),  # int() used to truncate it to 9000
        ({"type": "int"}, True),  # used to pass through as True
        ({"type": "str"}, ["a"]),  # str() used to make "['a']" of it
        ({"type": "bool"}, 2),
    ],
)
def test_values_the_host_took_and_now_refuses(rule, value):
    with pytest.raises(host.ModuleError, match="argument x: expected"):
        host.normalize_params({"x": rule}, {"x": value})


def test_null_means_not_given_on_both_sides():
    spec = {"state": {"type": "str", "default": "present"}, "mtu": {"type": "int"}}
    assert host.normalize_params(spec, {"state": None}) == {"state": "present", "mtu": None}
    assert validate_args("m", spec, {"state": None, "mtu": None}, where_of) == {"state": "present"}


def test_aliases_are_refused_in_a_spec_on_both_sides():
    spec = {"vlans": {"type": "list", "aliases": ["vids"]}}
    with pytest.raises(ValueError, match="'vlans' has aliases"):
        host.normalize_params(spec, {"vids": [1]})
    with pytest.raises(ValueError, match="break under ansible-playbook"):
        validate_args("m", spec, {"vids": [1]}, where_of)
    with pytest.raises(ValueError, match="unknown rule key"):
        host.normalize_params({"x": {"type": "int", "no_log": True}}, {})


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_every_module_spec_is_in_the_rulebook(name):
    host.vnet_params.check_spec(CATALOG[name], name)


def test_controller_only_arguments_are_flagged_in_the_spec():
    flagged = {
        (module, arg)
        for module in CATALOG
        for arg, rule in CATALOG[module].items()
        if rule.get("controller")
    }
    assert flagged == {
        ("security_groups", "groups"),
        ("security_groups", "vms"),
        ("vxlan_mesh", "members"),
        ("vxlan_mesh", "vtep"),
        ("vxlan_mesh", "vtep_interface"),
    }


def refused(module: str, args: dict) -> str:
    with pytest.raises(InputError) as info:
        check_literal_args(module, CATALOG[module], args, where_of, "task 't'")
    return str(info.value)


@pytest.mark.parametrize(
    ("module", "args", "expected"),
    [
        ("link", {"name": "eth0", "mtu": 70000},
         "book.yml:4: task 't': argument 'mtu' of module 'link': 70000 is not within 68..65535"),
        ("link", {"name": "eth0", "mtu": 67}, "book.yml:4: task 't': argument 'mtu' of module "
                                             "'link': 67 is not within 68..65535"),
        ("linux_bridge", {"name": "br0", "mtu": "70000"}, "book.yml:4: task 't': argument 'mtu' "
                                                         "of module 'linux_bridge': 70000 is not"),
        ("linux_bridge", {"name": "br0", "priority": 65536}, "65536 is not within 0..65535"),
        ("vxlan_mesh", {"name": "m", "segments": [{"vni": 0, "bridge": "b"}]},
         "book.yml:5: task 't': argument 'segments' of module 'vxlan_mesh': item 1: vni: 0 is "
         "not within 1..16777215"),
        ("vxlan_mesh", {"name": "m", "segments": [{"vni": 1, "bridge": "b"},
                                                 {"vni": 16777216, "bridge": "c"}]},
         "item 2: vni: 16777216 is not within 1..16777215"),
        ("vxlan_mesh", {"name": "m", "segments": [{"vni": 1, "bridge": "b", "mtu": 70000}]},
         "item 1: mtu: 70000 is not within 68..65535"),
        ("vxlan_mesh", {"name": "m", "port": 65536}, "book.yml:6: task 't': argument 'port' of "
                                                    "module 'vxlan_mesh': 65536 is not within "
                                                    "1..65535"),
        ("vxlan_mesh", {"name": "m", "port": 0}, "0 is not within 1..65535"),
        ("link", {"name": "eth0:1"}, "book.yml:3: task 't': argument 'name' of module 'link': "
                                     "'eth0:1' is not a valid interface name: it contains ':'"),
        ("link", {"name": ".."}, "the kernel refuses '.' and '..'"),
        ("link", {"name": "a/b"}, "it contains '/'"),
        ("link", {"name": "a\x00b"}, "a NUL byte"),
        ("link", {"name": "sixteen-bytes-xx"}, "16 bytes long"),
    ],
)  # fmt: skip
def test_universal_ranges_are_refused_on_the_controller_at_the_line(module, args, expected):
    assert expected in refused(module, args)


def test_unknown_and_missing_keep_the_controllers_words():
    assert refused("link", {"name": "eth0", "mut": 1}) == (
        "book.yml:3: task 't': unknown argument 'mut' for module 'link' (did you mean 'mtu'?); "
        "known: admin_state, mtu, name"
    )
    assert "(did you mean 'down'?)" in refused("link", {"name": "eth0", "admin_state": "dwon"})
    assert refused("vxlan_mesh", {"name": "m", "segments": [{"vni": 1, "brigde": "b"}]}) == (
        "book.yml:5: task 't': argument 'segments' of module 'vxlan_mesh': item 1: unknown key "
        "'brigde' (did you mean 'bridge'?); known: bridge, mtu, vni"
    )
    assert refused("link", {"mtu": 1500}) == (
        "book.yml:2: task 't': missing required argument 'name' for module 'link'"
    )


def test_a_rendered_value_out_of_range_is_refused_per_host_before_any_host(tmp_path):
    (tmp_path / "hosts.yml").write_text(
        "all:\n  hosts:\n    kvm1: {jumbo: 9000}\n    kvm2: {jumbo: 70000}\n"
    )
    book = tmp_path / "book.yml"
    book.write_text(
        textwrap.dedent(
            """\
            - hosts: all
              tasks:
                - link: {name: eth1, mtu: "{{ jumbo }}"}
            """
        )
    )
    with pytest.raises(InputError) as info:
        plan_playbook(load_playbook(book, CATALOG), load_inventory(tmp_path / "hosts.yml"), CATALOG)
    assert str(info.value) == (
        f"{book}:3: play 'all' task 'link': host kvm2: argument 'mtu' of module 'link': "
        "70000 is not within 68..65535"
    )


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", float("nan"), float("inf")])
def test_nan_and_infinity_are_no_setting(value):
    with pytest.raises(host.ArgumentError, match="expected a finite number"):
        host.normalize_params({"x": {"type": "float"}}, {"x": value})
