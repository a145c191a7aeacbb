"""`vnetctl inventory`: the inventory as vnetctl reads it, in ansible-inventory's shapes.

--list, --host and --graph print what `ansible-inventory` prints for the same sources
(checked against ansible-core 2.19 in tests/unit/test_inventory_cmd.py): JSON with sorted
keys and an indent of 4; groups with their direct `hosts` and `children` (empty keys and
empty groups left out), every host's variables under `_meta.hostvars`; the graph with
`@group:` lines, `  |--` per level, child groups before hosts. Secret values are shown
as `***`, as everywhere else (README, "Inventories").
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from vnetctl.cli.common import inventory_sources
from vnetctl.cli.secret_options import add_vault_options, use_vault_passwords
from vnetctl.errors import InputError
from vnetctl.inventory.loader import load_inventory
from vnetctl.inventory.model import ALL, Inventory, masked
from vnetctl.playbook.variables import register_secrets
from vnetctl.printable import printable
from vnetctl.runner.results import ExitCode
from vnetctl.secrets import redact

HELP = """\
Print the inventory as vnetctl reads it, in the shapes ansible-inventory prints: --list
(JSON: groups, their hosts and children, every host's variables under _meta.hostvars),
--host NAME (that host's variables) or --graph [GROUP] (the tree of groups and hosts;
--vars adds the variables); --list --yaml: the YAML inventory shape. The same sources as
every command: several -i stack, without -i $ANSIBLE_INVENTORY or ansible.cfg's
inventory. Vault-encrypted files and !vault values are read with the vault passwords of
--vault-id/--vault-password-file/--ask-vault-pass, $ANSIBLE_VAULT_PASSWORD_FILE or
ansible.cfg's vault_password_file. Secret values are shown as ***.

examples:
  vnetctl inventory -i inventory/lab.yml --graph
  vnetctl inventory -i inventory/lab.yml --list --limit lab-h1
  vnetctl inventory -i inventory/lab.yml --host lab-h1
"""


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "inventory",
        help="show the inventory as ansible-inventory does: --list, --host, --graph",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="every group and host, as JSON")
    what.add_argument("--host", metavar="NAME", help="one host's variables, as JSON")
    what.add_argument("--graph", action="store_true", help="the tree of groups and hosts")
    parser.add_argument("-y", "--yaml", action="store_true", help="with --list: YAML")
    parser.add_argument(
        "group", nargs="?", default=ALL, metavar="GROUP", help="with --graph: start here"
    )
    parser.add_argument("--vars", action="store_true", help="with --graph: show variables")
    parser.add_argument(
        "-i",
        "--inventory",
        action="append",
        metavar="PATH",
        help="inventory source, as for every command (repeat to stack several)",
    )
    parser.add_argument("-l", "--limit", metavar="PATTERN", help="with --list: only these hosts")
    add_vault_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.vars and not args.graph:
        raise InputError("--vars goes with --graph (--list and --host show variables)")
    if args.group != ALL and not args.graph:
        raise InputError(f"unexpected argument {args.group!r}: a GROUP goes with --graph")
    if args.limit and not args.list:
        raise InputError("--limit goes with --list")
    if args.yaml and not args.list:
        raise InputError("--yaml goes with --list")
    use_vault_passwords(args)  # also ansible.cfg's vault_password_file, as ansible-inventory
    inventory = load_inventory(inventory_sources(args))
    register_secrets(inventory, {})
    if args.graph:
        text = "\n".join(graph(inventory, args.group, args.vars))
    elif args.host is not None:
        if args.host not in inventory.hosts:
            raise InputError(f"no host {printable(args.host)!r} in the inventory")
        text = dumps(shown(inventory.hosts[args.host].vars))
    elif args.yaml:
        text = yaml_text(yaml_listing(inventory, args.limit))
    else:
        text = dumps(listing(inventory, args.limit))
    sys.stdout.write(redact(text) + "\n")
    return ExitCode.SUCCESS


def dumps(data: Any) -> str:
    return json.dumps(data, sort_keys=True, indent=4, default=str)


def shown(variables: dict[str, Any]) -> dict[str, Any]:
    """Variables as printed: secret ones (by name) as ***; redact() does the values."""
    return masked(variables)


def listing(inventory: Inventory, limit: str | None) -> dict[str, Any]:
    """ansible-inventory --list."""
    chosen = {h.name for h in inventory.select(ALL, limit)}
    result: dict[str, Any] = {}

    def add(name: str) -> None:
        body: dict[str, Any] = {}
        if name != ALL:
            body["hosts"] = [h for h in inventory.groups[name].own_hosts if h in chosen]
        body["children"] = inventory.child_groups(name)
        for kid in body["children"]:
            if kid not in result:
                add(kid)
        body = {k: v for k, v in body.items() if v}
        if body:
            result[name] = body

    add(ALL)
    hostvars = {h: shown(inventory.hosts[h].vars) for h in inventory.hosts if h in chosen}
    result["_meta"] = {
        "hostvars": {h: v for h, v in hostvars.items() if v},
        "profile": "inventory_legacy",
    }
    return result


def yaml_listing(inventory: Inventory, limit: str | None) -> dict[str, Any]:
    """ansible-inventory --list --yaml: the YAML inventory shape, each host's variables
    where it is first listed, child groups before hosts."""
    chosen = {h.name for h in inventory.select(ALL, limit)}
    seen_hosts: set[str] = set()
    seen_groups: set[str] = set()

    def shape(name: str) -> dict[str, Any]:
        body: dict[str, Any] = {"children": {}, "hosts": {}}
        for kid in inventory.child_groups(name):
            if kid in seen_groups:
                body["children"][kid] = {}
            else:
                seen_groups.add(kid)
                body["children"].update(shape(kid))
        if name != ALL:
            for host in inventory.groups[name].own_hosts:
                if host in chosen:
                    first = host not in seen_hosts
                    seen_hosts.add(host)
                    body["hosts"][host] = shown(inventory.hosts[host].vars) if first else {}
        body = {k: v for k, v in body.items() if v}
        return {name: body} if body else {}

    return shape(ALL)


def yaml_text(data: Any) -> str:
    """As ansible-inventory dumps it; a secret value in it is replaced in the data, not in
    the text, where a bare *** would read as a YAML alias."""
    text = yaml.safe_dump(data, default_flow_style=False, allow_unicode=True).rstrip("\n")
    if redact(text) != text:
        text = yaml_text(redact(data))
    return text


def _line(text: str, depth: int) -> str:
    return "  |" * depth + "--" + text if depth else text


def _vars_lines(variables: dict[str, Any], depth: int) -> list[str]:
    return [_line(f"{{{k} = {printable(v)}}}", depth) for k, v in sorted(shown(variables).items())]


def graph(inventory: Inventory, name: str, with_vars: bool, depth: int = 0) -> list[str]:
    """ansible-inventory --graph [GROUP] [--vars]."""
    if name not in inventory.groups:
        raise InputError(f"--graph: no group {printable(name)!r} in the inventory")
    group = inventory.groups[name]
    lines = [_line(f"@{printable(name)}:", depth)]
    for kid in inventory.child_groups(name):
        lines += graph(inventory, kid, with_vars, depth + 1)
    if name != ALL:
        for host in group.own_hosts:
            lines.append(_line(printable(host), depth + 1))
            if with_vars:
                lines += _vars_lines(inventory.hosts[host].vars, depth + 2)
    if with_vars:
        own = dict(group.vars)
        if group.priority != 1:
            own["ansible_group_priority"] = group.priority
        lines += _vars_lines(own, depth + 1)
    return lines
