"""Options shared by the commands that talk to hosts."""

from __future__ import annotations

import argparse
import getpass
import os
import socket

from vnetctl.ansible_cfg import ansible_config, known_hosts_of_ssh_args, ssh_args_option
from vnetctl.catalog import Catalog
from vnetctl.cli.secret_options import (
    add_secret_options,
    asked_become_password,
    use_vault_passwords,
)
from vnetctl.durations import parse_duration
from vnetctl.errors import InputError
from vnetctl.fleet import gates, shards
from vnetctl.fleet.context import RunContext
from vnetctl.fleet.shards import parse_shard
from vnetctl.fleet.workers import AUTO_FROM, parse_workers
from vnetctl.inventory.loader import load_inventory
from vnetctl.playbook.extra_vars import parse_extra_vars
from vnetctl.playbook.listing import start_at
from vnetctl.playbook.loader import load_playbook
from vnetctl.playbook.model import Play
from vnetctl.playbook.render import plan_playbook
from vnetctl.playbook.variables import register_secrets
from vnetctl.runner.control import RunOptions
from vnetctl.transport.registry import TRANSPORTS

MAX_FORKS = 1000
DEFAULT_FORKS = 50
MAX_RETRIES = 10


def bounded_int(low: int, high: int):
    """An argparse type: an integer within low..high, else a usage error naming both."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


def seconds(text: str) -> float:
    """An argparse type: a duration above 0 and up to 7 days (90, 90s, 15m, 1h)."""
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not 0 < value <= 7 * 86400:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..7 days")
    return value


def add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("hosts and connections")
    group.add_argument(
        "-i",
        "--inventory",
        action="append",
        metavar="PATH",
        help="Ansible inventory: a YAML, INI or `ansible-inventory --list` JSON file, an "
        "executable inventory script, or a directory of them (group_vars/, host_vars/ "
        "beside it); repeat -i to stack several, later ones winning (default: "
        "$ANSIBLE_INVENTORY, else `inventory` in ansible.cfg)",
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
        type=bounded_int(1, MAX_FORKS),
        metavar="N",
        help=f"hosts worked on at once, 1..{MAX_FORKS} (default: $ANSIBLE_FORKS, else "
        f"`forks` in ansible.cfg, else {DEFAULT_FORKS})",
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
        default=None,
        help="trust and record keys of hosts not yet in known_hosts "
        "(a changed key is always refused; also host_key_checking=False in ansible.cfg "
        "or $ANSIBLE_HOST_KEY_CHECKING)",
    )
    group.add_argument(
        "--retries",
        type=bounded_int(0, MAX_RETRIES),
        default=2,
        metavar="N",
        help=f"extra connection attempts on refused/timeout/reset, 0..{MAX_RETRIES} (default 2)",
    )
    group.add_argument(
        "--timeout",
        type=seconds,
        default=3600.0,
        metavar="TIME",
        help="time a play may take on one host (default 1h; a host's vnetctl_timeout wins); "
        "past it the host is failed, with the task it was in, and its process ended",
    )
    group.add_argument(
        "-u",
        "--user",
        metavar="USER",
        help="log in as USER where no variable says who (ansible_user, vnetctl_user win)",
    )
    group.add_argument(
        "-b",
        "--become",
        action="store_true",
        default=None,
        help="run as root with sudo where no variable says otherwise (ansible_become wins)",
    )
    group.add_argument(
        "--become-user",
        metavar="USER",
        help="with --become: sudo to USER (default root; ansible_become_user wins)",
    )
    group.add_argument(
        "--lock-wait",
        type=seconds,
        default=60.0,
        metavar="TIME",
        help="how long to wait for another vnetctl run holding a host's lock (default 60s); "
        "then that host fails, naming the holder",
    )
    add_secret_options(parser)


def add_playbook_arguments(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    """PLAYBOOK, the hosts it runs on and its extra vars: what run, drift and mesh share
    (`optional`: stats, which reads everything present without one)."""
    parser.add_argument("playbook", metavar="PLAYBOOK", nargs="?" if optional else None)
    add_target_options(parser)
    parser.add_argument(
        "-e",
        "--extra-vars",
        action="append",
        default=[],
        metavar="VARS",
        help="key=value pairs, @file.yml, or a YAML/JSON mapping (highest precedence)",
    )
    parser.add_argument(
        "--shard",
        type=parse_shard,
        metavar="K/N",
        help="work only on shard K of N (a host's shard: a hash of its name); the playbook "
        "is still planned for every host, so meshes and port groups stay fleet-wide",
    )
    parser.add_argument(
        "--roles-path",
        metavar="DIRS",
        help="where roles are looked up after roles/ beside the playbook: directories "
        "separated by ':' (default: $VNETCTL_ROLES_PATH, else $ANSIBLE_ROLES_PATH)",
    )


def add_workers_option(parser: argparse.ArgumentParser) -> None:
    """--workers N|auto (vnetctl.fleet.workers): run, drift, facts and stats."""
    parser.add_argument(
        "--workers",
        type=parse_workers,
        default=1,
        metavar="N|auto",
        help="spread the hosts over N controller processes, each with its own SSH "
        f"connections, to use N cores (default 1; auto: one per core above {AUTO_FROM} "
        "hosts, else 1); one console, recap, report and exit code all the same",
    )


def add_tag_arguments(parser: argparse.ArgumentParser) -> None:
    """--tags and --skip-tags, Ansible's (vnetctl.playbook.render): run and drift alike."""
    parser.add_argument(
        "-t",
        "--tags",
        action="append",
        default=[],
        metavar="TAGS",
        help="only tasks with these tags (comma-separated, repeatable)",
    )
    parser.add_argument(
        "--skip-tags",
        action="append",
        default=[],
        metavar="TAGS",
        help="leave out tasks with these tags",
    )


