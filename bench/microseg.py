"""python -m bench.microseg [--hosts 10] [--groups 100] [--rules 20] [--seconds 5]

Micro-segmentation (issue 30), measured on a lab of its own (from the allocator, removed
afterwards): a VXLAN mesh across `--hosts` hosts, `--groups` groups of one VM each
spread over the hosts (declared in the inventory: matched by MAC, no guest needed), each
group with `--rules` rules (half ingress, half egress, naming other groups: every host's
table names VMs of every other host). Prints the wall time of `vnetctl run`:

    first apply     every host's table written (resolution on the controller, one nft
                    transaction per host)
    no change       the same again: read back, nothing to write
    one VM moves    one VM's address changes: every host whose rules name its group
                    writes its table again

and the nft rules per host. Then iperf3 (bench.iperf, the one runner) between two
guests on two hosts across the mesh, allowed by the policy: without any policy, with
br_netfilter on but no table, and with the whole policy. Load average beside each
figure: the machine is shared. Asserts nothing: tests assert.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench import iperf
from tests.integration import microseg_vms as guests
from vnetctl.cli.main import main as vnetctl
from vnetctl.lab import allocate_lab, host_exec, lab_down, lab_up

BRIDGE = "br-sg"
CLIENT, SERVER = "vm-0", "vm-1"  # real guests on the first two hosts; group g0 -> g1 allowed


def vm(i: int, moved: bool = False) -> dict:
    net = "10.32" if moved else "10.31"
    return {"name": f"vm-{i}", "mac": f"52:54:00:31:{i // 256:02x}:{i % 256:02x}",
            "addresses": [f"{net}.{i // 250}.{1 + i % 250}", f"fd31::{i:x}"],
            "port": f"vm-{i}p"}  # fmt: skip


def groups(count: int, rules: int) -> list[dict]:
    out = []
    for i in range(count):
        ingress = [{"from": [f"g{(i - k) % count}"], "proto": "tcp", "ports": [5201, 1000 + k]}
                   for k in range(1, rules // 2 + 1)]  # fmt: skip
        egress = [{"to": [f"g{(i + k) % count}"], "proto": "tcp" if k % 2 else "udp",
                   "ports": [5201, 2000 + k]}
                  for k in range(1, rules - rules // 2 + 1)]  # fmt: skip
        out.append({"name": f"g{i}", "members": {"name": f"vm-{i}"}, "ingress": ingress,
                    "egress": egress, "default_egress": "drop"})  # fmt: skip
    return out


def run(lab, folder: Path, placement: dict[str, list[dict]], group_list: list[dict],
        state: str = "present") -> tuple[float, dict]:  # fmt: skip
    doc = yaml.safe_load(lab.inventory_path.read_text())
    for name, host_vars in doc["all"]["children"]["lab"]["hosts"].items():
        host_vars["vms"] = placement.get(name, [])
    inventory = folder / "inventory.yml"
    inventory.write_text(yaml.safe_dump(doc))
    mesh = {"name": "sg", "vtep_interface": "eth0",
            "segments": [{"vni": 310, "bridge": BRIDGE, "mtu": 1450}]}  # fmt: skip
    policy = {"name": "bench", "bridge": BRIDGE, "vms": "{{ vms }}", "groups": group_list,
              "state": state}  # fmt: skip
    play = [{"name": "microseg bench", "hosts": "all",
             "tasks": [{"vxlan_mesh": mesh}, {"security_groups": policy}]}]  # fmt: skip
    (folder / "play.yml").write_text(yaml.safe_dump(play))
    out = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out):
        code = vnetctl(["run", str(folder / "play.yml"), "-i", str(inventory), "--format",
                        "json", "--forks", "10"])  # fmt: skip
    took = time.monotonic() - started
    doc = json.loads(out.getvalue())
    if code != 0:
        failed = [r.get("msg") for r in doc["results"] if r["status"] == "failed"]
        raise RuntimeError(f"vnetctl run failed: {failed[:1]}")
    return took, doc


def changed(doc: dict) -> int:
    return sum(1 for r in doc["results"] if r["resource"].startswith("security_groups")
               and r["status"] == "changed")  # fmt: skip


def rules_on(lab, host: str) -> int:
    out = host_exec(lab.name, host, ["nft", "list", "table", "inet", "vnetctl_microseg"]).stdout
    return out.count(" comment ")


def load() -> str:
    return f"{os.getloadavg()[0]:.2f}"


def main() -> int:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="python -m bench.microseg", description=__doc__,
                                     formatter_class=raw)  # fmt: skip
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--groups", type=int, default=100)
    parser.add_argument("--rules", type=int, default=20)
    parser.add_argument("--seconds", type=int, default=5, help="per iperf3 run")
    args = parser.parse_args()
    reserved = allocate_lab("sg", args.hosts)
    folder = Path(tempfile.mkdtemp(prefix="bench-microseg-"))
    lab = lab_up(reserved.name, hosts=args.hosts, inventory_path=folder / "lab.yml")
    try:
        names = lab.host_names
        placement = {h: [vm(i) for i in range(args.groups) if i % len(names) == n]
                     for n, h in enumerate(names)}  # fmt: skip
        group_list = groups(args.groups, args.rules)
        print(f"{args.groups} groups x {args.rules} rules, {args.groups} VMs on "
              f"{len(names)} hosts; `uptime`: {os.popen('uptime').read().strip()}")  # fmt: skip
        took, doc = run(lab, folder, placement, group_list)
        print(f"first apply: {took:.2f} s, {changed(doc)} hosts changed, load {load()}; nft "
              f"rules per host: {[rules_on(lab, h) for h in names]}")  # fmt: skip
        took, doc = run(lab, folder, placement, group_list)
        print(f"no change:   {took:.2f} s, {changed(doc)} hosts changed, load {load()}")
        moved = {h: [vm(i, moved=(i == 5)) for i in range(args.groups) if i % len(names) == n]
                 for n, h in enumerate(names)}  # fmt: skip
        took, doc = run(lab, folder, moved, group_list)
        print(f"one VM's address changes: {took:.2f} s, {changed(doc)} hosts changed, "
              f"load {load()}")  # fmt: skip
        label = f"with the policy ({args.groups} x {args.rules})"
        return throughput(lab, folder, placement, group_list, args.seconds, label)
    finally:
        for name in (CLIENT, SERVER):
            guests.remove_vm(lab, name)
        lab_down(reserved.name)


def throughput(lab, folder, placement, group_list, seconds: int, label: str) -> int:
    """iperf3 from vm-0 (first host) to vm-1 (second host), tcp 5201: g0's egress and
    g1's ingress allow it."""
    h1, h2 = lab.host_names[:2]
    guests.add_vm(lab, h1, vm(0), BRIDGE)
    guests.add_vm(lab, h2, vm(1), BRIDGE)
    server, client = guests.namespace(lab, SERVER), guests.namespace(lab, CLIENT)
    address = vm(1)["addresses"][0]

    def measure(case: str) -> None:
        rates = [iperf.flows(client, server, address, [5201], seconds)[5201] for _ in range(3)]
        rates.sort()
        print(f"iperf3 {case}: {rates[0]:.0f} / {rates[1]:.0f} / {rates[2]:.0f} Mbit/s "
              f"(min / median / max of 3 x {seconds} s), load {load()}")  # fmt: skip

    measure(label)
    run(lab, folder, placement, group_list, state="absent")
    measure("br_netfilter on, no table")
    for host in (h1, h2):
        for key in ("net.bridge.bridge-nf-call-iptables", "net.bridge.bridge-nf-call-ip6tables"):
            host_exec(lab.name, host, ["sysctl", "-qw", f"{key}=0"])
    measure("no policy, br_netfilter off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
