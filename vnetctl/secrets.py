"""Secrets: the values vnetctl must never show, and the one function that hides them.

A variable is secret when its name says so or the operator says so:

- its name ends in `password`, `passwd`, `pass`, `passphrase`, `secret` or `token`
  (after `_` or as the whole name): `ansible_password`, `ansible_ssh_pass`,
  `ansible_become_password`, `vnetctl_password`, `db_password`, `api_token`, ...;
- it is listed in `vnetctl_secret_vars` (a list of names, or a comma-separated string),
  set like any variable: in the inventory, group_vars/host_vars, a play's `vars`, `-e`;
- its value was decrypted from an Ansible vault (vnetctl.vault.values): such values are
  pinned here as they are decrypted, and kept by `new_run()`.

Any value derived from a secret is a secret too: a variable or task argument whose
rendering read a secret variable, directly or through other variables (`name:
"x{{ db_password }}"`, `{{ db_password | upper }}`). `vnetctl.templar` tracks this as it
renders and registers each secret value here, in the run's registry.

`redact(value)` replaces every registered value by `***` in strings, through dicts,
lists, tuples and dataclasses. It is applied where results enter the controller (the
runner's results), and where errors, reports and the drift history are written.
Values shorter than MIN_LENGTH characters are not registered: replacing every "6" or
"up" in the output would garble it and hide nothing; numbers are hidden where they
appear in text, not as numbers.

A password the controller holds to connect (`Secret`: the inventory's passwords) is
never shown by repr or str; `reveal()` gives it to the transport that sends it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

MARK_VAR = "vnetctl_secret_vars"
MIN_LENGTH = 4
MASK = "***"
_SECRET_NAME = re.compile(r"(^|_)(password|passwd|pass|passphrase|secret|token)$")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.lower()))


def marked_names(value: Any) -> set[str] | None:
    """The names in a `vnetctl_secret_vars` value, or None when it is not names."""
    if value is None:
        return set()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        return None
    return {i.strip() for i in items if i.strip()}


class Secret:
    """A password: `reveal()` gives it; repr and str give '***'."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:  # no pickling a password into a file by accident
        raise TypeError("a Secret cannot be pickled")


class Registry:
    """The secret values of one run."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._pinned: set[str] = set()  # decrypted from a vault: kept by clear()
        self._pattern: re.Pattern[str] | None = None

    def __bool__(self) -> bool:
        return bool(self._values)

    def __contains__(self, text: object) -> bool:
        return text in self._values

    def add(self, value: Any) -> None:
        """Register `value`: a string, a number, or every one inside containers."""
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, str | int | float):
            text = str(value)
            if len(text) >= MIN_LENGTH and text not in self._values:
                self._values.add(text)
                self._pattern = None
        elif isinstance(value, dict):
            for item in value.values():
                self.add(item)
        elif isinstance(value, list | tuple | set):
            for item in value:
                self.add(item)

    def pin(self, value: Any) -> None:
        """Register `value` for the life of the process: vault values are decrypted when
        their files are loaded, which may be before the run that uses them begins."""
        before = set(self._values)
        self.add(value)
        self._pinned |= self._values - before

    def clear(self) -> None:
        self._values = set(self._pinned)
        self._pattern = None

    def reset(self) -> None:
        """As a new process has it: vault values too forgotten (tests, one per command)."""
        self._pinned = set()
        self.clear()

    def redact(self, value: Any) -> Any:
        if not self._values:
            return value
        if self._pattern is None:
            longest_first = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, longest_first)))
        return _redact(value, self._pattern)


def _redact(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, Enum):  # a StrEnum is a str, but a status, not text
        return value
    if isinstance(value, str):
        return pattern.sub(MASK, value)
    if isinstance(value, dict):
        return {_redact(k, pattern): _redact(v, pattern) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, pattern) for v in value]
    if isinstance(value, tuple):
        return tuple(_redact(v, pattern) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _redact(getattr(value, f.name), pattern)
            for f in dataclasses.fields(value)
            if f.init
        }
        return dataclasses.replace(value, **changes)
    return value


_RUN = Registry()


def registry() -> Registry:
    """The registry of the current run (one process runs one command)."""
    return _RUN


def new_run() -> None:
    """Forget the secrets of an earlier run in this process (drift --every, tests), but
    for values decrypted from a vault (`Registry.pin`)."""
    _RUN.clear()


def redact(value: Any) -> Any:
    """`value` with every secret of the run replaced by `***`."""
    return _RUN.redact(value)


def redact_result(result: Any) -> Any:
    """A task result as it may be shown and stored. The raw facts a host sent back are
    kept as they are: the controller plans with them (mesh VTEPs, MTUs), and a secret
    equal to a device name must not change a plan; what prints facts redacts them."""
    if not _RUN:
        return result
    data = dict(result.data)
    facts = data.pop("facts", None)
    redacted = redact(dataclasses.replace(result, data=data))
    if facts is not None:
        redacted.data["facts"] = facts
    return redacted


class Taint:
    """Which renderings, among those in progress, have read a secret. Renderings nest
    (a variable rendered while a task argument is): reading a secret marks them all."""

    def __init__(self) -> None:
        self._open: list[Reading] = []

    @contextmanager
    def rendering(self) -> Iterator[Reading]:
        reading = Reading()
        self._open.append(reading)
        try:
            yield reading
        finally:
            self._open.pop()

    def read_secret(self) -> None:
        for reading in self._open:
            reading.secret = True


@dataclasses.dataclass
class Reading:
    secret: bool = False