def split_tags(values: list[str]) -> list[str] | None:
    items = [t.strip() for v in values for t in v.split(",") if t.strip()]
    return items or None


def tag_filters(args: argparse.Namespace) -> dict[str, list[str] | None]:
    """The filters of plan_from_args that --tags and --skip-tags give."""
    return {"tags": split_tags(args.tags), "skip_tags": split_tags(args.skip_tags)}


def run_label(args: argparse.Namespace) -> str:
    """Who runs what, for a run that finds a host locked: no argument values (-e may
    carry secrets), only the command and the playbook."""
    module = getattr(getattr(args, "func", None), "__module__", "") or ""
    command = "vnetctl " + module.rpartition(".")[2].removesuffix("_cmd")
    playbook = getattr(args, "playbook", None)
    what = f"{command} {playbook}" if playbook else command
    return f"{getpass.getuser()}@{socket.gethostname()} pid {os.getpid()}: {what}"


def inventory_sources(args: argparse.Namespace) -> list[str]:
    """The -i sources, in order; without -i, $ANSIBLE_INVENTORY or ansible.cfg's."""
    if args.inventory:
        return list(args.inventory)
    configured = ansible_config().get("inventory")
    if configured:
        return list(configured)
    raise InputError(
        "no inventory given: -i PATH (repeat -i to stack several), or set "
        "ANSIBLE_INVENTORY or `inventory =` under [defaults] in ansible.cfg"
    )


def forks(args: argparse.Namespace) -> int:
    """--forks, else $ANSIBLE_FORKS / ansible.cfg's forks, else the default."""
    if args.forks is not None:
        return args.forks
    config = ansible_config()
    value = config.get("forks", DEFAULT_FORKS)
    if not 1 <= value <= MAX_FORKS:
        where = config.origins.get("forks", "")
        raise InputError(f"forks ({where}) is {value}: outside 1..{MAX_FORKS}")
    return value


def accept_new_host_keys(args: argparse.Namespace) -> bool:
    """--accept-new-host-keys, or Ansible's host_key_checking = False, or ssh_args'
    StrictHostKeyChecking no/accept-new (a changed key is still refused: vnetctl never
    connects to one)."""
    if args.accept_new_host_keys:
        return True
    config = ansible_config()
    strict = (ssh_args_option(config, "StrictHostKeyChecking") or "").lower()
    return config.get("host_key_checking") is False or strict in ("no", "off", "accept-new")


