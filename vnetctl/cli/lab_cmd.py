"""`vnetctl lab up|status|down`: the lab of real SSH hosts in network namespaces."""

from __future__ import annotations

import argparse
import json
import sys
import time

from vnetctl.errors import InputError
from vnetctl.lab import lab_down, lab_status, lab_up, load_state, reset_hosts
from vnetctl.lab.allocate import POOL
from vnetctl.lab.state import DEFAULT_SUBNET, MAX_HOSTS, parse_rtt
from vnetctl.output.words import count

LAB_DESCRIPTION = """\
A lab of real Linux hosts on this machine, for tests and demos. Each lab host is a
network namespace with its own OpenSSH server and its own view of /etc, /var/lib and /run;
eth0 is on a management bridge reachable from here, eth1 and eth2 on two segment bridges.
Needs root. State lives in /var/tmp/vnetctl-lab/NAME/."""

UP_DESCRIPTION = """\
Create the lab's hosts (or mend a broken one, add or remove hosts to reach --hosts),
wait until every sshd accepts connections, and write an Ansible YAML inventory for them.
Running it again on a healthy lab changes nothing; what it was made with (--subnet,
--inventory, --ovs, --rtt) is kept unless given again.

--rtt puts a fixed round-trip time on every host's SSH path, for every SSH client alike:
one relay process (asyncio) listens on 127.0.0.1, a port per host, and forwards to the
host's sshd, delaying each direction by half the RTT (bytes keep their order and the
throughput is kept; a new connection pays one RTT more, for the TCP handshake). The
inventory then points each host at its relay (ansible_host: 127.0.0.1, ansible_port: the
port the relay took, kept while free) and known_hosts holds the keys under those names
too. `lab status` shows
the RTT; `lab up --rtt 0` removes the relay, `lab down` stops it.

examples:
  vnetctl lab up --rtt 25ms        # every host 25 ms away, as across sites
  vnetctl lab up --rtt 0           # back to direct connections"""

RESET_DESCRIPTION = """\
Give the lab's hosts back the network `lab up` made, as if they were new: every OVS
bridge deleted (on a lab with --ovs), every link but lo and eth0-eth2 deleted (bridges,
VXLAN devices, veths), the NICs without master at MTU 1500 and up, without qdiscs,
eth0 with its address, no routes but the kernel's, an empty nftables ruleset; a stopped
sshd is started. Only the lab's own namespaces are touched. Playbooks that take the same
NICs for different designs (a Linux bridge on eth1, then an OVS bond of eth1 and eth2)
can then each start from fresh hosts.

examples:
  vnetctl lab reset                # every host of lab `lab`
  vnetctl lab reset --host lab-h2  # one host"""

