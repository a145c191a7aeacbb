"""Ansible's configuration: the first `ansible.cfg` found and the ANSIBLE_* environment.

The file is found as ansible-core 2.19 finds it, the first that exists and is readable
of: $ANSIBLE_CONFIG (a directory means its ansible.cfg), ./ansible.cfg (skipped when the
current directory is world-writable, as Ansible does), ~/.ansible.cfg,
/etc/ansible/ansible.cfg. It is read as Ansible reads it (INI, `;` also starts an inline
comment, no interpolation); a malformed file is an error with file:line. Keys and
sections vnetctl does not use are ignored, as Ansible ignores keys it does not know.

Each setting is taken from the environment variable if set, else from the file; the
command line beats both (the commands apply that). Settings that name connection
variables (remote_user, become, private_key_file, timeout) are the lowest level: an
inventory's `ansible_user` beats them, as in Ansible. Booleans are Ansible's words (yes,
no, true, false, on, off, 1, 0, y, n, t, f); anything else is refused rather than read
as false. Paths in the file are relative to the file's directory, paths in the
environment to the current one.

One object for every reader (`ansible_config()`): the inventory sources, forks, the
vault password file (read by the vault code) all come from here.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vnetctl.errors import InputError, Location

if TYPE_CHECKING:
    import configparser

TRUE_WORDS = ("y", "yes", "on", "1", "true", "t")
FALSE_WORDS = ("n", "no", "off", "0", "false", "f")


@dataclass(frozen=True)
class Setting:
    section: str
    key: str
    env: str
    kind: str  # text, int, bool, list (comma-separated), path, pathlist (comma-separated),
    # pathspec (colon-separated)


SETTINGS = {
    "inventory": Setting("defaults", "inventory", "ANSIBLE_INVENTORY", "pathlist"),
    "remote_user": Setting("defaults", "remote_user", "ANSIBLE_REMOTE_USER", "text"),
    "remote_port": Setting("defaults", "remote_port", "ANSIBLE_REMOTE_PORT", "int"),
    "forks": Setting("defaults", "forks", "ANSIBLE_FORKS", "int"),
    "host_key_checking": Setting(
        "defaults", "host_key_checking", "ANSIBLE_HOST_KEY_CHECKING", "bool"
    ),
    "timeout": Setting("defaults", "timeout", "ANSIBLE_TIMEOUT", "int"),
    "private_key_file": Setting("defaults", "private_key_file", "ANSIBLE_PRIVATE_KEY_FILE", "path"),
    "become": Setting("privilege_escalation", "become", "ANSIBLE_BECOME", "bool"),
    "become_user": Setting("privilege_escalation", "become_user", "ANSIBLE_BECOME_USER", "text"),
    "become_method": Setting(
        "privilege_escalation", "become_method", "ANSIBLE_BECOME_METHOD", "text"
    ),
    "vault_password_file": Setting(
        "defaults", "vault_password_file", "ANSIBLE_VAULT_PASSWORD_FILE", "path"
    ),
    "vault_identity_list": Setting(
        "defaults", "vault_identity_list", "ANSIBLE_VAULT_IDENTITY_LIST", "list"
    ),
    "roles_path": Setting("defaults", "roles_path", "ANSIBLE_ROLES_PATH", "pathspec"),
    "ssh_args": Setting("ssh_connection", "ssh_args", "ANSIBLE_SSH_ARGS", "text"),
}


@dataclass
class AnsibleConfig:
    """The settings found (name -> value) and where each came from."""

    path: Path | None = None  # the ansible.cfg read, if any
    values: dict[str, Any] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # "ANSIBLE_FORKS", "ansible.cfg:3"

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)


def find_config_file(env: dict[str, str] | None = None, cwd: Path | None = None) -> Path | None:
    """The ansible.cfg Ansible would read, or None."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    candidates: list[Path] = []
    if "ANSIBLE_CONFIG" in env:
        given = Path(os.path.expanduser(env["ANSIBLE_CONFIG"]))
        candidates.append(given / "ansible.cfg" if given.is_dir() else given)
    try:
        if not cwd.stat().st_mode & stat.S_IWOTH:
            candidates.append(cwd / "ansible.cfg")
    except OSError:
        pass
    home = env.get("HOME") or os.path.expanduser("~")
    candidates += [Path(home) / ".ansible.cfg", Path("/etc/ansible/ansible.cfg")]
    for path in candidates:
        if path.is_file() and os.access(path, os.R_OK):
            return path
    return None


def _line_of(text: str, section: str, key: str) -> int:
    """The line `key = ...` of [section] (configparser does not keep it)."""
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1].strip()
        elif current == section and stripped.split("=", 1)[0].split(":", 1)[0].strip() == key:
            return number
    return 1