def run_options(args: argparse.Namespace, check: bool) -> RunOptions:
    return RunOptions(
        check=check,
        forks=forks(args),
        transport=args.transport,
        accept_new_host_keys=accept_new_host_keys(args),
        retries=args.retries,
        timeout=args.timeout,
        lock_wait=args.lock_wait,
        trace=(getattr(args, "verbose", 0) or 0) >= 3 and getattr(args, "format", "") != "json",
        confirm_timeout=getattr(args, "confirm_timeout", None),
        label=run_label(args),
        workers=getattr(args, "workers", 1),
    )


def run_context(args: argparse.Namespace, check: bool) -> RunContext:
    """The modules, the inventory, `-e` and the options of `args`: what a fleet command
    works from (bad input raises InputError here, before any host is contacted)."""
    use_vault_passwords(args)
    defaults = cli_defaults(args)  # -K asks before anything is loaded, as Ansible does
    extra_vars = parse_extra_vars(getattr(args, "extra_vars", []) or [])
    args.inventory = inventory_sources(args)
    inventory = load_inventory(args.inventory)
    register_secrets(inventory, extra_vars)
    return RunContext(Catalog(), inventory, run_options(args, check), extra_vars, defaults)


# connection variable set by the command line -> by ansible.cfg / ANSIBLE_*
_CLI_DEFAULTS = {
    "vnetctl_user": ("user", "remote_user"),
    "vnetctl_become": ("become", "become"),
    "vnetctl_become_user": ("become_user", "become_user"),
    "vnetctl_port": (None, "remote_port"),
    "vnetctl_private_key_file": (None, "private_key_file"),
    "vnetctl_connect_timeout": (None, "timeout"),
}


def cli_defaults(args: argparse.Namespace) -> dict[str, object]:
    """-u, -b, --become-user, else their ansible.cfg / ANSIBLE_* settings (and
    private_key_file, timeout, ssh_args' UserKnownHostsFile), and -K: as in Ansible,
    below every variable that sets the same."""
    config = ansible_config()
    found: dict[str, object] = {}
    for variable, (option, setting) in _CLI_DEFAULTS.items():
        value = getattr(args, option, None) if option else None
        found[variable] = config.get(setting) if value is None else value
    found["vnetctl_known_hosts"] = known_hosts_of_ssh_args(config)
    found["vnetctl_become_password"] = asked_become_password(args)
    method = config.get("become_method")
    if found["vnetctl_become"] and method not in (None, "sudo"):
        raise InputError(
            f"become_method = {method} ({config.origins['become_method']}): vnetctl becomes "
            "root with sudo only"
        )
    return {k: v for k, v in found.items() if v is not None}


def roles_path(args: argparse.Namespace) -> str | None:
    """--roles-path, else VNETCTL_ROLES_PATH or ANSIBLE_ROLES_PATH (read by the loader),
    else ansible.cfg's roles_path."""
    given = getattr(args, "roles_path", None)
    if given is not None or os.environ.get("VNETCTL_ROLES_PATH"):
        return given
    configured = ansible_config().get("roles_path")
    return ":".join(configured) if configured else None


def plays_from_args(args: argparse.Namespace, run: RunContext) -> list[Play]:
    """The playbook of `args`, loaded (its health gates checked), from --start-at-task's
    task on (when given)."""
    plays = load_playbook(args.playbook, run.catalog, roles=roles_path(args))
    gates.check_declared(plays)
    start = getattr(args, "start_at_task", None)
    return start_at(plays, start) if start else plays


def plan_from_args(args: argparse.Namespace, run: RunContext, **filters) -> list:
    """The playbook of `args` rendered for its hosts (tags etc. in `filters`)."""
    plans = plan_playbook(
        plays_from_args(args, run),
        run.inventory,
        run.catalog,
        limit=args.limit,
        extra_vars=run.extra_vars,
        **filters,
    )
    shard = getattr(args, "shard", None)
    return shards.restrict(plans, shard, run.catalog) if shard else plans


def selected_hosts(args: argparse.Namespace, run: RunContext) -> list[str]:
    return [h.name for h in run.inventory.select("all", args.limit)]
