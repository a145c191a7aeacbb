"""`vnetctl mesh check`: a reachability matrix across the overlay."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.table import Table

from vnetctl.cli.common import (
    add_playbook_arguments,
    add_tag_arguments,
    plan_from_args,
    run_context,
    tag_filters,
)
from vnetctl.cli.mesh_sample_args import add_sample_arguments, sample_from_args
from vnetctl.fleet.mesh.probe import Segment, check_mesh, host_errors, pair_states
from vnetctl.output.console import printed
from vnetctl.output.pipes import PipeAwareConsole
from vnetctl.output.words import count
from vnetctl.runner.results import ExitCode
from vnetctl.secrets import redact

HELP = """\
For every VXLAN mesh in PLAYBOOK, send traffic across the overlay from each member to
each other member, per segment: ping with don't-fragment at the segment's full MTU and
at a small size. The same for every VLAN an OVS port group declares (ovs_port_group with
a vlan; its mtu, else 1500), between the hosts that have the group: a segment check of
the physical network. Each pair is reachable, mtu-broken (small frames pass, full-size
ones do not: an underlay MTU problem) or unreachable (a VLAN missing on a trunk, a link
down). Changes nothing but a throwaway probe namespace per segment on each host, removed
at the end.

By default each member probes --sample K peers per segment (its successor on a ring of
the members, so every member is probed as source and target, and K-1 drawn from a seed
the report prints): N×K probes, not N². A segment of K+1 members or fewer is probed
whole; --full probes every pair; --seed S repeats a run's sample. A pair not probed is
shown as such (a dot), never as reachable.

examples:
  vnetctl mesh check playbooks/vxlan-mesh.yml -i inventory/lab.yml
  vnetctl mesh check playbooks/vxlan-mesh.yml -i inventory/lab.yml --format json
  vnetctl mesh check playbooks/ovs-port-groups.yml -i inventory/lab.yml
  vnetctl mesh check playbooks/vxlan-mesh.yml -i inventory/lab.yml --sample 1 --seed 7
  vnetctl mesh check playbooks/vxlan-mesh.yml -i inventory/lab.yml --full
"""

CELL = {
    "reachable": "[green]ok[/]",
    "mtu-broken": "[yellow]MTU[/]",
    "unreachable": "[bold red]--[/]",
}
NOT_PROBED = "[dim]·[/]"
MATRIX_HOSTS = 16  # above, a segment's pairs are counted and the bad ones listed


def add_parser(commands) -> None:
    mesh = commands.add_parser("mesh", help="VXLAN mesh tools: check the overlay")
    sub = mesh.add_subparsers(metavar="ACTION", required=True)
    parser = sub.add_parser(
        "check",
        help="reachability matrix across the overlay",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_playbook_arguments(parser)
    add_tag_arguments(parser)
    add_sample_arguments(parser)
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    context = run_context(args, check=False)
    plans = plan_from_args(args, context, **tag_filters(args))
    sample, described = sample_from_args(args), {}
    run, not_applied = check_mesh(plans, context, args.playbook, sample=sample,
                                  sample_out=described)  # fmt: skip
    if run.interrupted:
        print("vnetctl: mesh check interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    pairs, errors = redact(pair_states(run)), redact(host_errors(run))
    if args.format == "json":
        doc = {
            "pairs": pairs,
            "sample": described,
            "errors": errors,
            "unreachable": redact(run.unreachable),
            "not_applied": {h: [s.vni for s in segs if s.vni] for h, segs in not_applied.items()},
            "not_applied_vlans": {
                h: [s.vlan for s in segs if s.vlan]
                for h, segs in not_applied.items()
                if any(s.vlan for s in segs)
            },
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        print_matrix(pairs, errors)
        print_sample(described)
        print_not_applied(
            not_applied, f"vnetctl run {args.playbook} -i {' -i '.join(args.inventory)}"
        )
        if not (pairs or errors or not_applied):
            print("no pair to probe: each segment has a single member here")
    if run.unreachable:
        return ExitCode.HOST_UNREACHABLE
    broken = errors or not_applied or any(p["state"] != "reachable" for p in pairs)
    return ExitCode.HOST_FAILED if broken else ExitCode.SUCCESS


def print_not_applied(not_applied: dict[str, list[Segment]], apply: str) -> None:
    console = PipeAwareConsole(highlight=False, soft_wrap=True)
    for host, segments in sorted(not_applied.items()):
        which = ", ".join(f"{s.label} (no bridge {s.bridge})" for s in segments)
        console.print(f"[bold red]not applied[/]: {printed(host)}: {printed(which)}")
    if not_applied:
        console.print(
            f"the mesh is not applied on {count(len(not_applied), 'member')}: "
            f"apply it with `{apply}`"
        )


def print_matrix(pairs: Sequence[dict], errors: dict[str, str]) -> None:
    console = PipeAwareConsole(highlight=False, soft_wrap=True)
    segments = sorted({(("vlan" in p), p.get("vni") or p.get("vlan")) for p in pairs})
    for is_vlan, number in segments:
        kind = "vlan" if is_vlan else "vni"
        rows = [p for p in pairs if p.get(kind) == number]
        hosts = sorted({p["source"] for p in rows} | {p["target"] for p in rows})
        title = f"{kind.upper()} {number} (MTU {rows[0]['mtu']})"
        if len(hosts) > MATRIX_HOSTS:
            print_pair_list(console, title, hosts, rows)
            continue
        cell = {(p["source"], p["target"]): p["state"] for p in rows}
        table = Table(title=f"{title}: from row to column", title_justify="left")
        table.add_column("from \\ to", style="bold")
        for host in hosts:
            table.add_column(printed(host), justify="center")
        for src in hosts:
            cells = ("" if src == dst else CELL.get(cell.get((src, dst)), NOT_PROBED)
                     for dst in hosts)  # fmt: skip
            table.add_row(printed(src), *cells)
        console.print(table)
    bad = [p for p in pairs if p["state"] != "reachable"]
    if pairs:
        console.print(
            f"{len(pairs) - len(bad)} of {count(len(pairs), 'pair')} reachable"
            + (f"; [bold red]{len(bad)} not[/]" if bad else "")
        )
    for host, reason in errors.items():
        console.print(f"[bold red]error[/]: {printed(host)}: {printed(reason)}")


def print_pair_list(console, title: str, hosts: list[str], rows: Sequence[dict]) -> None:
    """A segment too wide for a matrix: its counts, and each pair probed that is not
    reachable."""
    bad = [p for p in rows if p["state"] != "reachable"]
    console.print(
        f"{title}: {count(len(hosts), 'member')}, {count(len(rows), 'pair')} probed, "
        f"{len(rows) - len(bad)} reachable" + (f", [bold red]{len(bad)} not[/]:" if bad else "")
    )
    for p in bad:
        console.print(f"  {printed(p['source'])} -> {printed(p['target'])}: {p['state']}")


def print_sample(described: dict) -> None:
    """How the pairs were chosen; the pairs not probed are counted, never called reachable."""
    if not described or not described["pairs_total"]:
        return
    console = PipeAwareConsole(highlight=False, soft_wrap=True)
    if described["mode"] == "full":
        console.print(f"every pair probed (--full): {count(described['pairs_total'], 'pair')}")
        return
    console.print(
        f"sampled: {described['pairs_probed']} of {count(described['pairs_total'], 'pair')} "
        f"probed ({described['peers_per_member']} per member and segment, seed "
        f"{described['seed']}: repeat with --seed {described['seed']}); "
        f"{described['pairs_not_probed']} not probed (·), --full probes them all"
    )
