"""VM-like guests for the micro-segmentation lab tests, on Linux and Open vSwitch bridges
(test_microseg_lab.py, test_microseg_ovs_lab.py, test_ovs_microseg_lab.py): each a
network namespace of the test's own (`LAB-NAME`) holding eth0 (the guest's MAC, IPv4
and IPv6 addresses), its peer `NAMEp` a port of a lab host's bridge (on OVS marked with
external_ids:attached-mac, as libvirt does); a listener in it (TCP and UDP echo on
given ports, both IP versions) and probes from it (TCP connect and echo, with why it
failed; UDP echo; ping; iperf3). Everything is removed by its own name or process id."""

from __future__ import annotations

import json
import subprocess
import time
from contextlib import contextmanager

from tests.labhosts import wait_until
from vnetctl.lab import host_exec

LISTENER = r"""
import json, selectors, socket, sys, time
ports, end = json.loads(sys.argv[1]), time.time() + float(sys.argv[2])
sel = selectors.DefaultSelector()
for port in ports:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET6, kind)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("::", port))
        if kind == socket.SOCK_STREAM:
            s.listen(16)
        sel.register(s, selectors.EVENT_READ)
while time.time() < end:
    for key, _ in sel.select(1):
        s = key.fileobj
        try:
            if s.type == socket.SOCK_DGRAM:
                data, peer = s.recvfrom(2048)
                s.sendto(data, peer)
                continue
            c, _ = s.accept()
            c.settimeout(2)
            c.sendall(c.recv(2048))
            c.close()
        except OSError:
            pass
"""
PROBE = r"""
import socket, sys
kind, addr, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
source = (sys.argv[5], 0) if len(sys.argv) > 5 else None
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
try:
    s = socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    if source:
        s.bind(source)
    if kind == "tcp":
        s.connect((addr, port)); s.sendall(b"hello")
        print("ok" if s.recv(16) == b"hello" else "no-reply")
    else:
        s.sendto(b"hello", (addr, port))
        print("ok" if s.recvfrom(16)[0] == b"hello" else "no-reply")
except socket.timeout:
    print("dropped")
except ConnectionRefusedError:
    print("refused")
except OSError:
    print("dropped")
"""


def namespace(lab, name: str) -> str:
    return f"{lab.name}-{name}"


def _run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, f"{argv}: {done.stderr}"
    return done.stdout


def add_vm(lab, host: str, vm: dict, bridge: str, mtu: int = 1450, ovs: bool = False) -> None:
    """`vm` (name, mac, addresses) as a guest whose port NAMEp is on `bridge` of `host`,
    a Linux bridge or (`ovs`) an Open vSwitch one: with OVS's userspace datapath both ends
    send with checksums done (no offload), as OVS does not finish them."""
    ns, tmp = namespace(lab, vm["name"]), f"{lab.name}{vm['name']}"[:13]
    pid = str(lab.host(host).sshd_pid)
    _run(["ip", "netns", "add", ns])
    _run(["ip", "link", "add", tmp + "p", "type", "veth", "peer", "name", tmp + "g"])
    _run(["ip", "link", "set", tmp + "g", "netns", ns])
    _run(["ip", "link", "set", tmp + "p", "netns", pid])
    port = vm["name"] + "p"
    attach = (
        [["ovs-vsctl", "add-port", bridge, port, "--", "set", "interface", port,
          f"external_ids:attached-mac={vm['mac']}"], ["ethtool", "-K", port, "tx", "off"],
         ["ip", "link", "set", port, "mtu", str(mtu), "up"]] if ovs
        else [["ip", "link", "set", port, "mtu", str(mtu), "master", bridge, "up"]]
    )  # fmt: skip
    for argv in (["ip", "link", "set", tmp + "p", "name", port], *attach):
        done = host_exec(lab.name, host, argv)
        assert done.returncode == 0, f"{argv}: {done.stderr}"
    inside = ["ip", "netns", "exec", ns]
    _run([*inside, "ip", "link", "set", tmp + "g", "name", "eth0"])
    _run([*inside, "ip", "link", "set", "eth0", "address", vm["mac"], "mtu", str(mtu), "up"])
    _run([*inside, "ip", "link", "set", "lo", "up"])
    if ovs:
        _run([*inside, "ethtool", "-K", "eth0", "tx", "off"])
    for address in vm["addresses"]:
        prefix = "64 nodad" if ":" in address else "24"
        _run([*inside, "ip", "addr", "add", f"{address}/{prefix.split()[0]}", "dev", "eth0",
              *prefix.split()[1:]])  # fmt: skip


