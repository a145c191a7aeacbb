"""`vnetctl facts`: each host's network facts (links, addresses) as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from vnetctl.cli.common import add_target_options, run_context, selected_hosts
from vnetctl.fleet.execute import gather_facts
from vnetctl.secrets import redact

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
    context = run_context(args, check=True)
    facts, errors, outcome = gather_facts(context, selected_hosts(args, context))
    sys.stdout.write(redact(json.dumps({"hosts": facts, "errors": errors}, indent=2)) + "\n")
    return outcome.exit_code()
