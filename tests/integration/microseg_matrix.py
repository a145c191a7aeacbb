"""The micro-segmentation lab's policy and its allow/deny matrix, one table for both
dataplanes (test_microseg_lab.py on Linux bridges, test_microseg_ovs_lab.py on Open
vSwitch): the VMs, a three-tier policy (web, app, db, mgmt), and each flow with its
verdict. Allowed flows are TCP and UDP echoes, so the answer comes back by state."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator

import yaml

from tests.integration import microseg_vms as guests
from tests.labhosts import inventory_with, own_lab
from vnetctl.cli.main import main
from vnetctl.lab.state import LabState

VMS = {
    "web-1": {"mac": "52:54:00:30:00:11", "addresses": ["10.30.0.11", "fd30::11"]},
    "app-1": {"mac": "52:54:00:30:00:21", "addresses": ["10.30.0.21", "fd30::21"]},
    "mgmt-1": {"mac": "52:54:00:30:00:91", "addresses": ["10.30.0.91", "fd30::91"],
               "metadata": {"role": "mgmt"}},
    "db-1": {"mac": "52:54:00:30:00:31", "addresses": ["10.30.0.31", "fd30::31"],
             "metadata": {"tier": "db"}},
    "db-2": {"mac": "52:54:00:30:00:32", "addresses": ["10.30.0.32", "fd30::32"],
             "metadata": {"tier": "db"}},
}  # fmt: skip
GROUPS = [
    {"name": "mgmt", "members": {"metadata": {"role": "mgmt"}}},
    {"name": "web", "members": {"name": "web-*"}, "default_egress": "drop",
     "ingress": [{"from": ["any"], "proto": "tcp", "ports": [80]}],
     "egress": [{"to": ["app"], "proto": "tcp", "ports": [8080]}]},
    {"name": "app", "members": {"name": "app-*"}, "default_egress": "drop",
     "ingress": [{"from": ["web"], "proto": "tcp", "ports": [8080]}],
     "egress": [{"to": ["db"], "proto": "tcp", "ports": [5432]},
                {"to": ["db"], "proto": "udp", "ports": [5353]}]},
    {"name": "db", "members": {"metadata": {"tier": "db"}},
     "ingress": [{"from": ["app"], "proto": "tcp", "ports": [5432]},
                 {"from": ["app"], "proto": "udp", "ports": [5353]},
                 {"from": ["mgmt"], "proto": "icmp", "icmp_types": ["echo-request"]},
                 {"from": ["mgmt"], "proto": "icmpv6", "icmp_types": ["echo-request"]}]},
]  # fmt: skip
# name: (source VM, kind, destination VM, IP version, port, verdict)
FLOWS = {
    "app->db tcp/5432": ("app-1", "tcp", "db-1", 4, 5432, "pass"),
    "app->db tcp/5432 ipv6": ("app-1", "tcp", "db-1", 6, 5432, "pass"),
    "app->db udp/5353": ("app-1", "udp", "db-1", 4, 5353, "pass"),
    "web->app tcp/8080": ("web-1", "tcp", "app-1", 4, 8080, "pass"),
    "mgmt->db ping": ("mgmt-1", "icmp", "db-1", 4, 0, "pass"),
    "mgmt->db ping ipv6": ("mgmt-1", "icmp", "db-1", 6, 0, "pass"),
    "web->db tcp/5432": ("web-1", "tcp", "db-1", 4, 5432, "blocked"),
    "web->db tcp/5432 ipv6": ("web-1", "tcp", "db-1", 6, 5432, "blocked"),
    "app->db tcp/22": ("app-1", "tcp", "db-1", 4, 22, "blocked"),
    "web->db udp/5353": ("web-1", "udp", "db-1", 4, 5353, "blocked"),
    "web->db ping": ("web-1", "icmp", "db-1", 4, 0, "blocked"),
    "db->app tcp/8080": ("db-1", "tcp", "app-1", 4, 8080, "blocked"),
    "mgmt->app tcp/8080": ("mgmt-1", "tcp", "app-1", 4, 8080, "blocked"),
}
EXPECTED = {name: flow[-1] for name, flow in FLOWS.items()}


def addr(vm: str, version: int = 4) -> str:
    return next(a for a in VMS[vm]["addresses"] if (":" in a) == (version == 6))


def matrix(lab) -> dict[str, str]:
    """Each flow of FLOWS, and the verdict seen (db-1 and app-1 listening)."""
    with guests.listening(lab, "db-1", [5432, 5353, 22]), guests.listening(lab, "app-1", [8080]):
        return {name: guests.probe(lab, src, kind, addr(dst, version), port)
                for name, (src, kind, dst, version, port, _) in FLOWS.items()}  # fmt: skip


def run_json(argv: list[str]) -> dict:
    """`vnetctl ARGV --format json` in this process: its JSON report and exit code."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([*argv, "--format", "json"])
    return {"code": code, **json.loads(out.getvalue())}


@contextlib.contextmanager
def microseg_lab(prefix: str, folder, ovs: bool = False) -> Iterator[LabState]:
    """Two hosts of a lab of the allocator's, every VM-like guest of VMS removed after."""
    with own_lab(prefix, folder, hosts=2, ovs=ovs) as state:
        try:
            yield state
        finally:
            for vm in VMS:
                guests.remove_vm(state, vm)


def vms_of(placement: dict[str, list[str]], host: str) -> list[dict]:
    """`host`'s `vms` variable: the VMs `placement` puts there, each with its port."""
    return [dict(VMS[v], name=v, port=v + "p") for v in placement.get(host, [])]


def groups_task(bridge: str) -> dict:
    policy = {"name": "three-tier", "bridge": bridge, "vms": "{{ vms }}", "groups": GROUPS}
    return {"name": "groups", "security_groups": policy}


def run_play(lab: LabState, tmp_path, vars_of: Callable[[str], dict], tasks: list[dict],
             *extra: str) -> dict:  # fmt: skip
    """One play of `tasks` on every host, each host's variables from `vars_of`."""
    inventory = inventory_with(lab, tmp_path / "inventory.yml", vars_of)
    path = tmp_path / "play.yml"
    path.write_text(yaml.safe_dump([{"name": "microseg", "hosts": "all", "tasks": tasks}]))
    return run_json(["run", str(path), "-i", str(inventory), *extra])
