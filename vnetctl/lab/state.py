"""What a lab is made of: names, addresses and files, and the JSON record `lab up` keeps.

Naming (every name is derived from the lab name and the host index, never searched for):

- lab name: 1-6 characters of [a-z0-9], so that root-side link names fit in 15 characters;
- host `i` (1-based): inventory name `{lab}-h{i}`, network namespace `vnl-{lab}-h{i}`;
- bridges in the root namespace: `vnl{lab}-m` (management/underlay), `vnl{lab}-s1`, `vnl{lab}-s2`;
- root-side peer of the host's `eth{k}`: `vnl{lab}-{i}e{k}` (at most 3+6+1+3+1+1 = 15 chars;
  the lab name holds no '-', so no two labs or hosts can produce the same name).

Addresses: the management bridge gets the subnet's first address (10.213.0.1 by default) and
host `i` gets network address + 10 + i (10.213.0.11 for h1 ... 10.213.3.242 for h1000).

Round trips (`lab up --rtt 25ms`): one relay process (vnetctl.lab.relay) listens on
127.0.0.1 at a port per host (`relay_port`: one the relay bound itself, then kept) and
forwards to the host's sshd with the delay; the inventory and known_hosts then name each
host by its relay port.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vnetctl.errors import InputError

LAB_ROOT = Path("/var/tmp/vnetctl-lab")
DEFAULT_SUBNET = "10.213.0.0/16"
RELAY_ADDRESS = "127.0.0.1"
MAX_RTT_MS = 5000.0
# a Linux bridge has at most 1024 ports (BR_MAX_PORTS), and every host is one port of
# each of the lab's bridges; the neighbour table grows with the hosts (vnetctl.lab.neighbours)
MAX_HOSTS = 1000
LINK_NAME_MAX = 15  # IFNAMSIZ - 1
FIRST_HOST_OFFSET = 10
HOST_NICS = 3  # eth0 (management), eth1 (segment s1), eth2 (segment s2)
PRIVATE_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
_NAME_RE = re.compile(r"[a-z0-9]{1,6}")
_RTT_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s)?")


def validate_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name or ""):
        raise InputError(
            f"bad lab name {name!r}: use 1 to 6 characters from a-z and 0-9 "
            "(it is part of interface names, which Linux limits to 15 characters)"
        )
    return name


def validate_subnet(subnet: str, hosts: int) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        raise InputError(f"bad subnet {subnet!r}: {exc}") from None
    if not isinstance(net, ipaddress.IPv4Network) or not any(
        net.subnet_of(private) for private in PRIVATE_NETS
    ):
        raise InputError(
            f"subnet {subnet} is not inside a private IPv4 range (10/8, 172.16/12, 192.168/16)"
        )
    if FIRST_HOST_OFFSET + hosts >= net.num_addresses - 1:
        raise InputError(f"subnet {subnet} is too small for {hosts} hosts")
    return net


def validate_hosts(hosts: int, name: str = "") -> int:
    """1..MAX_HOSTS, and few enough that lab `name`'s root-side link names fit."""
    if not isinstance(hosts, int) or not 1 <= hosts <= MAX_HOSTS:
        raise InputError(f"bad number of hosts {hosts!r}: use 1 to {MAX_HOSTS}")
    longest = f"vnl{name}-{hosts}e{HOST_NICS - 1}"
    if len(longest) > LINK_NAME_MAX:
        raise InputError(
            f"lab {name!r} with {hosts} hosts: its link {longest} would be longer than "
            f"{LINK_NAME_MAX} characters; use a lab name of at most "
            f"{len(name) - (len(longest) - LINK_NAME_MAX)} characters"
        )
    return hosts


def parse_rtt(text: str) -> float:
    """`25ms`, `25` (milliseconds), `0.2s` -> milliseconds; 0 means no relay."""
    found = _RTT_RE.fullmatch(str(text).strip())
    if not found:
        raise InputError(f"bad round-trip time {text!r}: use milliseconds, e.g. 25ms or 0")
    return validate_rtt(float(found.group(1)) * (1000.0 if found.group(2) == "s" else 1.0))


