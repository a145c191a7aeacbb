"""Open vSwitch on lab hosts: each host runs its own ovsdb-server and ovs-vswitchd.

They run in the host's namespaces (network, mount, UTS), so the database in /etc and the
sockets, pidfiles and logs in /run are the host's own (its overlays). The userspace
datapath (`datapath_type=netdev`) works in a network namespace without sharing the
kernel datapath between hosts; tunnels on it need their VTEP on an OVS bridge.
`lab down` stops the daemons with every other process in the host's namespace.

Also here: back-to-back links between two hosts, for bonds whose LACP must negotiate
(see wire_back_to_back).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from vnetctl.lab.netns import configure_hosts, create_network, ethtool_tx_off
from vnetctl.lab.proc import LabError, ip_batch, run, run_many
from vnetctl.lab.state import LabHost, LabState
from vnetctl.output.words import count

RUN_DIR = "/run/openvswitch"
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
TOOLS = ("ovsdb-tool", "ovsdb-server", "ovs-vsctl", "ovs-vswitchd")

# Idempotent: a daemon whose pidfile names a live process is left alone.
START_SCRIPT = f"""\
set -e
mkdir -p /etc/openvswitch {RUN_DIR}
alive() {{ [ -f {RUN_DIR}/$1.pid ] && kill -0 "$(cat {RUN_DIR}/$1.pid)" 2>/dev/null; }}
[ -e /etc/openvswitch/conf.db ] || ovsdb-tool create /etc/openvswitch/conf.db {SCHEMA}
if ! alive ovsdb-server; then
    ovsdb-server /etc/openvswitch/conf.db --remote=punix:{RUN_DIR}/db.sock \\
        --pidfile={RUN_DIR}/ovsdb-server.pid --detach --log-file={RUN_DIR}/ovsdb-server.log
    ovs-vsctl --no-wait init
fi
if ! alive ovs-vswitchd; then
    ovs-vswitchd unix:{RUN_DIR}/db.sock --pidfile={RUN_DIR}/ovs-vswitchd.pid --detach \\
        --log-file={RUN_DIR}/ovs-vswitchd.log
fi
ovs-vsctl --timeout=10 show >/dev/null
"""

ALIVE_SCRIPT = f"""\
for daemon in ovsdb-server ovs-vswitchd; do
    [ -f {RUN_DIR}/$daemon.pid ] && kill -0 "$(cat {RUN_DIR}/$daemon.pid)" 2>/dev/null || exit 1
done
"""


def require_ovs() -> None:
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        raise LabError(f"{', '.join(missing)} missing: install openvswitch-switch")


def start_ovs(hosts: Sequence[LabHost], in_host) -> None:
    """Start (or keep) both daemons on every host; `in_host(host, argv)` wraps argv to run
    in the host's namespaces."""
    require_ovs()
    results = run_many([(in_host(h, ["sh", "-c", START_SCRIPT]), None) for h in hosts], check=False)
    failed = [(h, r) for h, r in zip(hosts, results, strict=True) if r.returncode != 0]
    if failed:
        host, result = failed[0]
        raise LabError(
            f"Open vSwitch did not start on {host.name} ({count(len(failed), 'host')} failed): "
            f"{result.stderr.strip()[-400:]}"
        )


# Every OVS bridge of the host's own database (their ports and internal ports with them).
REMOVE_BRIDGES_SCRIPT = (
    'for br in $(ovs-vsctl --timeout=10 list-br); do ovs-vsctl --timeout=10 del-br "$br"; done'
)


def remove_bridges(hosts: Sequence[LabHost], in_host) -> None:
    """Delete every OVS bridge on the hosts, as a host `lab up --ovs` made has none."""
    results = run_many([(in_host(h, ["sh", "-c", REMOVE_BRIDGES_SCRIPT]), None) for h in hosts],
                       check=False)  # fmt: skip
    failed = [(h, r) for h, r in zip(hosts, results, strict=True) if r.returncode != 0]
    if failed:
        host, result = failed[0]
        raise LabError(f"could not remove the OVS bridges of {host.name}: "
                       f"{result.stderr.strip()[-400:]}")  # fmt: skip


def ovs_alive(hosts: Sequence[LabHost], in_host) -> list[bool]:
    results = run_many([(in_host(h, ["sh", "-c", ALIVE_SCRIPT]), None) for h in hosts], check=False)
    return [r.returncode == 0 for r in results]


# ---- back-to-back links: two hosts' NICs cabled to each other, no switch between --------
#
# The segment bridges (`vnl{lab}-s1`, `-s2`) are Linux bridges, and a Linux bridge never
# forwards LACP (01:80:c2:00:00:02 is a reserved group address the kernel will not let
# group_fwd_mask forward), so a bond's LACP cannot negotiate through them. For bond tests
# two hosts' eth1 and eth2 are instead cabled to each other: each root-side veth of those
# NICs is deleted (taking the host's ethK with it) and a veth pair is made directly
# between the two host namespaces, named ethK on both sides. `unwire_back_to_back` puts
# them back on the segment bridges; `lab down` removes everything either way (the pairs
# live and die with the namespaces). Run `unwire_back_to_back` before `lab up` mends the
# lab: `lab up` recreates missing root-side veths and would find ethK taken.


def wire_back_to_back(state: LabState, a: str, b: str, nics: Sequence[int] = (1, 2)) -> None:
    """Cable host `a`'s and host `b`'s ethK to each other, for each K in `nics`."""
    first, second = state.host(a), state.host(b)
    commands = [f"link del {h.root_links[k]}" for h in (first, second) for k in nics]
    commands += [
        f"link add name eth{k} netns {first.namespace} type veth "
        f"peer name eth{k} netns {second.namespace}"
        for k in nics
    ]
    ip_batch(commands)
    ethtool = shutil.which("ethtool")
    for host in (first, second):
        script = [f"ip link set eth{k} up" for k in nics]
        if ethtool:  # TCP across the userspace datapath stalls with tx checksum offload
            script += [ethtool_tx_off(ethtool, f"eth{k}") for k in nics]
        run(["ip", "netns", "exec", host.namespace, "sh", "-c", "\n".join(script)])


def unwire_back_to_back(state: LabState, a: str, nics: Sequence[int] = (1, 2)) -> None:
    """Put the back-to-back NICs of `a` (and so of its partner) on the segment bridges
    again, as `lab up` made them."""
    host = state.host(a)
    run(["ip", "-n", host.namespace, "-force", "-batch", "-"],
        "".join(f"link del eth{k}\n" for k in nics), check=False)  # fmt: skip
    create_network(state)
    configure_hosts(state)
