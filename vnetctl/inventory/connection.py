"""How to reach a host: its connection variables, read from the inventory, checked.

Each setting is the first variable of its list that the host has (vnetctl's own names
first, then Ansible's), so an Ansible inventory works as it is:

- address: vnetctl_host, ansible_host, ansible_ssh_host; default: the host's name
- port: vnetctl_port, ansible_port, ansible_ssh_port; default None (ssh config, else 22)
- user: vnetctl_user, ansible_user, ansible_ssh_user; default None (ssh config)
- key_file: vnetctl_private_key_file, ansible_ssh_private_key_file,
  ansible_private_key_file; default None
- python: vnetctl_python_interpreter, ansible_python_interpreter; default /usr/bin/python3
- known_hosts: vnetctl_known_hosts; default None (~/.ssh/known_hosts)
- transport: vnetctl_transport, asyncssh or paramiko; default None (the --transport option)
- become: vnetctl_become, ansible_become; default false (sudo when true)
- become_user: vnetctl_become_user, ansible_become_user; default root
- connect_timeout: vnetctl_connect_timeout, ansible_timeout; default 10 (seconds)
- play_timeout: vnetctl_timeout; default None (the --timeout option): how long a play
  may take on this host before it is stopped and the host failed (seconds, or a
  duration as --timeout takes it: 90s, 15m, 1h)
- persist: vnetctl_persist, networkd or none; default None (a play's `persist:` wins over
  the inventory's, play vars and -e over the play's `persist:`; none of them: networkd
  where the host runs systemd-networkd); persist_root:
  vnetctl_persist_root, the directory the boot configuration is written under (default /)
- password: vnetctl_password, ansible_password, ansible_ssh_pass, ansible_ssh_password
- become_password: vnetctl_become_password, ansible_become_password, ansible_become_pass

Values may be templates (`ansible_host: "{{ mgmt_ip }}"`), rendered with the host's
inventory variables. Passwords are held as `Secret`: never shown by repr, str or logs;
they and what is derived from them are secrets of the run (vnetctl.secrets), redacted
from errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vnetctl.durations import parse_duration
from vnetctl.errors import InputError, Location
from vnetctl.hostlib import parse_bool, type_name
from vnetctl.inventory.model import Host
from vnetctl.inventory.sources import VarLayer
from vnetctl.secrets import Secret, redact
from vnetctl.templar import LazyVars, Templar, TemplateFailure
from vnetctl.transport.base import Target
from vnetctl.transport.registry import TRANSPORTS

DEFAULT_PYTHON = "/usr/bin/python3"

ADDRESS = ("vnetctl_host", "ansible_host", "ansible_ssh_host")
PORT = ("vnetctl_port", "ansible_port", "ansible_ssh_port")
USER = ("vnetctl_user", "ansible_user", "ansible_ssh_user")
KEY_FILE = (
    "vnetctl_private_key_file",
    "ansible_ssh_private_key_file",
    "ansible_private_key_file",
)
PYTHON = ("vnetctl_python_interpreter", "ansible_python_interpreter")
KNOWN_HOSTS = ("vnetctl_known_hosts",)
TRANSPORT = ("vnetctl_transport",)
BECOME = ("vnetctl_become", "ansible_become")
BECOME_USER = ("vnetctl_become_user", "ansible_become_user")
TIMEOUT = ("vnetctl_connect_timeout", "ansible_timeout")
PLAY_TIMEOUT = ("vnetctl_timeout",)
PERSIST = ("vnetctl_persist",)
PERSIST_ROOT = ("vnetctl_persist_root",)
PERSIST_MODES = ("networkd", "none")  # unset: networkd where the host runs it (vnet_persist)
PASSWORD = ("vnetctl_password", "ansible_password", "ansible_ssh_pass", "ansible_ssh_password")
BECOME_PASSWORD = ("vnetctl_become_password", "ansible_become_password", "ansible_become_pass")


@dataclass(frozen=True)
class ConnectionSpec(Target):
    """A host's connection (the Target fields: name, address, port, user, key_file,
    known_hosts, connect_timeout, password) and how its remote process runs."""

    python: str = DEFAULT_PYTHON
    transport: str | None = None
    become: bool = False
    become_user: str = "root"
    become_password: Secret | None = None
    play_timeout: float | None = None
    persist: str | None = None  # boot persistence: networkd | none (None: detected)
    persist_over_play: bool = False  # set by play vars or -e: beats a play's `persist:`
    persist_root: str | None = None  # None: "/" (the lab writes under a directory of its own)

    @classmethod
    def from_host(
        cls,
        host: Host,
        over: VarLayer | None = None,
        under: Sequence[VarLayer] = (),
    ) -> ConnectionSpec:
        """The connection settings of an inventory host (templates rendered); `over`:
        the variables set above the inventory (play vars, `-e`), with where each was set;
        `under`: layers below it, highest first (role defaults, then `-u`, `-b`, as in
        Ansible)."""
        over = over or VarLayer()
        magic = {"inventory_hostname": host.name, "group_names": host.group_names}
        lowest_first = [*reversed(under), VarLayer(host.vars, host.origins), over]
        values = {k: v for layer in lowest_first for k, v in layer.values.items()}
        origins = {k: v for layer in lowest_first for k, v in layer.origins.items()}
        variables = LazyVars(Templar(), values, magic, origins)
        layers = [over.values, host.vars, *(layer.values for layer in under)]
        return cls.from_vars(host.name, variables, origins, layers)

    @classmethod
    def from_vars(
        cls,
        host: str,
        variables: Mapping[str, Any],
        origins: Mapping[str, Location] | None = None,
        layers: Sequence[Mapping[str, Any]] = (),
    ) -> ConnectionSpec:
        """`layers`: the variables by level, highest first; a setting is taken from the
        highest level that names it by any of its names (e.g. `-e ansible_port` over an
        inventory's `vnetctl_port`), whatever the order of its names below."""
        read = _Reader(host, variables, origins or {}, layers)
        return cls(
            name=host,
            address=read.text(ADDRESS) or host,
            port=read.port(),
            user=read.text(USER),
            key_file=read.path(KEY_FILE),
            python=read.text(PYTHON) or DEFAULT_PYTHON,
            known_hosts=read.path(KNOWN_HOSTS),
            transport=read.transport(),
            become=read.flag(BECOME),
            become_user=read.text(BECOME_USER) or "root",
            connect_timeout=read.timeout(),
            password=read.secret(PASSWORD),
            become_password=read.secret(BECOME_PASSWORD),
            play_timeout=read.seconds(PLAY_TIMEOUT),
            persist=read.choice(PERSIST, PERSIST_MODES),
            persist_over_play=bool(layers) and any(n in layers[0] for n in PERSIST),
            persist_root=read.absolute(PERSIST_ROOT),
        )


class _Reader:
    def __init__(
        self,
        host: str,
        variables: Mapping[str, Any],
        origins: Mapping[str, Location],
        layers: Sequence[Mapping[str, Any]],
    ):
        self.host, self.variables, self.origins, self.layers = host, variables, origins, layers

    def _get(self, names: tuple[str, ...]) -> tuple[str, Any]:
        level = next((layer for layer in self.layers if any(n in layer for n in names)), None)
        for name in names if level is None else (n for n in names if n in level):
            if name in self.variables:
                try:
                    return name, self.variables[name]
                except TemplateFailure as exc:
                    raise self._error(name, str(exc)) from None
        return names[0], None

    def _error(self, name: str, message: str) -> InputError:
        return InputError(
            f"variable {name}: {redact(message)}", self.origins.get(name), f"host {self.host}"
        )

    def text(self, names: tuple[str, ...]) -> str | None:
        name, value = self._get(names)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self._error(name, f"expected a string, got {type_name(value)} {value!r}")
        if str(value).strip() == "":
            raise self._error(name, "must not be empty")
        return str(value)

    def path(self, names: tuple[str, ...]) -> str | None:
        value = self.text(names)
        return os.path.expanduser(value) if value else None

    def choice(self, names: tuple[str, ...], choices: tuple[str, ...]) -> str | None:
        name, value = self._get(names)
        if value is not None and value not in choices:
            raise self._error(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def absolute(self, names: tuple[str, ...]) -> str | None:
        name, value = self._get(names)
        path = self.path(names)
        if path is not None and not os.path.isabs(path):
            raise self._error(name, f"expected an absolute path, got {value!r}")
        return path

    def port(self) -> int | None:
        name, value = self._get(PORT)
        if value is None:
            return None
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
            raise self._error(name, f"expected a port number (1-65535), got {value!r}")
        return value

    def transport(self) -> str | None:
        name, value = self._get(TRANSPORT)
        if value is None:
            return None
        if value not in TRANSPORTS:
            known = ", ".join(sorted(TRANSPORTS))
            raise self._error(name, f"unknown transport {value!r} (known: {known})")
        return value

    def flag(self, names: tuple[str, ...]) -> bool:
        name, value = self._get(names)
        if value is None:
            return False
        parsed = parse_bool(value)
        if parsed is None:
            raise self._error(name, f"expected true or false, got {value!r}")
        return parsed

    def timeout(self) -> float:
        return self.seconds(TIMEOUT) or 10.0

    def seconds(self, names: tuple[str, ...]) -> float | None:
        name, value = self._get(names)
        if value is None:
            return None
        try:
            seconds = parse_duration(value)
        except ValueError:
            seconds = -1.0
        if seconds <= 0:
            raise self._error(name, f"expected a number of seconds above 0, or a duration "
                                    f"(90s, 15m), got {value!r}")  # fmt: skip
        return seconds

    def secret(self, names: tuple[str, ...]) -> Secret | None:
        name, value = self._get(names)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self._error(name, f"expected a string, got {type_name(value)}")
        return Secret(str(value))