def validate_rtt(ms: float) -> float:
    if not 0 <= ms <= MAX_RTT_MS:
        raise InputError(f"bad round-trip time {ms:g}ms: use 0 to {MAX_RTT_MS:.0f}ms")
    return float(ms)


def state_dir(name: str) -> Path:
    return LAB_ROOT / validate_name(name)


def bridge_names(lab: str) -> list[str]:
    """Bridges indexed by NIC number: eth0 -> management, eth1 -> s1, eth2 -> s2."""
    return [f"vnl{lab}-m", f"vnl{lab}-s1", f"vnl{lab}-s2"]


@dataclass
class LabHost:
    name: str
    index: int
    namespace: str
    address: str
    root_links: list[str]  # root-side peer of eth0, eth1, eth2
    dir: Path
    sshd_pid: int | None = None
    relay_port: int | None = None  # on RELAY_ADDRESS, while the lab adds a round trip
    libvirtd_pid: int | None = None  # while the lab runs libvirt (vnetctl.lab.vm.libvirtd)

    @property
    def ssh_endpoint(self) -> tuple[str, int]:
        """Where SSH clients reach this host: its relay when there is one, else its sshd."""
        if self.relay_port:
            return RELAY_ADDRESS, self.relay_port
        return self.address, 22

    @property
    def sshd_config(self) -> Path:
        return self.dir / "sshd_config"

    @property
    def sshd_log(self) -> Path:
        return self.dir / "sshd.log"

    @property
    def host_key_path(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "namespace": self.namespace,
            "address": self.address,
            "root_links": list(self.root_links),
            "dir": str(self.dir),
            "sshd_pid": self.sshd_pid,
            "relay_port": self.relay_port,
            "libvirtd_pid": self.libvirtd_pid,
            "sshd_config": str(self.sshd_config),
            "sshd_log": str(self.sshd_log),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabHost:
        return cls(
            name=data["name"],
            index=data["index"],
            namespace=data["namespace"],
            address=data["address"],
            root_links=list(data["root_links"]),
            dir=Path(data["dir"]),
            sshd_pid=data.get("sshd_pid"),
            relay_port=data.get("relay_port"),
            libvirtd_pid=data.get("libvirtd_pid"),
        )


def new_host(lab: str, index: int, net: ipaddress.IPv4Network, lab_dir: Path) -> LabHost:
    name = f"{lab}-h{index}"
    return LabHost(
        name=name,
        index=index,
        namespace=f"vnl-{lab}-h{index}",
        address=str(net.network_address + FIRST_HOST_OFFSET + index),
        root_links=[f"vnl{lab}-{index}e{k}" for k in range(HOST_NICS)],
        dir=lab_dir / "hosts" / name,
    )


@dataclass
class LabState:
    name: str
    subnet: str
    gateway: str  # the management bridge's address, without prefix length
    state_dir: Path
    bridges: list[str]
    hosts: list[LabHost] = field(default_factory=list)
    inventory_path: Path | None = None
    ovs: bool = False  # each host runs its own ovsdb-server and ovs-vswitchd
    libvirt: bool = False  # each host runs its own libvirtd
    rtt_ms: float = 0.0  # round-trip time the relay adds to every host's SSH path
    relay_pid: int | None = None
    # the process this lab was made for (vnetctl.lab.allocate): {"pid", "start"}; None for
    # labs made by `vnetctl lab up`, which stay until `lab down`
    owner: dict[str, int] | None = None

    @property
    def relay_config(self) -> Path:
        return self.state_dir / "relay.json"

    @property
    def relay_log(self) -> Path:
        return self.state_dir / "relay.log"

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    @property
    def key_path(self) -> Path:
        return self.state_dir / "id_ed25519"

    @property
    def known_hosts_path(self) -> Path:
        return self.state_dir / "known_hosts"

    @property
    def authorized_keys_path(self) -> Path:
        return self.state_dir / "authorized_keys"

    @property
    def empty_file(self) -> Path:
        """Bind-mounted over root's shell start-up files inside each lab host."""
        return self.state_dir / "empty"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "lab.json"

    @property
    def host_names(self) -> list[str]:
        return [host.name for host in self.hosts]

    def host(self, name: str) -> LabHost:
        for host in self.hosts:
            if host.name == name:
                return host
        known = ", ".join(h.name for h in self.hosts) or "none"
        raise InputError(f"lab {self.name!r} has no host {name!r} (hosts: {known})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subnet": self.subnet,
            "gateway": self.gateway,
            "state_dir": str(self.state_dir),
            "bridges": list(self.bridges),
            "key_path": str(self.key_path),
            "known_hosts_path": str(self.known_hosts_path),
            "inventory_path": str(self.inventory_path) if self.inventory_path else None,
            "ovs": self.ovs,
            "libvirt": self.libvirt,
            "rtt_ms": self.rtt_ms,
            "relay_pid": self.relay_pid,
            "relay_log": str(self.relay_log),
            "owner": self.owner,
            "hosts": [host.to_dict() for host in self.hosts],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabState:
        inventory = data.get("inventory_path")
        return cls(
            name=data["name"],
            subnet=data["subnet"],
            gateway=data["gateway"],
            state_dir=Path(data["state_dir"]),
            bridges=list(data["bridges"]),
            hosts=[LabHost.from_dict(h) for h in data["hosts"]],
            inventory_path=Path(inventory) if inventory else None,
            ovs=bool(data.get("ovs", False)),
            libvirt=bool(data.get("libvirt", False)),
            rtt_ms=float(data.get("rtt_ms", 0.0)),
            relay_pid=data.get("relay_pid"),
            owner=data.get("owner"),
        )


def load_state(name: str) -> LabState | None:
    path = state_dir(name) / "lab.json"
    try:
        return LabState.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def save_state(state: LabState) -> None:
    # Write then rename, so an interrupted `up` never leaves a half-written record for `down`.
    state.state_dir.mkdir(parents=True, exist_ok=True)
    tmp = state.state_file.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state.to_dict(), indent=2) + "\n")
    os.replace(tmp, state.state_file)