DOWN_DESCRIPTION = """\
Stop the lab's sshds and the processes in its namespaces, delete its namespaces, links
and bridges, its state directory and the inventory it wrote. Only what the lab's state
file names is touched. A missing lab is not an error."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    lab = subparsers.add_parser(
        "lab",
        help="create, check or remove the local lab of SSH hosts (needs root)",
        description=LAB_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = lab.add_subparsers(
        dest="lab_command", metavar="{up,status,reset,down}", required=True
    )

    up = commands.add_parser(
        "up",
        help="create the lab, or mend/resize an existing one",
        description=UP_DESCRIPTION,
    )
    _add_name(up)
    up.add_argument(
        "--hosts",
        type=int,
        default=3,
        metavar="N",
        help=f"number of hosts, 1 to {MAX_HOSTS} (default: 3)",
    )
    up.add_argument(
        "--inventory",
        metavar="PATH",
        help="where to write the inventory (default: the path used last time for this lab, "
        "else inventory/NAME.yml in the current directory)",
    )
    up.add_argument(
        "--subnet",
        help="private IPv4 management subnet: the bridge gets its first address and host i "
        "the network address + 10 + i (default: the lab's own, else "
        f"{DEFAULT_SUBNET}, so h1 is 10.213.0.11); `auto`: a free one (a /24 of "
        f"{POOL} that no other lab, address or route on this machine holds)",
    )
    up.add_argument(
        "--ovs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run Open vSwitch (its own ovsdb-server and ovs-vswitchd, userspace datapath) "
        "on every host; --no-ovs stops recording it (default: as the lab had it)",
    )
    up.add_argument(
        "--libvirt",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="run libvirtd on every host (its own, in the host's namespaces; guests under "
        "qemu's software emulation); --no-libvirt destroys the guests and stops it "
        "(default: as the lab had it)",
    )
    up.add_argument(
        "--rtt",
        type=_rtt,
        metavar="TIME",
        help="round-trip time added to every host's SSH path, e.g. 25ms (0: none; "
        "default: as the lab had it)",
    )
    up.set_defaults(func=cmd_lab_up)

    status = commands.add_parser(
        "status",
        help="show each host: namespace, sshd, port 22 (exit 1 if any is unhealthy)",
        description="Check every host of the lab: namespace present, sshd alive, port 22\n"
        "accepting connections (and Open vSwitch and libvirtd, where the lab runs them).\n"
        "Where the lab adds a round trip (lab up --rtt), the RTT, the relay's process and\n"
        "each host's relay port.",
    )
    _add_name(status)
    status.add_argument("--format", choices=["text", "json"], default="text")
    status.set_defaults(func=cmd_lab_status)

    reset = commands.add_parser(
        "reset",
        help="give the hosts back the network `lab up` made (between examples)",
        description=RESET_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_name(reset)
    reset.add_argument("--host", action="append", metavar="HOST",
                       help="only this host (repeatable; default: every host)")  # fmt: skip
    reset.set_defaults(func=cmd_lab_reset)

    down = commands.add_parser(
        "down",
        help="remove everything the lab made",
        description=DOWN_DESCRIPTION,
    )
    _add_name(down)
    down.set_defaults(func=cmd_lab_down)


def _add_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--name", default="lab", help="lab name, 1-6 characters a-z0-9 (default: lab)"
    )


def _rtt(text: str) -> float:
    try:
        return parse_rtt(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def cmd_lab_up(args: argparse.Namespace) -> int:
    started = time.monotonic()
    state = lab_up(
        name=args.name,
        hosts=args.hosts,
        inventory_path=args.inventory,
        subnet=args.subnet,
        progress=_progress,
        ovs=args.ovs,
        rtt=args.rtt,
        libvirt=args.libvirt,
    )
    address, port = state.hosts[0].ssh_endpoint
    rtt = f", {state.rtt_ms:g} ms round trip (relay pid {state.relay_pid})" if state.rtt_ms else ""
    print(
        f"lab {state.name}: {count(len(state.hosts), 'host')} up in "
        f"{time.monotonic() - started:.1f}s on {state.subnet}{rtt}\n"
        f"  inventory: {state.inventory_path}\n"
        f"  try: ssh -i {state.key_path} -o UserKnownHostsFile={state.known_hosts_path} "
        f"{'' if port == 22 else f'-p {port} '}root@{address}\n"
        f"  remove it with: vnetctl lab down --name {state.name}"
    )
    return 0


def cmd_lab_status(args: argparse.Namespace) -> int:
    status = lab_status(args.name)
    if args.format == "json":
        print(json.dumps(status.to_dict(), indent=2))
    elif not status.exists:
        print(f"no lab named {args.name!r}")
    else:
        print(f"lab {status.name}: {'healthy' if status.healthy else 'UNHEALTHY'}")
        print(f"round trip: {_round_trip(status)}")
        print(
            f"{'HOST':<12} {'ADDRESS':<15} {'NAMESPACE':<9} {'SSHD':<14} {'PORT 22':<7} "
            f"{'OVS':<5} {'LIBVIRTD':<8} RELAY"
        )
        for h in status.hosts:
            namespace = "present" if h.namespace_present else "MISSING"
            sshd = f"alive ({h.sshd_pid})" if h.sshd_alive else "dead"
            port = "open" if h.port_open else "CLOSED"
            ovs = {None: "-", True: "alive", False: "DEAD"}[h.ovs_alive]
            libvirt = {None: "-", True: "alive", False: "DEAD"}[h.libvirt_alive]
            relay = {None: "-", True: "open", False: "CLOSED"}[h.relay_open]
            if h.relay_port:
                relay = f"127.0.0.1:{h.relay_port} {relay}"
            print(
                f"{h.name:<12} {h.address:<15} {namespace:<9} {sshd:<14} {port:<7} {ovs:<5} "
                f"{libvirt:<8} {relay}"
            )
    return 0 if status.healthy else 1


def _round_trip(status) -> str:
    if not status.rtt_ms:
        return "none added (SSH goes straight to each host)"
    relay = f"alive ({status.relay_pid})" if status.relay_alive else "DEAD"
    return f"{status.rtt_ms:g} ms added on every host's SSH path; relay {relay}"


def cmd_lab_reset(args: argparse.Namespace) -> int:
    reset_hosts(args.name, args.host)
    hosts = args.host or load_state(args.name).host_names
    print(f"lab {args.name}: {count(len(hosts), 'host')} as `lab up` made them")
    return 0


def cmd_lab_down(args: argparse.Namespace) -> int:
    lab_down(args.name, progress=_progress)
    return 0
