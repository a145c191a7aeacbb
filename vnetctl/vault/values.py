"""What decrypted data becomes on the controller: secrets of the run.

- A `!vault` value decrypts to a `VaultStr`: a str that says it came from the vault, so
  a variable holding one is secret (vnetctl.templar) and what is rendered from it is
  too. One that cannot be decrypted (no password, a wrong one) is `Sealed`: as in
  Ansible, that is an error only where the value is used, with its file and line.
- A vault-encrypted file: every value in it is a secret (`mark`). A file that cannot be
  decrypted is an error at once, naming the file (as Ansible does).

Every decrypted value (strings and numbers) is also pinned in the run's secret registry
as it is decrypted (vnetctl.secrets): whatever prints or writes through `redact` hides
it, whether or not a template ever read it.
"""

from __future__ import annotations

from typing import Any

from vnetctl import secrets
from vnetctl.errors import InputError, Location
from vnetctl.vault import keyring


class VaultStr(str):
    """Decrypted text: a secret wherever it goes."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


class Sealed:
    """A `!vault` value that could not be decrypted: using it is the error."""

    __slots__ = ("where", "reason")

    def __init__(self, where: Location, reason: str):
        self.where, self.reason = where, reason

    def message(self) -> str:
        return f"the !vault value at {self.where} cannot be decrypted: {self.reason}"

    def __repr__(self) -> str:
        return "<!vault, not decrypted>"


def tagged_value(text: str, where: Location) -> VaultStr | Sealed:
    """The value of a `!vault |` scalar."""
    try:
        plain = keyring.current().decrypt(text)
    except keyring.VaultError as exc:
        return Sealed(where, str(exc))
    secrets.registry().pin(plain)
    return VaultStr(plain)


def file_text(text: str, file: str) -> str:
    """The plaintext of a vault-encrypted file; InputError naming the file if not."""
    try:
        return keyring.current().decrypt(text)
    except keyring.VaultError as exc:
        raise InputError(str(exc), Location(file)) from None


def mark(data: Any) -> Any:
    """A decrypted file's data with every string a VaultStr (in place for its mappings
    and lists, which keep their lines) and every value pinned as a secret."""
    if isinstance(data, dict):
        for key, value in data.items():
            data[key] = mark(value)
        return data
    if isinstance(data, list):
        for index, value in enumerate(data):
            data[index] = mark(value)
        return data
    secrets.registry().pin(data)
    return VaultStr(data) if isinstance(data, str) else data


JSON_KEY = "__ansible_vault"  # how `ansible-inventory --list` prints a `!vault` value


def decrypt_json(data: Any, where: Location) -> Any:
    """`data` (from JSON) with each `{"__ansible_vault": TEXT}` decrypted as `!vault`
    TEXT would be; mappings and lists changed in place."""
    if isinstance(data, dict):
        if len(data) == 1 and isinstance(data.get(JSON_KEY), str):
            return tagged_value(data[JSON_KEY], where)
        for key, value in data.items():
            data[key] = decrypt_json(value, where)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            data[index] = decrypt_json(value, where)
    return data


def first_sealed(value: Any) -> Sealed | None:
    if isinstance(value, Sealed):
        return value
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list | tuple):
        for item in value:
            found = first_sealed(item)
            if found is not None:
                return found
    return None


def is_vaulted(value: Any) -> bool:
    """Whether `value` is or holds decrypted text."""
    if isinstance(value, VaultStr):
        return True
    if isinstance(value, dict):
        return any(is_vaulted(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(is_vaulted(v) for v in value)
    return False


def unmarked(value: Any) -> Any:
    """`value` with VaultStr turned into plain str (what goes to a host is marshalled,
    and marshal takes no str subclass)."""
    if isinstance(value, VaultStr):
        return str.__str__(value)
    if isinstance(value, dict):
        return {k: unmarked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unmarked(v) for v in value]
    if isinstance(value, tuple):
        return tuple(unmarked(v) for v in value)
    return value
