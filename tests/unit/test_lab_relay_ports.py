"""The relay's ports (vnetctl.lab.relay, relay_process), without a lab: the relay binds
the ports itself (0: the kernel's choice; a recorded port, or another when something
took it since) and says which in its `listening` record; the config asks for a host's
recorded port, else 0, and routes each to the host's sshd."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import socket

from vnetctl.lab import relay_process
from vnetctl.lab.relay import Relay, Route
from vnetctl.lab.state import LabState, new_host


def state(tmp_path, hosts: int = 3, name: str = "rp1") -> LabState:
    net = ipaddress.ip_network("10.240.0.0/24")
    lab = LabState(name=name, subnet=str(net), gateway="10.240.0.1", state_dir=tmp_path,
                   bridges=[], rtt_ms=25.0)  # fmt: skip
    lab.hosts = [new_host(name, i, net, tmp_path) for i in range(1, hosts + 1)]
    return lab


def listening(routes: list[Route]) -> dict:
    """Start a relay on `routes`, return its `listening` record, close it."""

    async def main() -> dict:
        log = io.StringIO()
        relay = Relay(routes, 0.0, log)
        await relay.start()
        await relay.close()
        return next(json.loads(line) for line in log.getvalue().splitlines())

    return asyncio.run(main())


def test_port_0_is_bound_once_and_reported(tmp_path):
    routes = [Route(f"h{i}", ("127.0.0.1", 0), ("127.0.0.1", 22)) for i in range(3)]
    record = listening(routes)
    assert record["event"] == "listening" and set(record["ports"]) == {"h0", "h1", "h2"}
    assert len(set(record["ports"].values())) == 3 and 0 not in record["ports"].values()


def test_a_recorded_port_is_kept_and_one_taken_meanwhile_is_replaced(tmp_path):
    with socket.socket() as free, socket.socket() as busy:
        free.bind(("127.0.0.1", 0))
        kept = free.getsockname()[1]
        free.close()  # free again: the relay takes it back
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        record = listening([Route("a", ("127.0.0.1", kept), ("127.0.0.1", 22)),
                            Route("b", ("127.0.0.1", taken), ("127.0.0.1", 22))])  # fmt: skip
    assert record["ports"]["a"] == kept
    assert record["ports"]["b"] not in (0, taken)


def test_the_config_asks_for_recorded_ports_else_0_and_routes_each_to_its_sshd(tmp_path):
    lab = state(tmp_path, hosts=2)
    lab.hosts[1].relay_port = 41234
    config = json.loads(relay_process.config_text(lab))
    assert config["rtt_ms"] == 25.0 and config["log"] == str(lab.relay_log)
    assert config["routes"] == [
        {"host": lab.hosts[0].name, "listen": ["127.0.0.1", 0],
         "target": [lab.hosts[0].address, 22]},
        {"host": lab.hosts[1].name, "listen": ["127.0.0.1", 41234],
         "target": [lab.hosts[1].address, 22]},
    ]  # fmt: skip
    relay_process.clear_ports(lab)
    assert [h.relay_port for h in lab.hosts] == [None, None]
    assert [h.ssh_endpoint for h in lab.hosts] == [(h.address, 22) for h in lab.hosts]
