"""The lab allocator's choices (vnetctl.lab.allocate), without a lab: a subnet nothing
holds, sized for the hosts; a conflict named by the lab that holds it; a process known by
PID and start time, so a reused PID is not taken for the owner."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys

from vnetctl.lab import allocate
from vnetctl.lab.allocate import UsedNetwork

NET = ipaddress.ip_network


def test_the_first_free_24_of_the_pool_is_taken():
    used = [UsedNetwork(NET("10.200.0.0/24"), "a"), UsedNetwork(NET("10.200.1.128/25"), "b")]
    assert allocate.free_subnet(3, used) == NET("10.200.2.0/24")


def test_a_route_over_the_whole_pool_start_pushes_past_it():
    used = [UsedNetwork(NET("10.200.0.0/22"), "the route to 10.200.0.0/22 (dev wg0)")]
    assert allocate.free_subnet(3, used) == NET("10.200.4.0/24")


def test_more_hosts_than_a_24_holds_get_a_larger_subnet():
    net = allocate.free_subnet(250, [])
    assert net.prefixlen == 23 and net.subnet_of(allocate.POOL)


def test_a_conflict_names_the_lab_that_holds_it_and_how_to_free_it():
    demo = UsedNetwork(NET("10.213.0.0/16"), "10.213.0.1/16 on vnldemo-m", "demo")
    found = allocate.subnet_conflict(NET("10.213.0.0/16"), "lab", [demo])
    assert found is demo
    message = allocate.conflict_message(NET("10.213.0.0/16"), found)
    assert "lab 'demo'" in message and "vnetctl lab down --name demo" in message
    assert "--subnet auto" in message


def test_a_labs_own_networks_are_no_conflict_for_it():
    own = UsedNetwork(NET("10.200.5.0/24"), "10.200.5.1/24 on vnlit1-m", "it1")
    assert allocate.subnet_conflict(NET("10.200.5.0/24"), "it1", [own]) is None


def test_a_conflict_with_no_lab_names_the_address_or_route():
    wg = UsedNetwork(NET("10.213.0.0/16"), "the route to 10.213.0.0/16 (dev wg0)")
    message = allocate.conflict_message(NET("10.213.0.0/24"), wg)
    assert "overlaps the route to 10.213.0.0/16 (dev wg0)" in message


def test_this_machines_addresses_and_routes_are_read():
    used = allocate.used_networks(labs=[])
    assert any(u.network.subnet_of(NET("127.0.0.0/8")) for u in used)  # lo's address


def test_an_owner_is_alive_while_its_process_is_and_not_after():
    assert allocate.owner_alive(allocate.owner_id(os.getpid()))
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    owner = allocate.owner_id(child.pid)
    child.wait()
    assert not allocate.owner_alive(owner)
    # a PID reused by another process has another start time
    assert not allocate.owner_alive({"pid": os.getpid(), "start": owner["start"] - 1})
