"""Namespaces, veth pairs and bridges of a lab, created and removed with batched `ip` calls."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from collections.abc import Callable, Iterable

from vnetctl.lab.proc import LabError, ip_batch, ip_batch_argv, run, run_many
from vnetctl.lab.state import LabHost, LabState

NETNS_DIR = "/run/netns"
MGMT = 0  # index of the management NIC (eth0) and of its bridge
NAMESPACE_TEARDOWN_WAIT = 5.0
REMOVE_ATTEMPTS = 3  # link deletions, each after reading what is still there


def existing_namespaces() -> set[str]:
    try:
        return set(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return set()


def existing_links() -> set[str]:
    return {link["ifname"] for link in json.loads(run(["ip", "-j", "link", "show"]).stdout)}


def create_network(state: LabState) -> None:
    """Create the lab's missing bridges, namespaces and veth pairs in one root `ip -batch`.

    Existing pieces are left alone; `link set ... master/up` and `addr replace` are no-ops
    on a healthy lab, and mend a link that lost its bridge or went down.
    """
    links = existing_links()
    namespaces = existing_namespaces()
    commands = [f"link add {br} type bridge" for br in state.bridges if br not in links]
    for host in state.hosts:
        if host.namespace not in namespaces:
            commands.append(f"netns add {host.namespace}")
        for nic, link in enumerate(host.root_links):
            if link not in links:
                commands.append(
                    f"link add {link} type veth peer name eth{nic} netns {host.namespace}"
                )
    for host in state.hosts:
        for nic, link in enumerate(host.root_links):
            commands.append(f"link set {link} master {state.bridges[nic]} up")
    commands.append(f"addr replace {state.gateway}/{state.prefixlen} dev {state.bridges[MGMT]}")
    commands.extend(f"link set {br} up" for br in state.bridges)
    ip_batch(commands)


def forget_neighbours(state: LabState, hosts: Iterable[LabHost]) -> None:
    """Drop what this machine remembers of the hosts' addresses on the management bridge.

    A host rebuilt (or made again at an index a removed host had) gets new veths, hence
    a new MAC, at its old address; a neighbour entry for the old MAC can stay REACHABLE
    for tens of seconds and the new sshd would look dead meanwhile."""
    ip_batch([f"neigh flush to {h.address} dev {state.bridges[MGMT]}" for h in hosts])


def configure_hosts(state: LabState, progress: Callable[[str], None] | None = None) -> None:
    """Inside each host namespace: lo and NICs up, eth0's address, arp_ignore, no tx csum.

    One `ip -n NS -batch -` and one `ip netns exec NS sh` per host, run a few at a time.
    """
    ethtool = shutil.which("ethtool")
    if ethtool is None and progress:
        progress("ethtool not found: leaving tx checksum offload on (OVS netdev TCP may stall)")
    jobs: list[tuple[list[str], str | None]] = []
    root_links = []
    for host in state.hosts:
        batch = [
            "link set lo up",
            f"addr replace {host.address}/{state.prefixlen} dev eth0",
            *(f"link set eth{nic} up" for nic in range(len(host.root_links))),
        ]
        jobs.append((ip_batch_argv(host.namespace), "\n".join(batch) + "\n"))
        # arp_ignore=1: without it the host answers ARP for any of its addresses on any port,
        # which confuses bridges built on eth1/eth2 later.
        script = ["echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore"]
        if ethtool:
            script += [ethtool_tx_off(ethtool, f"eth{nic}") for nic in range(len(host.root_links))]
        jobs.append((["ip", "netns", "exec", host.namespace, "sh", "-c", "\n".join(script)], None))
        root_links.extend(host.root_links)
    if ethtool:
        # the root-side peers, a chunk per shell so they run beside the namespace jobs
        for start in range(0, len(root_links), 30):
            chunk = root_links[start : start + 30]
            script = "\n".join(ethtool_tx_off(ethtool, link) for link in chunk)
            jobs.append((["sh", "-c", script], None))
    run_many(jobs)


def reset_host_links(host: LabHost, prefixlen: int) -> None:
    """Undo network changes made inside the host: delete every link but lo and its NICs,
    give the NICs back their first state (no master, MTU 1500, up, no qdisc, no global
    address on eth1/eth2, eth0's own address), and remove every route the kernel did not
    make (`ip route add`'s and the route module's, in every table)."""
    nics = [f"eth{nic}" for nic in range(len(host.root_links))]
    argv = ["ip", "-n", host.namespace, "-j", "link", "show"]
    extra = [link["ifname"] for link in json.loads(run(argv).stdout)]
    extra = [name for name in extra if name not in ("lo", *nics)]
    commands = [f"link del dev {name}" for name in extra]  # dev: a link named "help" too
    for nic in nics:
        commands += [f"link set {nic} nomaster", f"link set {nic} mtu 1500 up"]
        if nic != "eth0":
            commands.append(f"addr flush dev {nic} scope global")
    commands.append(f"addr replace {host.address}/{prefixlen} dev eth0")
    commands += [f"route flush table all proto {proto}" for proto in ("boot", "static")]
    # -force: go on past links already gone with an earlier one (veth peers, VXLAN over a
    # deleted bridge); what matters is checked below.
    run(["ip", "-n", host.namespace, "-force", "-batch", "-"], "\n".join(commands) + "\n", False)
    tc = [f"qdisc del dev {nic} {where}" for nic in nics for where in ("root", "ingress")]
    run(["tc", "-n", host.namespace, "-force", "-batch", "-"], "\n".join(tc) + "\n", False)
    if shutil.which("nft"):  # port security's tables, made by modules on the host
        run(["ip", "netns", "exec", host.namespace, "nft", "flush", "ruleset"], check=False)
    left = {link["ifname"] for link in json.loads(run(argv).stdout)} - {"lo", *nics}
    if left:
        raise LabError(f"could not delete {', '.join(sorted(left))} on lab host {host.name}")


def ethtool_tx_off(ethtool: str, link: str) -> str:
    # Needed for TCP across OVS userspace (netdev) bridges; failures are not fatal.
    return f"{ethtool} -K {shlex.quote(link)} tx off >/dev/null 2>&1 || true"


def remove_network(
    links: Iterable[str], namespaces: Iterable[str], bridges: Iterable[str] = ()
) -> None:
    """Delete exactly the named namespaces, links and bridges that still exist, and
    check that none is left (LabError naming what is).

    Namespaces go first: the kernel tears a namespace down asynchronously and unregisters
    its devices (and their root-side veth peers) in one batch, which for 100 hosts takes
    well under a second, where `link del` of 300 veths one by one takes about 6 s. Root-side
    links still present after the wait (a namespace kept alive by a process, a machine
    under load) are deleted by name. The kernel may still be removing some of them as
    the list is read: a line for a link gone meanwhile fails, so the batches run with
    -force (the lines after a failure still run) and what is left is read again, a few
    times, rather than trusted to a batch's exit code.
    """
    links, bridges = list(links), list(bridges)
    present_namespaces = existing_namespaces()
    _ip_force([f"netns del {ns}" for ns in namespaces if ns in present_namespaces])
    deadline = time.monotonic() + NAMESPACE_TEARDOWN_WAIT
    remaining = set(links) & existing_links()
    while remaining and time.monotonic() < deadline:
        time.sleep(0.05)
        remaining &= existing_links()
    for _attempt in range(REMOVE_ATTEMPTS):
        present = existing_links()
        commands = [f"link del {link}" for link in [*links, *bridges] if link in present]
        if not commands:
            break
        _ip_force(commands)
    left = sorted(set(namespaces) & existing_namespaces())
    left += sorted({*links, *bridges} & existing_links())
    if left:
        raise LabError(f"could not remove {', '.join(left)} (run `vnetctl lab down` again)")


def _ip_force(commands: list[str]) -> None:
    """One `ip -force -batch`: every line runs; failures are found by reading again."""
    if commands:
        run(["ip", "-force", "-batch", "-"], "\n".join(commands) + "\n", check=False)


def netns_path(namespace: str) -> str:
    return os.path.join(NETNS_DIR, namespace)
