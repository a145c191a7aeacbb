"""`vnetctl mesh check`: a reachability matrix across the overlay."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rich.table import Table

from vnetctl.catalog import Catalog
from vnetctl.cli.common import add_playbook_arguments, open_inventory, plan_from_args, run_options
from vnetctl.errors import InputError
from vnetctl.fleet.execute import connection_specs, member_renderer, run_interruptible
from vnetctl.fleet.mesh_check import (
    ProbeLayout,
    Segment,
    host_errors,
    layout_from,
    pair_states,
    probe_plans,
)
from vnetctl.fleet.vxlan import expand_meshes, hosts_to_reach
from vnetctl.output.console import SilentReporter
from vnetctl.output.pipes import PipeAwareConsole
from vnetctl.output.words import count
from vnetctl.runner.results import ExitCode, RunResult
from vnetctl.runner.runner import Runner
from vnetctl.secrets import redact

HELP = """\
For every VXLAN mesh in PLAYBOOK, send traffic across the overlay from each member to
each other member, per segment: ping with don't-fragment at the segment's full MTU and
at a small size. Each pair is reachable, mtu-broken (small frames pass, full-size ones
do not: an underlay MTU problem) or unreachable. Changes nothing but a throwaway probe
namespace per segment on each host, removed at the end.

examples:
  vnetctl mesh check playbooks/vxlan-mesh.yml -i inventory/lab.yml
  vnetctl mesh check playbooks/vxlan-mesh.yml -i inventory/lab.yml --format json
"""

CELL = {
    "reachable": "[green]ok[/]",
    "mtu-broken": "[yellow]MTU[/]",
    "unreachable": "[bold red]--[/]",
}


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
    parser.add_argument("--format", choices=["text", "json"], default="text")
    parser.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    catalog = Catalog()
    inventory = open_inventory(args)
    plans, extra_vars = plan_from_args(args, catalog, inventory)
    hosts = hosts_to_reach(plans, inventory)
    options = run_options(args, check=False)
    runner = Runner(catalog, connection_specs(inventory, hosts), options, SilentReporter())
    render_members = member_renderer(inventory, catalog, extra_vars)

    async def probe() -> tuple[RunResult, dict[str, list[Segment]]]:
        try:
            declared = layout_from(plans)  # segments as declared, before expansion
            unreadable: dict[str, str] = {}  # members whose VTEP could not be read
            # no preflight: a broken fleet is what this command is for
            await expand_meshes(
                runner, plans, inventory, render_members, preflight=False, unchecked=unreadable
            )
            # a mesh with an unreachable member is left out of the expanded plans: probe
            # its segments as declared, and the unreachable member is reported as such
            layout = declared if unreadable else layout_from(plans)
            if not layout.segments:
                raise InputError(f"{args.playbook}: no vxlan_mesh task for these hosts")
            facts = await runner.gather_facts(sorted(layout.segments))
            not_applied = leave_out_unapplied(layout, facts)
            if layout.segments:
                await runner.run_plays(probe_plans(layout))
            runner.result.interrupted = runner.stop.requested
            return runner.result, not_applied
        finally:
            await runner.pool.close_all()

    run, not_applied = run_interruptible(runner, probe())
    if run.interrupted:
        print("vnetctl: mesh check interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    pairs, errors = redact(pair_states(run)), redact(host_errors(run))
    if args.format == "json":
        doc = {
            "pairs": pairs,
            "errors": errors,
            "unreachable": redact(run.unreachable),
            "not_applied": {h: [s.vni for s in segs] for h, segs in not_applied.items()},
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        print_matrix(pairs, errors)
        print_not_applied(not_applied, f"vnetctl run {args.playbook} -i {args.inventory}")
        if not (pairs or errors or not_applied):
            print("no pair to probe: each segment has a single member here")
    if run.unreachable:
        return ExitCode.HOST_UNREACHABLE
    broken = errors or not_applied or any(p["state"] != "reachable" for p in pairs)
    return ExitCode.HOST_FAILED if broken else ExitCode.SUCCESS


def leave_out_unapplied(layout: ProbeLayout, facts: dict) -> dict[str, list[Segment]]:
    """Per member, the segments whose bridge it does not have (the mesh is not applied
    there): taken out of the layout, since a probe has nothing to attach to. A member
    whose facts could not be read stays: the probe reports why."""
    missing: dict[str, list[Segment]] = {}
    for host, segments in list(layout.segments.items()):
        host_facts = facts.get(host)
        if not isinstance(host_facts, dict):
            continue
        bridges = {link.get("ifname") for link in host_facts.get("links", [])}
        bridges |= set((host_facts.get("ovs") or {}).get("bridges") or {})
        for vni, segment in sorted(segments.items()):
            if segment.bridge not in bridges:
                missing.setdefault(host, []).append(segment)
                del segments[vni]
        if not segments:
            del layout.segments[host]
    return missing


def print_not_applied(not_applied: dict[str, list[Segment]], apply: str) -> None:
    console = PipeAwareConsole(highlight=False, soft_wrap=True)
    for host, segments in sorted(not_applied.items()):
        which = ", ".join(f"VNI {s.vni} (no bridge {s.bridge})" for s in segments)
        console.print(f"[bold red]not applied[/]: {host}: {which}")
    if not_applied:
        console.print(
            f"the mesh is not applied on {count(len(not_applied), 'member')}: "
            f"apply it with `{apply}`"
        )


def print_matrix(pairs: Sequence[dict], errors: dict[str, str]) -> None:
    console = PipeAwareConsole(highlight=False, soft_wrap=True)
    for vni in sorted({p["vni"] for p in pairs}):
        rows = [p for p in pairs if p["vni"] == vni]
        hosts = sorted({p["source"] for p in rows} | {p["target"] for p in rows})
        cell = {(p["source"], p["target"]): p["state"] for p in rows}
        table = Table(
            title=f"VNI {vni} (MTU {rows[0]['mtu']}): from row to column", title_justify="left"
        )
        table.add_column("from \\ to", style="bold")
        for host in hosts:
            table.add_column(host, justify="center")
        for src in hosts:
            table.add_row(
                src, *("" if src == dst else CELL.get(cell.get((src, dst)), "?") for dst in hosts)
            )
        console.print(table)
    bad = [p for p in pairs if p["state"] != "reachable"]
    if pairs:
        console.print(
            f"{len(pairs) - len(bad)} of {count(len(pairs), 'pair')} reachable"
            + (f"; [bold red]{len(bad)} not[/]" if bad else "")
        )
    for host, reason in errors.items():
        console.print(f"[bold red]error[/]: {host}: {reason}")
