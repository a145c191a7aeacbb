"""Host patterns (a play's `hosts:`, --limit): Ansible's syntax, our stricter errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnetctl.errors import InputError, Location
from vnetctl.inventory.loader import build_inventory, load_inventory
from vnetctl.inventory.model import Inventory
from vnetctl.inventory.patterns import split_pattern

FLEET = {
    "all": {
        "hosts": {"mgmt1": None},
        "children": {
            "kvm": {
                "children": {
                    "rack1": {"hosts": {"rack1-h1": None, "rack1-h2": None}},
                    "rack2": {"hosts": {"rack2-h1": None, "rack2-h2": None}},
                }
            },
            "storage": {"hosts": {"rack2-h2": None, "rack1-h2": None, "nas1": None}},
            "empty": None,
        },
    }
}


@pytest.fixture
def inv() -> Inventory:
    return build_inventory(FLEET, "fleet.yml")


def names(inv: Inventory, pattern, limit=None) -> list[str]:
    return [h.name for h in inv.select(pattern, limit)]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("all", ["mgmt1", "rack1-h1", "rack1-h2", "rack2-h1", "rack2-h2", "nas1"]),
        ("*", ["mgmt1", "rack1-h1", "rack1-h2", "rack2-h1", "rack2-h2", "nas1"]),
        ("rack1-h2", ["rack1-h2"]),
        ("kvm", ["rack1-h1", "rack1-h2", "rack2-h1", "rack2-h2"]),
        ("storage", ["rack1-h2", "rack2-h2", "nas1"]),  # inventory order, not group order
        ("rack2,mgmt1", ["mgmt1", "rack2-h1", "rack2-h2"]),
        ("rack2:mgmt1", ["mgmt1", "rack2-h1", "rack2-h2"]),
        ("kvm:!storage", ["rack1-h1", "rack2-h1"]),
        ("kvm:&storage", ["rack1-h2", "rack2-h2"]),
        ("!storage:kvm", ["rack1-h1", "rack2-h1"]),  # exclusions apply last, as in Ansible
        ("&storage,kvm", ["rack1-h2", "rack2-h2"]),
        ("rack1,rack2:!storage", ["rack1-h1", "rack2-h1"]),  # commas and colons mixed
        ("!kvm", ["mgmt1", "nas1"]),  # only exclusions: from `all`
        ("rack?-h1", ["rack1-h1", "rack2-h1"]),
        ("rack*-h[!1]", ["rack1-h2", "rack2-h2"]),  # a glob class (h[2] is a subscript)
        ("rack*", ["rack1-h1", "rack1-h2", "rack2-h1", "rack2-h2"]),  # groups and hosts
        ("stor*", ["rack1-h2", "rack2-h2", "nas1"]),  # a glob on group names
        ("~rack[12]-h1$", ["rack1-h1", "rack2-h1"]),
        ("~(mgmt|nas)", ["mgmt1", "nas1"]),
        ("empty", []),  # a known group with no host is fine
        ("ungrouped", ["mgmt1"]),
        (["rack1", "nas1"], ["rack1-h1", "rack1-h2", "nas1"]),
        (" rack1 , nas1 ", ["rack1-h1", "rack1-h2", "nas1"]),
    ],
)
def test_patterns(inv, pattern, expected):
    assert names(inv, pattern) == expected


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        ("rack1", ["rack1-h1", "rack1-h2"]),
        ("rack*-h1", ["rack1-h1", "rack2-h1"]),
        ("kvm,!rack2-h1", ["rack1-h1", "rack1-h2", "rack2-h2"]),
        ("!storage", ["rack1-h1", "rack2-h1"]),
        ("nas1", []),  # known, but not in the play's hosts
        ("rack1:&storage", ["rack1-h2"]),
    ],
)
def test_limit_restricts_the_pattern(inv, limit, expected):
    assert names(inv, "kvm", limit) == expected


def test_limit_from_file(inv, tmp_path):
    listing = tmp_path / "retry"
    listing.write_text("# failed last time\nrack1-h1\n\nrack2*  # and rack2\n")
    assert names(inv, "all", f"@{listing}") == ["rack1-h1", "rack2-h1", "rack2-h2"]
    listing.write_text("rack1-h1\nrakc2\n")
    with pytest.raises(InputError) as info:
        inv.select("all", f"@{listing}")
    assert str(info.value).startswith(f"{listing}:2: --limit: unknown host pattern 'rakc2'")
    with pytest.raises(InputError, match="cannot read --limit file"):
        inv.select("all", f"@{tmp_path / 'missing'}")


@pytest.mark.parametrize("pattern", ["kvn", "kvm,rack3", "kvm:!rack3", "kvm:&nope", "zz*", "~^zz"])
def test_unknown_term_is_an_error(inv, pattern):
    with pytest.raises(InputError, match=r"unknown host pattern '"):
        inv.select(pattern)


@pytest.mark.parametrize(
    ("pattern", "same_as"),
    [("all,", "all"), ("rack1-h1,", "rack1-h1"), (",storage", "storage"),
     ("rack1,,nas1", "rack1,nas1"), ("kvm:,!storage", "kvm:!storage")],
)  # fmt: skip
def test_empty_terms_are_dropped_as_ansible_does(inv, pattern, same_as):
    """Ansible's split_host_pattern drops empty terms: `host1,` (the ad-hoc idiom) means
    host1, and `all,` means all; a pattern with no term at all is still an error."""
    assert names(inv, pattern) == names(inv, same_as) != []


def test_unknown_term_suggests_close_names_and_says_where(inv):
    at = Location("book.yml", 3)
    with pytest.raises(InputError) as info:
        inv.select("rack1,rak2", where=at, context="play 'x'")
    assert str(info.value).startswith(
        "book.yml:3: play 'x': unknown host pattern 'rak2' (did you mean 'rack2'"
    )


def test_unknown_limit_is_an_error_not_a_warning(inv):
    with pytest.raises(InputError) as info:
        inv.select("all", "rack1-h9")
    assert str(info.value).startswith("--limit: unknown host pattern 'rack1-h9'")


def test_bad_regex_and_empty_pattern(inv):
    with pytest.raises(InputError, match="invalid regex"):
        inv.select("~rack[")
    with pytest.raises(InputError, match="empty host pattern"):
        inv.select(" , ")


def test_split_pattern():
    assert split_pattern("a,b:c") == ["a", "b", "c"]  # Ansible: ["a", "b:c"]
    assert split_pattern("a,~b:c") == ["a", "~b:c"]
    assert split_pattern("a:b:!c") == ["a", "b", "!c"]
    assert split_pattern("r[0:9]:x") == ["r[0:9]", "x"]
    assert split_pattern("~a:b") == ["~a:b"]
    assert split_pattern("fe80::1", names=["fe80::1"]) == ["fe80::1"]


def test_ipv6_host_name(tmp_path: Path):
    path = tmp_path / "hosts.yml"
    path.write_text("all:\n  hosts:\n    'fe80::1':\n    kvm1:\n")
    inv = load_inventory(path)
    assert names(inv, "fe80::1") == ["fe80::1"]


# --- the algebra, over random inventories ------------------------------------------------

HOSTS = [f"h{i}" for i in range(8)]
GROUPS = [f"g{i}" for i in range(4)]


@st.composite
def inventories(draw) -> Inventory:
    hosts = draw(st.lists(st.sampled_from(HOSTS), min_size=1, unique=True))
    children = {}
    for group in GROUPS:
        members = draw(st.lists(st.sampled_from(hosts), unique=True))
        children[group] = {"hosts": dict.fromkeys(members)} if members else None
    data = {"all": {"hosts": dict.fromkeys(hosts), "children": children}}
    return build_inventory(data, "random.yml")


def members(inv: Inventory, name: str) -> set[str]:
    return set(inv.groups[name].hosts) if name in inv.groups else {name}


def terms(inv: Inventory):
    return st.sampled_from([*GROUPS, *inv.hosts])


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_union_intersection_exclusion_algebra(data):
    inv = data.draw(inventories())
    a, b, c = (data.draw(terms(inv)) for _ in range(3))
    every = list(inv.hosts)

    def ordered(found: set[str]) -> list[str]:
        return [h for h in every if h in found]

    sa, sb, sc = members(inv, a), members(inv, b), members(inv, c)
    assert names(inv, f"{a},{b}") == ordered(sa | sb) == names(inv, f"{b}:{a}")
    assert names(inv, f"{a}:&{b}") == ordered(sa & sb)
    assert names(inv, f"{a}:!{b}") == ordered(sa - sb) == names(inv, f"!{b},{a}")
    assert names(inv, f"!{b}") == ordered(set(every) - sb)
    assert names(inv, f"{a},{b}:&{c}") == ordered((sa | sb) & sc)
    assert names(inv, f"{a}:{b}:!{c}") == ordered((sa | sb) - sc)
    assert names(inv, a, limit=b) == names(inv, f"{a}:&{b}")
    assert names(inv, f"{a}:!{a}") == []
    assert names(inv, "all") == every