def _read_file(path: Path) -> tuple[configparser.ConfigParser, str]:
    import configparser  # only where an ansible.cfg exists (not on every run's path)

    parser = configparser.ConfigParser(inline_comment_prefixes=(";",), interpolation=None)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(
            f"cannot read the Ansible configuration: {exc}", Location(str(path))
        ) from None
    try:
        parser.read_string(text, str(path))
    except configparser.Error as exc:
        line = getattr(exc, "lineno", None)
        if line is None and getattr(exc, "errors", None):
            line = exc.errors[0][0]
        message = str(exc).splitlines()[0]
        raise InputError(
            f"malformed Ansible configuration: {message}", Location(str(path), line or 1)
        ) from None
    return parser, text


def _convert(setting: Setting, raw: str, base: Path, at: Location | None) -> Any:
    text = raw.strip()
    name = setting.key if at else setting.env
    if setting.kind == "int":
        try:
            return int(text)
        except ValueError:
            raise InputError(f"{name} must be an integer, got {raw!r}", at) from None
    if setting.kind == "bool":
        word = text.lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise InputError(f"{name} must be a boolean (yes/no, true/false, 1/0), got {raw!r}", at)
    if setting.kind == "path":
        return str(base / os.path.expanduser(text)) if text else ""
    if setting.kind in ("pathlist", "pathspec"):
        sep = "," if setting.kind == "pathlist" else ":"
        return [str(base / os.path.expanduser(p.strip())) for p in text.split(sep) if p.strip()]
    if setting.kind == "list":
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def load_ansible_config(
    env: dict[str, str] | None = None, cwd: Path | None = None
) -> AnsibleConfig:
    """The settings vnetctl reads, from the environment over the first ansible.cfg."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    config = AnsibleConfig(path=find_config_file(env, cwd))
    parser, text = _read_file(config.path) if config.path else (None, "")
    for name, setting in SETTINGS.items():
        if env.get(setting.env, "") != "":
            config.values[name] = _convert(setting, env[setting.env], cwd, None)
            config.origins[name] = setting.env
        elif parser is not None and parser.has_option(setting.section, setting.key):
            raw = parser.get(setting.section, setting.key, raw=True)
            at = Location(str(config.path), _line_of(text, setting.section, setting.key))
            config.values[name] = _convert(setting, raw, config.path.parent, at)
            config.origins[name] = str(at)
    return config


_CACHE: dict[tuple, AnsibleConfig] = {}


def ansible_config() -> AnsibleConfig:
    """This process's configuration (read once per environment and directory)."""
    key = (tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("ANSIBLE_"))),
           os.environ.get("HOME"), os.getcwd())  # fmt: skip
    if key not in _CACHE:
        _CACHE[key] = load_ansible_config()
    return _CACHE[key]


def ssh_args_option(config: AnsibleConfig, name: str) -> str | None:
    """The value ssh_args gives the OpenSSH option `name` (`-o Name=value`, `-oName=value`,
    `-o 'Name value'`; the first wins, as in ssh), or None."""
    args = config.get("ssh_args")
    if not args:
        return None
    try:
        words = shlex.split(args)
    except ValueError as exc:
        raise InputError(f"ssh_args: {exc}", _origin(config, "ssh_args")) from None
    for at, word in enumerate(words):
        if word == "-o" and at + 1 < len(words):
            option = words[at + 1]
        elif word.startswith("-o"):
            option = word[2:]
        else:
            continue
        key, *value = re.split(r"\s*=\s*|\s+", option.strip(), maxsplit=1)
        if key.lower() == name.lower() and value and value[0].strip():
            return value[0].strip()
    return None


def known_hosts_of_ssh_args(config: AnsibleConfig) -> str | None:
    """The known_hosts file ssh_args' UserKnownHostsFile names (Ansible's ssh connection
    checks host keys against it), or None. vnetctl reads one file: several (OpenSSH's
    space-separated list) are refused rather than some of them ignored."""
    found = ssh_args_option(config, "UserKnownHostsFile")
    if found is not None and len(found.split()) > 1:
        raise InputError(f"ssh_args: UserKnownHostsFile names several files ({found}); "
                         "vnetctl reads one: set vnetctl_known_hosts",
                         _origin(config, "ssh_args"))  # fmt: skip
    return os.path.expanduser(found) if found else None


def _origin(config: AnsibleConfig, name: str) -> Location | None:
    """Where a setting came from, as an error's location (a file:line, or none for the
    environment)."""
    origin = config.origins.get(name, "")
    path, _, line = origin.rpartition(":")
    return Location(path, int(line)) if path and line.isdigit() else None
