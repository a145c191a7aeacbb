"""Bringing a lab up, checking it and taking it down, from the state recorded in lab.json."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from functools import partial
from pathlib import Path

from vnetctl.errors import InputError
from vnetctl.lab import allocate, neighbours, netns, relay_process, sshd
from vnetctl.lab import ovs as ovs_daemons
from vnetctl.lab.inventory_file import remove_inventory, write_inventory
from vnetctl.lab.proc import LabError, pids_in_namespaces, terminate
from vnetctl.lab.state import (
    DEFAULT_SUBNET,
    LAB_ROOT,
    HostStatus,
    LabHost,
    LabState,
    LabStatus,
    load_state,
    new_host,
    save_state,
    state_dir,
    validate_hosts,
    validate_name,
    validate_rtt,
    validate_subnet,
)
from vnetctl.lab.vm import libvirtd
from vnetctl.output.words import count

Progress = Callable[[str], None]
SSHD_START_TIMEOUT = 30.0
SSHD_START_PER_HOST = 0.1  # each sshd is started by a chain of execs: 500 take a while
REQUIRED_TOOLS = ("ip", "unshare", "nsenter", "ssh-keygen")


def lab_up(
    name: str = "lab",
    hosts: int = 3,
    inventory_path: str | Path | None = None,
    subnet: str | None = None,
    progress: Progress | None = None,
    ovs: bool | None = None,
    rtt: float | None = None,
    libvirt: bool | None = None,
) -> LabState:
    """Create or mend the lab so it has exactly `hosts` healthy hosts; write its inventory.

    What an earlier `up` recorded is kept unless given again: the inventory path (else
    `inventory/{name}.yml` under the current directory), the subnet (else
    DEFAULT_SUBNET; "auto": a free one, vnetctl.lab.allocate), Open vSwitch (`ovs=True`
    gives every host its own daemons) and the round-trip time (`rtt`, milliseconds: above
    0, every host's SSH path goes through the relay, vnetctl.lab.relay; 0 removes it)
    and libvirt (`libvirt=True`: every host runs its own libvirtd, vnetctl.lab.vm.libvirtd;
    False stops it, its guests destroyed).
    """
    say = progress or (lambda _message: None)
    validate_name(name)
    validate_hosts(hosts, name)
    if rtt is not None:
        validate_rtt(rtt)
    state = load_state(name)
    if subnet not in (None, "auto"):
        validate_subnet(subnet, hosts)
    require_lab_environment()
    if ovs:
        ovs_daemons.require_ovs()
    if libvirt:
        libvirtd.require_libvirt()

    if state is None:
        state = allocate.reserve(name, hosts, subnet or DEFAULT_SUBNET)
    elif subnet not in (None, "auto", state.subnet):
        raise InputError(
            f"lab {name!r} is up with subnet {state.subnet}; "
            f"run `vnetctl lab down --name {name}` before changing it"
        )
    net = validate_subnet(state.subnet, hosts)
    conflict = allocate.subnet_conflict(net, name, allocate.used_networks())
    if conflict:
        raise InputError(allocate.conflict_message(net, conflict))
    if ovs is not None:
        state.ovs = ovs
    if rtt is not None:
        state.rtt_ms = float(rtt)
    stopping_libvirt = libvirt is False and state.libvirt
    if libvirt is not None:
        state.libvirt = libvirt

    extra = [h for h in state.hosts if h.index > hosts]
    if extra:
        say(f"removing {count(len(extra), 'host')} beyond {hosts}")
        remove_hosts(state, extra)
        state.hosts = [h for h in state.hosts if h.index <= hosts]
    recorded = list(state.hosts)  # made by an earlier `up`: the only ones that can be lost
    present = {h.index for h in state.hosts}
    state.hosts += [
        new_host(name, i, net, state.state_dir) for i in range(1, hosts + 1) if i not in present
    ]
    state.hosts.sort(key=lambda h: h.index)
    if state.rtt_ms <= 0:
        relay_process.clear_ports(state)
    default_inventory = Path("inventory") / f"{name}.yml"
    new_inventory = Path(inventory_path or state.inventory_path or default_inventory).absolute()
    if state.inventory_path and state.inventory_path != new_inventory:
        remove_inventory(state.inventory_path, name)
    state.inventory_path = new_inventory
    save_state(state)  # before creating anything, so `down` can undo a half-built lab

    # A host whose namespace vanished keeps nothing usable: its sshd and root-side veths
    # belong to the dead namespace. Remove them, then rebuild it like a new host.
    namespaces = netns.existing_namespaces()
    lost = [h for h in recorded if h.namespace not in namespaces]
    if lost and len(lost) < len(recorded):
        say(f"rebuilding {count(len(lost), 'host')} whose namespace is missing")
    sshd.stop_sshd_processes(lost)
    netns.remove_network([link for h in lost for link in h.root_links], [])

    say(f"lab {name}: network for {count(hosts, 'host')}")
    neighbours.fit(sum(len(lab.hosts) for lab in allocate.recorded_labs()))
    netns.create_network(state)
    netns.forget_neighbours(state, [*lost, *(h for h in state.hosts if h not in recorded)])
    netns.configure_hosts(state, say)

    say(f"lab {name}: keys and sshd for {count(hosts, 'host')}")
    sshd.generate_keys(
        [state.key_path, *(h.host_key_path for h in state.hosts)], comment=f"vnetctl-lab-{name}"
    )
    sshd.write_client_files(state)
    changed = [h for h in state.hosts if sshd.write_sshd_config(state, h)]
    if changed:
        sshd.check_sshd_config(changed[0])  # all configs share one template
    sshd.stop_sshd_processes(h for h in changed if sshd.sshd_alive(h))
    for host in state.hosts:
        if not sshd.sshd_alive(host):
            host.sshd_pid = sshd.start_sshd_process(state, host)
    save_state(state)
    timeout = SSHD_START_TIMEOUT + SSHD_START_PER_HOST * len(state.hosts)
    sshd.wait_for_sshds(state.hosts, timeout=timeout, progress=say)
    if state.ovs:
        say(f"lab {name}: Open vSwitch on {count(hosts, 'host')}")
        ovs_daemons.start_ovs(state.hosts, partial(in_host_argv, state))
    if state.libvirt or stopping_libvirt:
        say(f"lab {name}: {'' if state.libvirt else 'stopping '}libvirtd on "
            f"{count(hosts, 'host')}")  # fmt: skip
        toggle = libvirtd.start_libvirt if state.libvirt else libvirtd.stop_libvirt
        try:
            toggle(state.hosts, partial(in_host_argv, state))
        finally:
            save_state(state)
    if state.rtt_ms > 0:
        say(f"lab {name}: {state.rtt_ms:g} ms round trip on every host's SSH path (relay)")
    elif state.relay_pid is not None:
        say(f"lab {name}: no round trip added any more: stopping the relay")
    try:
        relay_process.update_relay(state)
    finally:
        save_state(state)

    sshd.write_client_files(state)  # known_hosts names each host by its relay port too
    write_inventory(state)
    return state


def allocate_lab(prefix: str, hosts: int, owner: int | None = None) -> LabState:
    """A lab of its own for a process (default: this one), e.g. a test module's: a name
    that is `prefix` and a number and a subnet nothing on this machine holds, reserved
    (vnetctl.lab.allocate); bring it up with `lab_up(state.name, ...)`, remove it with
    `lab_down`. Labs reserved for processes that are gone are removed first."""
    for abandoned in allocate.abandoned_labs():
        lab_down(abandoned.name)
    return allocate.reserve_free(prefix, hosts, owner or os.getpid())


def lab_down(name: str = "lab", progress: Progress | None = None) -> None:
    """Remove exactly what the lab's state records; a lab that does not exist is a no-op."""
    say = progress or (lambda _message: None)
    state = load_state(name)
    if state is None:
        say(f"no lab named {name!r}: nothing to remove")
        return
    require_lab_environment()
    say(f"lab {name}: removing {count(len(state.hosts), 'host')}")
    relay_process.stop_relay(state)
    remove_hosts(state, state.hosts)
    netns.remove_network([], [], state.bridges)
    if state.inventory_path:
        remove_inventory(state.inventory_path, name)
    # The directory is derived from the validated name, never taken from the file's content.
    lab_dir = state_dir(name)
    if lab_dir.parent == LAB_ROOT and (lab_dir / "lab.json").exists():
        shutil.rmtree(lab_dir)
    neighbours.fit(sum(len(lab.hosts) for lab in allocate.recorded_labs()))
    say(f"lab {name}: removed")


def remove_hosts(state: LabState, hosts: list[LabHost]) -> None:
    """Stop the hosts' sshds and every process left in their namespaces, delete their
    namespaces and root-side links, and their state directories."""
    sshd.stop_sshd_processes(hosts)
    # Daemons started over SSH (ovsdb-server, ovs-vswitchd...) live in the host namespaces.
    terminate(pids_in_namespaces(netns.netns_path(h.namespace) for h in hosts))
    netns.remove_network(
        [link for h in hosts for link in h.root_links], [h.namespace for h in hosts]
    )
    for host in hosts:
        if host.dir.parent == state.state_dir / "hosts":  # never a path lab.json was edited to
            shutil.rmtree(host.dir, ignore_errors=True)


def lab_status(name: str = "lab") -> LabStatus:
    state = load_state(name)
    if state is None:
        return LabStatus(name=name, exists=False)
    namespaces = netns.existing_namespaces()
    ports = sshd.ports_open([h.address for h in state.hosts])
    ovs_alive: list[bool | None] = [None] * len(state.hosts)
    if state.ovs:
        ovs_alive = ovs_daemons.ovs_alive(state.hosts, partial(in_host_argv, state))
    libvirt_alive: list[bool | None] = [None] * len(state.hosts)
    if state.libvirt:
        reached = libvirtd.reachable(state.hosts, partial(in_host_argv, state))
        libvirt_alive = [libvirtd.libvirtd_alive(h) and ok
                         for h, ok in zip(state.hosts, reached, strict=True)]  # fmt: skip
    relayed = state.rtt_ms > 0
    relay_open: list[bool | None] = [None] * len(state.hosts)
    if relayed:
        relay_open = list(sshd.endpoints_open([h.ssh_endpoint for h in state.hosts]))
    return LabStatus(
        name=name,
        exists=True,
        rtt_ms=state.rtt_ms,
        relay_pid=state.relay_pid,
        relay_alive=relay_process.relay_alive(state) if relayed else None,
        hosts=[
            HostStatus(
                name=h.name,
                namespace=h.namespace,
                address=h.address,
                namespace_present=h.namespace in namespaces,
                sshd_alive=sshd.sshd_alive(h),
                sshd_pid=h.sshd_pid,
                port_open=port_open,
                ovs_alive=ovs_ok,
                relay_port=h.relay_port,
                relay_open=relay_ok,
                libvirt_alive=libvirt_ok,
            )
            for h, port_open, ovs_ok, relay_ok, libvirt_ok in zip(
                state.hosts, ports, ovs_alive, relay_open, libvirt_alive, strict=True
            )
        ],
    )


def stop_sshd(name: str, host: str) -> None:
    """Stop one host's sshd: afterwards its address refuses SSH connections."""
    state, lab_host = _lab_host(name, host)
    sshd.stop_sshd_processes([lab_host])
    save_state(state)


def start_sshd(name: str, host: str) -> None:
    """Start one host's sshd if it is not running, and wait until port 22 accepts."""
    state, lab_host = _lab_host(name, host)
    if not sshd.sshd_alive(lab_host):
        lab_host.sshd_pid = sshd.start_sshd_process(state, lab_host)
        save_state(state)
    sshd.wait_for_sshds([lab_host], timeout=SSHD_START_TIMEOUT)


def restart_libvirt(name: str, hosts: list[str] | None = None) -> None:
    """Restart the hosts' libvirtd (it finds hooks only when it starts); guests go on."""
    state = _lab_state(name)
    chosen = [state.host(host) for host in hosts or state.host_names]
    try:
        libvirtd.restart_libvirt(chosen, partial(in_host_argv, state))
    finally:
        save_state(state)


def reset_hosts(name: str, hosts: list[str] | None = None) -> None:
    """Give lab hosts back the network `lab up` made (between examples, and for tests
    that change it): no OVS bridges (where the lab runs Open vSwitch), extra links
    deleted, eth0-eth2 without master, at MTU 1500, up, without qdiscs, eth0 with its
    address (it may have moved into a bridge that is now gone), no routes but the
    kernel's, an empty nftables ruleset. Stopped sshds are started again. Where the lab
    runs libvirt, first: every guest destroyed and undefined, every libvirt network
    removed, hooks deleted (libvirtd restarted where there were some, or started again
    where it died)."""
    state = _lab_state(name)
    chosen = [state.host(host) for host in hosts or state.host_names]
    for host in chosen:
        if not sshd.sshd_alive(host):
            host.sshd_pid = sshd.start_sshd_process(state, host)
    save_state(state)
    if state.libvirt:  # before the links: guests' taps go with their guests
        in_host = partial(in_host_argv, state)
        try:
            libvirtd.start_libvirt(chosen, in_host)
            libvirtd.remove_guests_and_networks(chosen, in_host)
            libvirtd.restart_libvirt(libvirtd.remove_hooks(chosen, in_host), in_host)
        finally:
            save_state(state)
    if state.ovs:
        ovs_daemons.start_ovs(chosen, partial(in_host_argv, state))  # a daemon may have died
        ovs_daemons.remove_bridges(chosen, partial(in_host_argv, state))
    for host in chosen:
        netns.reset_host_links(host, state.prefixlen)
    # only now: a host cut off its management network answers once its links are reset
    sshd.wait_for_sshds(chosen, timeout=SSHD_START_TIMEOUT)


def host_exec(
    name: str, host: str, argv: list[str], input: str | None = None, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run argv on a lab host as its sshd sessions would: its network namespace and its
    own /etc, /var/lib and /run. Output is captured as text."""
    state, lab_host = _lab_host(name, host)
    command = in_host_argv(state, lab_host, argv)
    return subprocess.run(command, input=input, capture_output=True, text=True, check=check)


def in_host_argv(state: LabState, host: LabHost, argv: list[str]) -> list[str]:
    """argv wrapped to run in the host's namespaces, as its sshd sessions do."""
    if sshd.sshd_alive(host):
        return ["nsenter", "-t", str(host.sshd_pid), "-m", "-u", "-n", "--", *argv]
    # no sshd to join: build the same view in a new private mount namespace
    return [*sshd.host_shell_argv(state, host, 'exec "$@"'), "sh", *argv]


def _lab_host(name: str, host: str) -> tuple[LabState, LabHost]:
    state = _lab_state(name)
    return state, state.host(host)


def _lab_state(name: str) -> LabState:
    state = load_state(name)
    if state is None:
        raise InputError(f"no lab named {name!r}; start one with `vnetctl lab up --name {name}`")
    require_lab_environment()
    return state


def require_lab_environment() -> None:
    if os.geteuid() != 0:
        raise InputError("the lab needs root (network namespaces, mounts, sshd): run as root")
    if not os.access(sshd.SSHD, os.X_OK):
        raise LabError(f"{sshd.SSHD} is missing (install openssh-server)")
    for tool in REQUIRED_TOOLS:
        if shutil.which(tool) is None:
            raise LabError(f"{tool} is missing (install iproute2 / util-linux / openssh-client)")
