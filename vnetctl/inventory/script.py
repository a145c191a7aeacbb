"""Dynamic inventory scripts, run as Ansible runs them (its `script` plugin).

An inventory source that is an executable file starting with `#!` is run with `--list`
(in the current directory, stdin closed); it prints one JSON mapping: group name ->
`{"hosts": [...], "vars": {...}, "children": [...]}` (a bare list is the group's hosts,
a mapping with none of those keys is a group of one host of that name with those vars,
as Ansible still reads them), and `_meta.hostvars`: host -> variables. Without `_meta`
the script is run again with `--host NAME` for each host, and prints that host's
variables. Only the hosts listed in groups are hosts, as in Ansible.

Unlike Ansible, every run is bounded in time (VNETCTL_INVENTORY_SCRIPT_TIMEOUT, default
60s: past it the script and what it started are killed), and a failure is one error
naming the script, the command, and the end of what the script wrote on stderr: a
non-zero exit, a signal, output that is not UTF-8 or not JSON (with its line and
column), or JSON of the wrong shape. A file starting with `#!` that is not executable is
refused (chmod +x), where Ansible would only fail to parse it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from vnetctl.durations import parse_duration
from vnetctl.errors import InputError, Location
from vnetctl.hostlib import type_name
from vnetctl.printable import printable_lines

DEFAULT_TIMEOUT = 60.0
TIMEOUT_VAR = "VNETCTL_INVENTORY_SCRIPT_TIMEOUT"
STDERR_TAIL = 2000  # characters of stderr shown with an error
GROUP_KEYS = ("hosts", "vars", "children")


def starts_with_shebang(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(2) == b"#!"
    except OSError:
        return False


def is_script(path: Path) -> bool:
    """Run as a script: a file starting with `#!`; refused unless executable."""
    if not starts_with_shebang(path):
        return False
    if not os.access(path, os.X_OK):
        raise InputError(
            "an inventory script that is not executable: Ansible and vnetctl run only "
            f"executable ones (chmod +x {path})",
            Location(str(path)),
        )
    return True


def script_timeout() -> float:
    text = os.environ.get(TIMEOUT_VAR)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = parse_duration(text)
    except ValueError as exc:
        raise InputError(f"{TIMEOUT_VAR}: {exc}") from None
    if value <= 0:
        raise InputError(f"{TIMEOUT_VAR}: must be above 0, got {text!r}")
    return value


def _failure(path: Path, argv: list[str], what: str, stderr: bytes) -> InputError:
    text = stderr.decode(errors="replace").rstrip()
    if len(text) > STDERR_TAIL:
        text = "..." + text[-STDERR_TAIL:]
    told = f"; its stderr:\n{text}" if text else " (nothing on stderr)"
    command = " ".join([str(path), *argv])
    return InputError(printable_lines(f"inventory script `{command}` {what}{told}"))


def run_script(path: Path, argv: list[str]) -> Any:
    """The JSON `path ARGV` prints, or InputError naming the script and why."""
    timeout = script_timeout()
    try:
        process = subprocess.Popen(
            [str(path.absolute()), *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its children too are killed on timeout
        )
    except OSError as exc:
        raise InputError(
            f"inventory script could not be run: {exc.strerror}", Location(str(path))
        ) from None
    with process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            raise _failure(path, argv, f"did not finish in {timeout:g}s (killed)", err) from None
    if process.returncode < 0:
        name = signal.Signals(-process.returncode).name
        raise _failure(path, argv, f"was killed by {name}", err)
    if process.returncode:
        raise _failure(path, argv, f"failed with exit code {process.returncode}", err)
    try:
        text = out.decode()
    except UnicodeDecodeError:
        raise _failure(path, argv, "printed output that is not UTF-8", err) from None
    if argv[0] == "--host" and not text.strip():
        return {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno} of its output"
        raise _failure(path, argv, f"did not print JSON ({where})", err) from None


def _shape_error(path: Path, message: str) -> InputError:
    return InputError(f"inventory script `{path} --list`: {message}")


def _names(path: Path, group: str, key: str, value: Any) -> dict[str, None]:
    if not isinstance(value, list):
        raise _shape_error(path, f"{group}.{key} must be a list, got {type_name(value)}")
    return dict.fromkeys(value)


def script_inventory(path: Path) -> dict[str, Any]:
    """The script's inventory in the YAML plugin's shape (what the builder reads)."""
    data = run_script(path, ["--list"])
    if not isinstance(data, dict):
        raise _shape_error(path, f"expected a JSON mapping of groups, got {type_name(data)}")
    meta = data.get("_meta")
    hostvars = meta.get("hostvars") if isinstance(meta, dict) else None
    if meta is not None and not isinstance(hostvars, dict):
        raise _shape_error(path, "_meta.hostvars must be a mapping of host -> variables")
    shaped: dict[str, Any] = {}
    hosts: dict[str, None] = {}
    for name, body in data.items():
        if name == "_meta":
            continue
        if not isinstance(body, dict):
            body = {"hosts": body}
        elif not any(key in body for key in GROUP_KEYS):
            body = {"hosts": [name], "vars": body}
        group: dict[str, Any] = {}
        for key in GROUP_KEYS:
            if key in body and key != "vars":
                group[key] = _names(path, name, key, body[key])
        if "vars" in body:
            group["vars"] = body["vars"]
        hosts.update(group.get("hosts", {}))
        shaped[name] = group
    all_hosts = shaped.setdefault("all", {}).setdefault("hosts", {})
    for host in hosts:
        found = hostvars.get(host) if hostvars is not None else run_script(path, ["--host", host])
        if found is not None and not isinstance(found, dict):
            got = type_name(found)
            raise _shape_error(path, f"variables of host '{host}' must be a mapping, got {got}")
        if found:
            all_hosts[host] = found
    return shaped
