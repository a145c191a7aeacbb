"""Names checked on the controller, with the host library's own rule, before any host is
touched: interface names (also nested, as a mesh segment's bridge) and mesh names."""

from __future__ import annotations

import pytest

from vnetctl.catalog import Catalog
from vnetctl.errors import InputError, Location
from vnetctl.playbook.validate import check_literal_args, validate_args

CATALOG = Catalog()
LINES = {"name": 4, "ports": 5, "segments": 6}


def where_of(key: str | None) -> Location:
    return Location("book.yml", LINES.get(key, 3) if key else 3)


def refused(module: str, args: dict) -> str:
    with pytest.raises(InputError) as info:
        validate_args(module, CATALOG[module], args, where_of, "task 't'")
    return str(info.value)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("brz type bridge\nnetns add x\nnetns exec x /bin/sh -c 'id > /tmp/f'", "a newline"),
        ("-v", "starts with '-'"),
        ("help", "'help' is an iproute2 keyword"),
        ("brü", "contains 'ü'"),
        ("br#x", "contains '#'"),
        ("abcdefghijklmnop", "16 bytes long"),
    ],
)
def test_a_bad_bridge_name_is_refused_at_its_line(name, why):
    text = refused("linux_bridge", {"name": name})
    assert "book.yml:4" in text and "argument 'name' of module 'linux_bridge'" in text
    assert "is not a valid interface name" in text and why in text


def test_bad_port_names_are_refused_with_the_item():
    text = refused("linux_bridge", {"name": "br0", "ports": ["eth1", "-v"]})
    assert "book.yml:5" in text and "item 2: '-v' is not a valid interface name" in text


def test_a_segment_bridge_is_checked_inside_the_list():
    segments = [{"vni": 100, "bridge": "br-vx100"}, {"vni": 200, "bridge": "br0\nnetns add x"}]
    text = refused("vxlan_mesh", {"name": "m", "segments": segments})
    assert "book.yml:6" in text and "item 2: bridge: 'br0\\nnetns add x'" in text
    assert "contains a newline" in text


def test_segments_are_typed_and_unknown_keys_refused():
    checked = validate_args(
        "vxlan_mesh",
        CATALOG["vxlan_mesh"],
        {"name": "m", "segments": [{"vni": "100", "bridge": "br-vx100", "mtu": "1450"}]},
        where_of,
    )
    assert checked["segments"] == [{"vni": 100, "bridge": "br-vx100", "mtu": 1450}]
    text = refused("vxlan_mesh", {"name": "m", "segments": [{"vni": 1, "brigde": "b"}]})
    assert "unknown key 'brigde' (did you mean 'bridge'?)" in text
    text = refused("vxlan_mesh", {"name": "m", "segments": [{"vni": 1}]})
    assert "missing required key 'bridge'" in text


def test_mesh_names_are_one_plain_token():
    text = refused("vxlan_mesh", {"name": 'ten"ants'})
    assert "book.yml:4" in text and "is not a valid mesh name" in text


def test_literal_names_are_refused_at_load_time_too():
    with pytest.raises(InputError, match="is not a valid interface name"):
        check_literal_args("link", CATALOG["link"], {"name": "-v", "mtu": 1500}, where_of)
    # a templated value waits for rendering
    check_literal_args("link", CATALOG["link"], {"name": "{{ nic }}"}, where_of)