def remove_vm(lab, name: str, ovs_host: str | None = None) -> None:
    """The guest's namespace (its eth0 and, with it, the port on the host); on an OVS
    bridge of `ovs_host` its port's OVSDB record too."""
    subprocess.run(["ip", "netns", "del", namespace(lab, name)], capture_output=True, timeout=30)
    if ovs_host is not None:
        host_exec(lab.name, ovs_host, ["ovs-vsctl", "--if-exists", "del-port", name + "p"])


@contextmanager
def listening(lab, name: str, ports: list[int], seconds: float = 600):
    """TCP and UDP echo on `ports` in guest `name` while the block runs (`seconds` at most)."""
    ns = namespace(lab, name)
    # python3 itself (ip netns exec execs it; its own loop ends after 600 s): kill() ends
    # it, where a `timeout` wrapper's kill left its child holding the namespace and port
    argv = ["ip", "netns", "exec", ns, "python3", "-c", LISTENER, json.dumps(ports), str(seconds)]
    with subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        try:
            deadline = time.monotonic() + 10
            while not all(f":{p} " in _run(["ip", "netns", "exec", ns, "ss", "-Hltn"])
                          for p in ports):  # fmt: skip
                assert time.monotonic() < deadline, f"listener in {ns} did not start"
                time.sleep(0.05)
            yield
        finally:
            proc.kill()
            proc.wait()


def connect(lab, src: str, kind: str, address: str, port: int, timeout=1.5, source=None) -> str:
    """A TCP or UDP echo from guest `src`: "ok", "dropped" (no answer), "refused", "no-reply"."""
    inside = ["ip", "netns", "exec", namespace(lab, src)]
    argv = [*inside, "python3", "-c", PROBE, kind, address, str(port), str(timeout)]
    return _run(argv + ([source] if source else [])).strip()


def probe(lab, src: str, kind: str, address: str, port: int = 0) -> str:
    """ "pass" or "blocked": a TCP or UDP echo, or a ping, from guest `src`."""
    if kind == "icmp":
        done = subprocess.run(["ip", "netns", "exec", namespace(lab, src), "ping", "-c", "1",
                               "-W", "1", address], capture_output=True, timeout=30)  # fmt: skip
        return "pass" if done.returncode == 0 else "blocked"
    return "pass" if connect(lab, src, kind, address, port) == "ok" else "blocked"


def iperf(lab, src: str, dst: str, address: str, port=5201, seconds=3) -> float:
    """TCP from guest `src` to `dst`'s `address` for `seconds`: Mbit/s received."""
    server = ["ip", "netns", "exec", namespace(lab, dst), "iperf3", "-s", "-1", "-p", str(port)]
    client = ["ip", "netns", "exec", namespace(lab, src), "timeout", "20", "iperf3", "-J",
              "-c", address, "-p", str(port), "-t", str(seconds)]  # fmt: skip
    listens = ["ip", "netns", "exec", namespace(lab, dst), "ss", "-Htln", f"sport = :{port}"]
    with subprocess.Popen(server, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as srv:
        try:
            wait_until(lambda: _run(listens).strip(), 10, f"iperf3 to listen in {dst}")
            done = subprocess.run(client, capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stdout[-2000:] + done.stderr
        finally:
            srv.kill()  # iperf3 itself (ip netns exec execs it)
    return json.loads(done.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6
