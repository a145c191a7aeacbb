"""VM-like guests on one lab host for the micro-segmentation lab tests: an OVS bridge
(userspace datapath), a namespace per VM behind a veth, a TCP echo server in db, and the
clients that report what passed (test_ovs_microseg_lab.py)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.labhosts import wait_until
from vnetctl.lab import host_exec
from vnetctl.lab.lab import in_host_argv

BRIDGE = "br-ms"
# VM ports are msNAMEp: a name with "-" comes back quoted from `ovs-ofctl --names`, which
# vnet_ovs_portsec does not read yet (its run would not converge)
VMS = {  # name: (MAC, IPv4, IPv6)
    "web": ("52:54:00:30:00:01", "10.30.0.1", "fd00::1"),
    "db": ("52:54:00:30:00:02", "10.30.0.2", "fd00::2"),
    "other": ("52:54:00:30:00:03", "10.30.0.3", "fd00::3"),
}
LISTEN = (5432, 22, 8080, 8081)  # db's listeners
SERVER = """
import selectors, socket, sys
sel = selectors.DefaultSelector()
for port in map(int, sys.argv[1:]):
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port)); s.listen(16); sel.register(s, selectors.EVENT_READ)
print("listening", flush=True)
while True:
    for key, _ in sel.select():
        conn, _ = key.fileobj.accept()
        conn.settimeout(2)
        try:
            conn.sendall(b"re:" + conn.recv(64))
        except OSError:
            pass
        conn.close()
"""
CLIENT = """
import socket, sys
source = (sys.argv[4], 0) if len(sys.argv) > 4 else None
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]),
                                 source_address=source)
    s.sendall(b"hello"); s.settimeout(2)
    print("ok" if s.recv(64) == b"re:hello" else "no-reply")
except socket.timeout:
    print("dropped")
except ConnectionRefusedError:
    print("refused")
"""


def sh(lab, script: str) -> str:
    done = host_exec(lab.name, lab.host_names[0], ["sh", "-c", script])
    assert done.returncode == 0, f"{script}: {done.stderr}"
    return done.stdout


def add_port(lab, vm: str) -> None:
    mac = VMS[vm][0]
    sh(lab, f"ovs-vsctl add-port {BRIDGE} ms{vm}p -- set interface ms{vm}p "
            f"external_ids:attached-mac={mac}")  # fmt: skip


@contextmanager
def guests(lab) -> Iterator[None]:
    """br-ms with a port per VM, each a namespace ms-NAME behind a veth (msNAMEp), db
    listening on LISTEN; removed afterwards by name."""
    netdev = f"-- set bridge {BRIDGE} datapath_type=netdev"
    script = ["set -e", f"ovs-vsctl add-br {BRIDGE} {netdev}", f"ip link set {BRIDGE} up"]
    for vm, (mac, ip4, ip6) in VMS.items():
        ns = f"ms-{vm}"
        script += [f"ip netns add {ns}",
                   f"ip link add ms{vm}p type veth peer name eth0 netns {ns}",
                   f"ethtool -K ms{vm}p tx off >/dev/null",
                   f"ip netns exec {ns} ethtool -K eth0 tx off >/dev/null",
                   f"ip -n {ns} link set eth0 address {mac} up", f"ip -n {ns} link set lo up",
                   f"ip -n {ns} addr add {ip4}/24 dev eth0",
                   f"ip -n {ns} addr add {ip6}/64 dev eth0 nodad",
                   f"ip link set ms{vm}p up"]  # fmt: skip
    host = lab.host(lab.host_names[0])
    argv = ["ip", "netns", "exec", "ms-db", "python3", "-c", SERVER, *map(str, LISTEN)]
    try:
        sh(lab, "\n".join(script))
        for vm in VMS:
            add_port(lab, vm)
        with subprocess.Popen(in_host_argv(lab, host, argv), stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) as server:  # fmt: skip
            try:
                assert server.stdout.readline().strip() == "listening"
                yield
            finally:
                server.kill()
    finally:
        for vm in VMS:
            host_exec(lab.name, lab.host_names[0], ["ip", "netns", "del", f"ms-{vm}"])
        host_exec(lab.name, lab.host_names[0], ["ovs-vsctl", "--if-exists", "del-br", BRIDGE])


def tcp(lab, src: str, dst: str, port: int, v6=False, timeout=1.5, source=None) -> str:
    address = VMS[dst][2 if v6 else 1]
    argv = ["ip", "netns", "exec", f"ms-{src}", "python3", "-c", CLIENT, address, str(port),
            str(timeout)] + ([source] if source else [])  # fmt: skip
    done = host_exec(lab.name, lab.host_names[0], argv)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def ping(lab, src: str, dst: str, v6=False) -> bool:
    argv = ["ip", "netns", "exec", f"ms-{src}", "ping", "-6" if v6 else "-4", "-c", "1", "-W",
            "1", VMS[dst][2 if v6 else 1]]  # fmt: skip
    return host_exec(lab.name, lab.host_names[0], argv).returncode == 0


IPERF_PORT, IPERF_SECONDS = 5201, 3


def iperf(lab) -> float:
    """web -> db TCP for IPERF_SECONDS through br-ms: Mbit/s received."""
    host = lab.host(lab.host_names[0])
    server = ["ip", "netns", "exec", "ms-db", "timeout", "20", "iperf3", "-s", "-1",
              "-p", str(IPERF_PORT)]  # fmt: skip
    client = ["ip", "netns", "exec", "ms-web", "timeout", "20", "iperf3", "-J", "-c",
              VMS["db"][1], "-p", str(IPERF_PORT), "-t", str(IPERF_SECONDS)]  # fmt: skip
    with subprocess.Popen(in_host_argv(lab, host, server), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as srv:  # fmt: skip
        try:
            listening = ["ip", "netns", "exec", "ms-db", "ss", "-Htln", f"sport = :{IPERF_PORT}"]
            wait_until(lambda: host_exec(lab.name, lab.host_names[0], listening).stdout.strip(),
                       10, "iperf3 to listen in ms-db")  # fmt: skip
            done = host_exec(lab.name, lab.host_names[0], client)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        finally:
            srv.kill()
    return json.loads(done.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
