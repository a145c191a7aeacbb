"""Options shared by the commands that talk to hosts."""

from __future__ import annotations

import argparse

from vnetctl.catalog import Catalog
from vnetctl.fleet.execute import execute
from vnetctl.inventory.loader import Inventory, load_inventory
from vnetctl.output.console import SilentReporter
from vnetctl.playbook.adhoc import adhoc_plan
from vnetctl.playbook.extra_vars import parse_extra_vars
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.render import plan_playbook
from vnetctl.runner.results import RunResult
from vnetctl.runner.runner import RunOptions
from vnetctl.transport.registry import TRANSPORTS


def add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hosts and connections")
    group.add_argument(
        "-i",
        "--inventory",
        required=True,
        metavar="FILE",
        help="Ansible-style YAML inventory (group_vars/, host_vars/ beside it)",
    )
    group.add_argument(
        "-l",
        "--limit",
        metavar="PATTERN",
        help="only these hosts: names, groups, globs, a,b unions, !exclusions",
    )
    group.add_argument(
        "-f",
        "--forks",
        type=int,
        default=50,
        metavar="N",
        help="hosts worked on at once (default 50)",
    )
    group.add_argument(
        "--transport",
        choices=sorted(TRANSPORTS),
        default="asyncssh",
        help="SSH library (default asyncssh); a host's vnetctl_transport wins",
    )
    group.add_argument(
        "--accept-new-host-keys",
        action="store_true",
        help="trust and record keys of hosts not yet in known_hosts "
        "(a changed key is always refused)",
    )
    group.add_argument(
        "--retries",
        type=int,
        default=2,
        metavar="N",
        help="extra connection attempts on refused/timeout/reset (default 2)",
    )


def add_playbook_arguments(parser: argparse.ArgumentParser) -> None:
    """PLAYBOOK, the hosts it runs on and its extra vars: what run, drift and mesh share."""
    parser.add_argument("playbook", metavar="PLAYBOOK")
    add_target_options(parser)
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="key=value pairs, @file.yml, or a YAML/JSON mapping (highest precedence)",
    )


def run_options(args: argparse.Namespace, check: bool) -> RunOptions:
    return RunOptions(
        check=check,
        forks=args.forks,
        transport=args.transport,
        accept_new_host_keys=args.accept_new_host_keys,
        retries=args.retries,
    )


def open_inventory(args: argparse.Namespace) -> Inventory:
    return load_inventory(args.inventory)


def plan_from_args(
    args: argparse.Namespace, catalog: Catalog, inventory: Inventory, **filters
) -> tuple[list, dict]:
    """The playbook of `args` rendered for its hosts (tags etc. in `filters`), and the
    extra vars it was rendered with."""
    extra_vars = parse_extra_vars(args.extra_vars)
    plans = plan_playbook(
        load_playbook(args.playbook, catalog),
        inventory,
        catalog,
        limit=args.limit,
        extra_vars=extra_vars,
        **filters,
    )
    return plans, extra_vars


def gather_facts(args: argparse.Namespace, catalog: Catalog) -> tuple[dict, dict, RunResult]:
    """Facts of every host `args` selects, read-only: ({host: facts}, {host: why not},
    the run's outcome for its exit code)."""
    inventory = open_inventory(args)
    hosts = [h.name for h in inventory.select("all", args.limit)]
    plan = adhoc_plan("facts", {}, hosts, name="gather facts")
    outcome = execute([plan], inventory, run_options(args, check=True), SilentReporter(), catalog)
    facts, errors = {}, dict(outcome.unreachable)
    for result in outcome.results:
        if "facts" in result.data:
            facts[result.host] = result.data["facts"]
        else:
            errors[result.host] = f"{result.status.value}: {result.msg}"
    return facts, errors, outcome
