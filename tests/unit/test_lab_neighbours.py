"""Big labs: the neighbour table's limits raised for every lab's hosts and put back when
the last lab is down (vnetctl.lab.neighbours, on a stand-in for /proc/sys), and the host
count capped by what the kernel holds (bridge ports, link names)."""

from __future__ import annotations

import pytest

from vnetctl.errors import InputError
from vnetctl.lab import neighbours
from vnetctl.lab.state import MAX_HOSTS, validate_hosts


@pytest.fixture
def sysctl(tmp_path):
    folder = tmp_path / "neigh"
    folder.mkdir()
    for name, value in (("gc_thresh1", 128), ("gc_thresh2", 512), ("gc_thresh3", 1024)):
        (folder / name).write_text(f"{value}\n")
    return folder


def test_limits_grow_with_the_labs_and_come_back_when_none_is_left(sysctl, tmp_path):
    found = tmp_path / "found.json"
    assert neighbours.fit(500, sysctl, found) == {"gc_thresh2": 1512, "gc_thresh3": 2024}
    assert neighbours.fit(520, sysctl, found) == {"gc_thresh2": 1552, "gc_thresh3": 2064}
    assert neighbours.fit(20, sysctl, found) == {"gc_thresh2": 552, "gc_thresh3": 1064}
    assert found.exists()
    assert neighbours.fit(0, sysctl, found) == {"gc_thresh2": 512, "gc_thresh3": 1024}
    assert not found.exists()
    assert (sysctl / "gc_thresh1").read_text() == "128\n"  # never touched


def test_the_values_found_are_those_before_any_lab(sysctl, tmp_path):
    found = tmp_path / "found.json"
    neighbours.fit(100, sysctl, found)
    (sysctl / "gc_thresh3").write_text("1224\n")  # as this module left it: not "found"
    assert neighbours.fit(0, sysctl, found)["gc_thresh3"] == 1024


def test_host_count_bounded_by_bridge_ports_and_link_names():
    assert validate_hosts(MAX_HOSTS, "bn") == MAX_HOSTS
    validate_hosts(999, "abcdef")  # vnlabcdef-999e2: 15 characters
    with pytest.raises(InputError, match="at most 5 characters"):
        validate_hosts(1000, "abcdef")
    with pytest.raises(InputError, match="use 1 to 1000"):
        validate_hosts(1001, "bn")
