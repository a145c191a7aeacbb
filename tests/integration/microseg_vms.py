"""VM-like guests for the micro-segmentation lab: each a network namespace of the test's
own (`LAB-NAME`) holding eth0 (the guest's MAC, IPv4 and IPv6 addresses), its peer
`NAMEp` a port of a lab host's bridge; a listener in it (TCP and UDP echo on given
ports, both IP versions) and a probe from it (TCP connect and echo, UDP echo, ping).
Everything is removed by its own name or process id."""

from __future__ import annotations

import json
import subprocess
import time
from contextlib import contextmanager

from vnetctl.lab import host_exec

LISTENER = r"""
import json, selectors, socket, sys, time
ports = json.loads(sys.argv[1]); sel = selectors.DefaultSelector(); end = time.time() + 600
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
import json, socket, sys
kind, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
family = socket.AF_INET6 if ":" in addr else socket.AF_INET
try:
    s = socket.socket(family, socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(1.5)
    if kind == "tcp":
        s.connect((addr, port)); s.sendall(b"hello"); ok = s.recv(16) == b"hello"
    else:
        s.sendto(b"hello", (addr, port)); ok = s.recvfrom(16)[0] == b"hello"
except OSError:
    ok = False
print("pass" if ok else "blocked")
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
        [["ovs-vsctl", "add-port", bridge, port], ["ethtool", "-K", port, "tx", "off"],
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
def listening(lab, name: str, ports: list[int]):
    """TCP and UDP echo on `ports` in guest `name` while the block runs."""
    ns = namespace(lab, name)
    # python3 itself (ip netns exec execs it; its own loop ends after 600 s): kill() ends
    # it, where a `timeout` wrapper's kill left its child holding the namespace and port
    argv = ["ip", "netns", "exec", ns, "python3", "-c", LISTENER, json.dumps(ports)]
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


def probe(lab, src: str, kind: str, address: str, port: int = 0) -> str:
    """ "pass" or "blocked": a TCP or UDP echo, or a ping, from guest `src`."""
    inside = ["ip", "netns", "exec", namespace(lab, src)]
    if kind == "icmp":
        done = subprocess.run([*inside, "ping", "-c", "1", "-W", "1", address],
                              capture_output=True, timeout=30)  # fmt: skip
        return "pass" if done.returncode == 0 else "blocked"
    return _run([*inside, "python3", "-c", PROBE, kind, address, str(port)]).strip()
