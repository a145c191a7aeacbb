"""The lab's relay process (vnetctl.lab.relay): its ports, config, start, stop and health.

Like the sshds, the relay is started by `lab up` in a session of its own, recorded in
lab.json (`relay_pid`, each host's `relay_port`), mended by `lab up` when it died or its
config changed, and stopped by `lab down` (or by `lab up --rtt 0`). Its ports are bound
by the relay itself (port 0 the first time, then the recorded one while it stays free)
and read back from its log: never probed free first and bound later, which another lab
starting at the same moment could race.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import vnetctl
from vnetctl.lab.proc import LabError, pid_cmdline, spawn_daemon, terminate
from vnetctl.lab.sshd import SSH_PORT, write_if_changed
from vnetctl.lab.state import RELAY_ADDRESS, LabState

START_TIMEOUT = 15.0


def clear_ports(state: LabState) -> None:
    for host in state.hosts:
        host.relay_port = None


def config_text(state: LabState) -> str:
    """The relay's config: a host's recorded port, or 0 where it has none yet (the
    relay binds a free one and says which)."""
    routes = [
        {"host": h.name, "listen": [RELAY_ADDRESS, h.relay_port or 0],
         "target": [h.address, SSH_PORT]}
        for h in state.hosts
    ]  # fmt: skip
    config = {"rtt_ms": state.rtt_ms, "log": str(state.relay_log), "routes": routes}
    return json.dumps(config, indent=1) + "\n"


def relay_alive(state: LabState) -> bool:
    """The recorded PID is alive and is still this lab's relay (its cmdline names the config)."""
    if state.relay_pid is None:
        return False
    cmdline = pid_cmdline(state.relay_pid)
    return cmdline is not None and str(state.relay_config) in cmdline


def stop_relay(state: LabState) -> None:
    if state.relay_pid is not None and relay_alive(state):
        terminate([state.relay_pid])
    state.relay_pid = None


def update_relay(state: LabState) -> bool:
    """Run the relay `state` asks for (none at RTT 0): start it, or restart it when its
    config changed or it died, and record the port it listens on for each host (the
    recorded one when still free). True when a relay was started."""
    if state.rtt_ms <= 0:
        stop_relay(state)
        clear_ports(state)
        return False
    changed = write_if_changed(state.relay_config, config_text(state))
    if not changed and relay_alive(state):
        return False
    stop_relay(state)
    state.relay_pid, ports = start_relay(state)
    for host in state.hosts:
        host.relay_port = ports[host.name]
    # the same ports again when the relay is restarted (inventory and known_hosts name them)
    write_if_changed(state.relay_config, config_text(state))
    return True


def start_relay(state: LabState) -> tuple[int, dict[str, int]]:
    """Start the relay in a new session and wait until it listens on every port; its PID
    and the port of each host."""
    state.relay_log.parent.mkdir(parents=True, exist_ok=True)
    offset = state.relay_log.stat().st_size if state.relay_log.exists() else 0
    # the relay imports this package, from wherever this process found it
    paths = [str(Path(vnetctl.__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    argv = [sys.executable, "-m", "vnetctl.lab.relay", str(state.relay_config)]
    pid = spawn_daemon(argv, state.relay_log, env=env, cwd="/")
    deadline = time.monotonic() + START_TIMEOUT
    while (listening := _listening_since(state.relay_log, offset)) is None:
        alive = pid_cmdline(pid) is not None
        if not alive or time.monotonic() > deadline:
            if alive:
                terminate([pid])
            tail = _tail(state.relay_log, offset)
            raise LabError(f"the round-trip relay did not start; {state.relay_log} says:\n{tail}")
        time.sleep(0.05)
    return pid, listening["ports"]


def _listening_since(log: Path, offset: int) -> dict | None:
    """The relay's `listening` record written after `offset`, or None yet."""
    return next((e for e in read_log(log, offset) if e.get("event") == "listening"), None)


def read_log(log: Path, offset: int = 0) -> list[dict]:
    """The relay's JSON records from byte `offset` of its log (other lines are skipped)."""
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        if line.startswith("{"):
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue  # a line still being written
    return entries


def wait_settled(log: Path, offset: int, timeout: float = 10.0) -> list[dict]:
    """The records from `offset` on, once every connection opened since then is closed
    and logged (a closing connection is logged up to a round trip later), or at the
    timeout. `offset` must be past the running relay's `listening` record."""
    deadline = time.monotonic() + timeout
    while True:
        entries = read_log(log, offset)
        opened = sum(1 for e in entries if e.get("event") == "open")
        closed = sum(1 for e in entries if e.get("event") == "closed")
        if closed >= opened or time.monotonic() > deadline:
            return entries
        time.sleep(0.05)


def _tail(log: Path, offset: int, lines: int = 8) -> str:
    try:
        with open(log, "rb") as f:
            f.seek(offset)
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
