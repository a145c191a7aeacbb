"""`vnetctl facts`: each host's network facts (links, addresses) as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from vnetctl.catalog import Catalog
from vnetctl.cli.common import add_target_options, open_inventory, run_options
from vnetctl.fleet.execute import execute
from vnetctl.output.console import SilentReporter
from vnetctl.playbook.adhoc import adhoc_plan

HELP = """\
Print the network facts of each host as one JSON document: {host: {links, addrs}},
where links is `ip -j -d link` and addrs is `ip -j addr` as the host reports them.
Unreachable or failed hosts appear under "errors". Read-only.

examples:
  vnetctl facts -i inventory/lab.yml
  vnetctl facts -i inventory/lab.yml --limit lab-h1 | jq '.["lab-h1"].links[].ifname'
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "facts",
        help="print hosts' network facts as JSON",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_target_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    catalog = Catalog()
    inventory = open_inventory(args)
    hosts = [h.name for h in inventory.select("all", args.limit)]
    plan = adhoc_plan("facts", {}, hosts, name="gather facts")
    outcome = execute([plan], inventory, run_options(args, check=True), SilentReporter(), catalog)
    doc: dict = {"hosts": {}, "errors": {}}
    for result in outcome.results:
        if "facts" in result.data:
            doc["hosts"][result.host] = result.data["facts"]
        else:
            doc["errors"][result.host] = f"{result.status.value}: {result.msg}"
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    return outcome.exit_code()
