"""A VM on a lab host whose uplink is shaped, and UDP load beyond a class's limit, for the
tests of shaping counters (test_stats_shaping_lab, test_prometheus_alerts_lab).

The VM is a network namespace of the test's own (named from its pid) whose eth0 is a
veth to `vnet0` on the host, bridged there with eth1 (`br-vm`): what the VM sends to the
other host leaves the shaped eth1 as bridged traffic, which no socket holds back, so a
class beyond its limit drops it (traffic a host sends itself waits in its socket
instead: overlimits, no drops). Addresses are on the lab's own segment bridge, which
nothing outside the lab reaches."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.labhosts import wait_until
from vnetctl.lab import LabState

NET = "198.51.100"  # TEST-NET-2 on the lab's segment s1: the VM .50, the other host .2
PORT = 5301  # the capped class's traffic
LIMIT = 10  # Mbit/s
SPEED = 100
IPERF_TIMEOUT = 20


def in_ns(namespace: str, *argv: str, timeout: float = 30) -> str:
    done = subprocess.run(["ip", "netns", "exec", namespace, *argv], capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip
    assert done.returncode == 0, (argv, done.stderr)
    return done.stdout


def shaping_playbook(path: Path, host: str) -> Path:
    """eth1 of `host` at 100 Mbit/s: `storage` (UDP to PORT) capped at LIMIT, `vm` the rest."""
    classes = [{"name": "storage", "limit": LIMIT, "match": [{"protocol": "udp", "dport": PORT}]},
               {"name": "vm", "shares": "high"}]  # fmt: skip
    task = {"name": "eth1", "speed": SPEED, "classes": classes}
    path.write_text(json.dumps([{"hosts": host, "tasks": [{"traffic_shaping": task}]}]))
    return path


@contextmanager
def vm_behind(lab: LabState, host: str, other: str) -> Iterator[str]:
    """A VM bridged with `host`'s eth1; `other` at NET.2 on the segment. Yields the VM's
    namespace; removes it, and the bridge, afterwards."""
    name = f"vnlvm{os.getpid() % 100000}"
    ns, other_ns = lab.host(host).namespace, lab.host(other).namespace
    subprocess.run(["ip", "netns", "del", name], capture_output=True)  # an earlier run's
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        in_ns(ns, "ip", "link", "add", "vnet0", "type", "veth", "peer", "name", "eth0",
              "netns", name)  # fmt: skip
        for command in ("link add br-vm type bridge", "link set eth1 master br-vm",
                        "link set vnet0 master br-vm", "link set vnet0 up",
                        "link set br-vm up"):  # fmt: skip
            in_ns(ns, "ip", *command.split())
        in_ns(name, "ip", "addr", "add", f"{NET}.50/24", "dev", "eth0")
        in_ns(name, "ip", "link", "set", "eth0", "up")
        in_ns(other_ns, "ip", "addr", "add", f"{NET}.2/24", "dev", "eth1")
        ping = ["ip", "netns", "exec", name, "ping", "-c", "1", "-W", "1", f"{NET}.2"]
        wait_until(lambda: subprocess.run(ping, capture_output=True, timeout=10).returncode == 0,
                   20, "the VM to reach the other host")  # fmt: skip
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "del", "br-vm"],
                       capture_output=True)  # fmt: skip
        subprocess.run(["ip", "netns", "exec", other_ns, "ip", "addr", "del", f"{NET}.2/24",
                        "dev", "eth1"], capture_output=True)  # fmt: skip


def udp_load(vm: str, server_ns: str, mbit: int, seconds: int) -> dict:
    """UDP from the VM to NET.2:PORT at `mbit` for `seconds`; iperf3's JSON summary."""
    with subprocess.Popen(["ip", "netns", "exec", server_ns, "timeout", str(IPERF_TIMEOUT),
                           "iperf3", "-s", "-1", "-p", str(PORT)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as server:  # fmt: skip
        try:
            wait_until(lambda: f":{PORT} " in in_ns(server_ns, "ss", "-Hltn"), 5,
                       "iperf3 to listen")  # fmt: skip
            done = subprocess.run(
                ["ip", "netns", "exec", vm, "timeout", str(IPERF_TIMEOUT), "iperf3", "-c",
                 f"{NET}.2", "-p", str(PORT), "-u", "-b", f"{mbit}M", "-t", str(seconds), "-J"],
                capture_output=True, text=True, timeout=IPERF_TIMEOUT + 5)  # fmt: skip
        finally:
            server.kill()
            server.wait()
    assert done.returncode == 0, done.stdout[-400:] + done.stderr[-400:]
    return json.loads(done.stdout)["end"]["sum"]
