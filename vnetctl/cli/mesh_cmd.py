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
from vnetctl.fleet.mesh_check import host_errors, layout_from, pair_states, probe_plans
from vnetctl.fleet.vxlan import expand_meshes, hosts_to_reach
from vnetctl.output.console import SilentReporter
from vnetctl.output.pipes import PipeAwareConsole
from vnetctl.runner.results import ExitCode
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

    async def probe():
        try:
            # no preflight: a broken fleet is what this command is for
            await expand_meshes(runner, plans, inventory, render_members, preflight=False)
            layout = layout_from(plans)
            if not layout.segments:
                raise InputError(f"{args.playbook}: no vxlan_mesh task for these hosts")
            return await runner.run_plays(probe_plans(layout))
        finally:
            await runner.pool.close_all()

    run = run_interruptible(runner, probe())
    if run.interrupted:
        print("vnetctl: mesh check interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    pairs, errors = redact(pair_states(run)), redact(host_errors(run))
    if args.format == "json":
        doc = {"pairs": pairs, "errors": errors, "unreachable": redact(run.unreachable)}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        print_matrix(pairs, errors)
    if run.unreachable:
        return ExitCode.HOST_UNREACHABLE
    broken = errors or any(p["state"] != "reachable" for p in pairs)
    return ExitCode.HOST_FAILED if broken else ExitCode.SUCCESS


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
    console.print(
        f"{len(pairs) - len(bad)} of {len(pairs)} pairs reachable"
        + (f"; [bold red]{len(bad)} not[/]" if bad else "")
    )
    for host, reason in errors.items():
        console.print(f"[bold red]error[/]: {host}: {reason}")
