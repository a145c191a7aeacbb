"""`lab up --rtt`: every host's SSH path goes through the lab's relay, which adds the
round-trip time; the inventory and known_hosts name hosts by their relay; the relay is
recorded, shown, mended and stopped like the sshds. A lab of its own (pid-derived name
and subnet), so the session's lab keeps direct connections."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.labhosts import own_lab, ssh_argv, wait_until
from vnetctl.cli.main import main
from vnetctl.lab import lab_down, lab_status, lab_up, load_state
from vnetctl.lab.proc import pid_cmdline
from vnetctl.lab.relay_process import wait_settled
from vnetctl.lab.sshd import endpoints_open

pytestmark = pytest.mark.lab
RTT_MS = 100.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def rtt_lab(lab_required, tmp_path_factory):
    with own_lab("rt", tmp_path_factory.mktemp("rtt"), hosts=2, rtt=RTT_MS) as state:
        yield state


def test_hosts_are_reached_through_their_relay_under_those_names(rtt_lab):
    state = load_state(rtt_lab.name)
    assert state.rtt_ms == RTT_MS and pid_cmdline(state.relay_pid)
    ports = [h.relay_port for h in state.hosts]
    assert all(0 < port < 65536 for port in ports) and len(set(ports)) == 2
    hosts = yaml.safe_load(state.inventory_path.read_text())["all"]["children"]["lab"]["hosts"]
    assert hosts == {
        h.name: {"ansible_host": "127.0.0.1", "ansible_port": h.relay_port} for h in state.hosts
    }
    known = state.known_hosts_path.read_text()
    for host in state.hosts:
        key = " ".join(host.host_key_path.with_suffix(".pub").read_text().split()[:2])
        assert f"[127.0.0.1]:{host.relay_port} {key}\n" in known
        assert f"{host.address} {key}\n" in known  # direct connections still check keys


def test_an_ssh_round_trip_through_the_relay_takes_at_least_the_rtt(rtt_lab):
    address, port = rtt_lab.hosts[0].ssh_endpoint
    argv = ssh_argv(rtt_lab, address, "cat")
    argv[1:1] = ["-p", str(port)]
    with subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0) as ssh:
        ssh.stdin.write(b"connected?\n")
        assert ssh.stdout.readline() == b"connected?\n"  # the connection is up
        times = []
        for i in range(5):
            start = time.monotonic()
            ssh.stdin.write(b"ping %d\n" % i)
            assert ssh.stdout.readline() == b"ping %d\n" % i
            times.append(time.monotonic() - start)
        ssh.stdin.close()
        ssh.wait(timeout=10)
    assert min(times) >= RTT_MS / 1000, times
    assert statistics.median(times) < 2 * RTT_MS / 1000, times  # and not wildly more


def test_vnetctl_goes_through_the_relay_unchanged(rtt_lab):
    wait_settled(rtt_lab.relay_log, 0)  # the connections of the tests before are logged
    offset = rtt_lab.relay_log.stat().st_size
    playbook = ROOT / "bench" / "workloads" / "ten_tasks.yml"
    vnetctl = [str(ROOT / ".venv" / "bin" / "vnetctl")]
    done = subprocess.run([*vnetctl, "run", str(playbook), "-i", str(rtt_lab.inventory_path)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    entries = wait_settled(rtt_lab.relay_log, offset)
    closed = [e for e in entries if e["event"] == "closed"]
    assert sorted(e["host"] for e in closed) == rtt_lab.host_names
    assert all(e["turns"] > 0 and e["up"] > 0 and e["down"] > 0 for e in closed)


def test_status_shows_the_rtt_and_a_dead_relay_which_up_mends(rtt_lab, capsys):
    before = load_state(rtt_lab.name)
    assert main(["lab", "status", "--name", rtt_lab.name]) == 0
    out = capsys.readouterr().out
    assert (
        f"round trip: 100 ms added on every host's SSH path; relay alive ({before.relay_pid})"
        in out
    )
    assert f"127.0.0.1:{before.hosts[0].relay_port} open" in out
    os.kill(before.relay_pid, signal.SIGKILL)
    # kill() returns before the kernel has closed the process's sockets (its command line
    # is gone earlier still): wait for what is checked, the ports closed
    endpoints = [h.ssh_endpoint for h in before.hosts]
    wait_until(lambda: not any(endpoints_open(endpoints)), 10, "the dead relay's ports closed")
    status = lab_status(rtt_lab.name)
    assert not status.healthy and status.relay_alive is False
    assert all(h.relay_open is False for h in status.hosts)
    assert main(["lab", "status", "--name", rtt_lab.name]) == 1
    assert "relay DEAD" in capsys.readouterr().out
    mended = lab_up(rtt_lab.name, hosts=2)
    assert mended.relay_pid != before.relay_pid and lab_status(rtt_lab.name).healthy
    assert [h.relay_port for h in mended.hosts] == [h.relay_port for h in before.hosts]


def test_rtt_0_removes_the_relay_and_down_stops_it(rtt_lab):
    relay = load_state(rtt_lab.name).relay_pid
    direct = lab_up(rtt_lab.name, hosts=2, rtt=0)
    assert pid_cmdline(relay) is None and direct.relay_pid is None
    hosts = yaml.safe_load(direct.inventory_path.read_text())["all"]["children"]["lab"]["hosts"]
    assert hosts == {h.name: {"ansible_host": h.address} for h in direct.hosts}
    status = lab_status(rtt_lab.name)
    assert status.healthy and status.rtt_ms == 0 and status.relay_alive is None
    again = lab_up(rtt_lab.name, hosts=2, rtt=RTT_MS)
    assert pid_cmdline(again.relay_pid)
    lab_down(rtt_lab.name)
    assert pid_cmdline(again.relay_pid) is None
