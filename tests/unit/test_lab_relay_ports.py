"""The relay's ports and config (vnetctl.lab.relay_process), without a lab: recorded
ports are kept, new ones are free and distinct, and the config routes each port to
its host's sshd."""

from __future__ import annotations

import ipaddress
import json
import socket
import zlib

from vnetctl.lab import relay_process
from vnetctl.lab.state import LabState, new_host


def state(tmp_path, hosts: int = 3, name: str = "rp1") -> LabState:
    net = ipaddress.ip_network("10.240.0.0/24")
    lab = LabState(name=name, subnet=str(net), gateway="10.240.0.1", state_dir=tmp_path,
                   bridges=[], rtt_ms=25.0)  # fmt: skip
    lab.hosts = [new_host(name, i, net, tmp_path) for i in range(1, hosts + 1)]
    return lab


def test_recorded_ports_are_kept_and_new_ones_are_distinct(tmp_path):
    lab = state(tmp_path)
    lab.hosts[1].relay_port = 29999
    relay_process.assign_ports(lab)
    ports = [h.relay_port for h in lab.hosts]
    assert ports[1] == 29999 and len(set(ports)) == 3
    assert all(relay_process.PORTS.start <= p < relay_process.PORTS.stop for p in ports)
    relay_process.assign_ports(lab)  # again: nothing moves
    assert [h.relay_port for h in lab.hosts] == ports


def test_a_port_in_use_is_skipped(tmp_path):
    lab = state(tmp_path, hosts=1, name="rp2")
    ports = relay_process.PORTS
    first = ports.start + (zlib.crc32(b"rp2") % len(ports) + 1) % len(ports)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", first))
        busy.listen()
        relay_process.assign_ports(lab)
    assert lab.hosts[0].relay_port not in (None, first)


def test_the_config_routes_each_port_to_its_hosts_sshd(tmp_path):
    lab = state(tmp_path, hosts=2)
    relay_process.assign_ports(lab)
    config = json.loads(relay_process.config_text(lab))
    assert config["rtt_ms"] == 25.0 and config["log"] == str(lab.relay_log)
    assert config["routes"] == [
        {"host": h.name, "listen": ["127.0.0.1", h.relay_port], "target": [h.address, 22]}
        for h in lab.hosts
    ]
    relay_process.clear_ports(lab)
    assert [h.relay_port for h in lab.hosts] == [None, None]
    assert [h.ssh_endpoint for h in lab.hosts] == [(h.address, 22) for h in lab.hosts]