@dataclass
class HostStatus:
    name: str
    namespace: str
    address: str
    namespace_present: bool
    sshd_alive: bool
    sshd_pid: int | None
    port_open: bool
    ovs_alive: bool | None = None  # None: the lab runs no Open vSwitch
    relay_port: int | None = None
    relay_open: bool | None = None  # None: no relay (the lab adds no round trip)
    libvirt_alive: bool | None = None  # None: the lab runs no libvirtd

    @property
    def healthy(self) -> bool:
        extras_ok = all(x is not False for x in (self.ovs_alive, self.relay_open,
                                                 self.libvirt_alive))  # fmt: skip
        return self.namespace_present and self.sshd_alive and self.port_open and extras_ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "namespace": self.namespace,
            "address": self.address,
            "namespace_present": self.namespace_present,
            "sshd_alive": self.sshd_alive,
            "sshd_pid": self.sshd_pid,
            "port_open": self.port_open,
            "ovs_alive": self.ovs_alive,
            "relay_port": self.relay_port,
            "relay_open": self.relay_open,
            "libvirt_alive": self.libvirt_alive,
            "healthy": self.healthy,
        }


@dataclass
class LabStatus:
    name: str
    exists: bool
    hosts: list[HostStatus] = field(default_factory=list)
    rtt_ms: float = 0.0
    relay_pid: int | None = None
    relay_alive: bool | None = None  # None: no relay

    @property
    def healthy(self) -> bool:
        relay_ok = self.relay_alive is not False
        return self.exists and bool(self.hosts) and all(h.healthy for h in self.hosts) and relay_ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exists": self.exists,
            "healthy": self.healthy,
            "rtt_ms": self.rtt_ms,
            "relay_pid": self.relay_pid,
            "relay_alive": self.relay_alive,
            "hosts": [h.to_dict() for h in self.hosts],
        }
