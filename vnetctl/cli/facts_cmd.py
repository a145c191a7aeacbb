"""`vnetctl facts`: each host's network facts (links, addresses...) as one JSON document,
described by `schema/facts.schema.json` beside this package's output module."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources

from vnetctl.cli.common import (
    add_target_options,
    add_workers_option,
    run_context,
    selected_hosts,
)
from vnetctl.fleet.execute import read_facts
from vnetctl.secrets import redact

SCHEMA = "vnetctl/output/schema/facts.schema.json"

HELP = f"""\
Print the network facts of each host as one JSON document
(schema: {SCHEMA}):

  {{"hosts": {{HOST: {{"links": [...], "addrs": [...], "fdb": [...], "ovs": {{...}}, ...}}}},
   "errors": {{HOST: "why its facts could not be read"}}}}

links is `ip -j -d link` and addrs `ip -j addr`, as the host reports them; fdb the
forwarding entries that point at remote VTEPs (`bridge -j fdb`); ovs Open vSwitch's
bridges, ports and interfaces (null where it does not run). A module may add a fact
source of its own: it appears as a further key. Read-only.

examples:
  vnetctl facts -i inventory/lab.yml
  vnetctl facts -i inventory/lab.yml --limit lab-h1 | jq -r '.hosts["lab-h1"].links[].ifname'
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "facts",
        help="print hosts' network facts as JSON",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_target_options(parser)
    add_workers_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    context = run_context(args, check=True)
    facts, errors, outcome = read_facts(context, selected_hosts(args, context))
    # the data redacted before it is written: JSON escapes (quotes, non-ASCII) would
    # hide a secret from a redaction of the text
    sys.stdout.write(json.dumps(redact({"hosts": facts, "errors": errors}), indent=2) + "\n")
    return outcome.exit_code()


def schema() -> dict:
    text = resources.files("vnetctl.output").joinpath("schema", "facts.schema.json").read_text()
    return json.loads(text)
