"""Errors an operator sees. Bad input names the file, the line and what was expected."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Location:
    file: str
    line: int | None = None  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file


class VnetctlError(Exception):
    """Base for errors vnetctl reports without a traceback."""


class InputError(VnetctlError):
    """Inventory, playbook or command-line input that cannot be used (exit code 1).

    `where` is the file:line, `context` names the play/task/host, `message` says what
    was expected.
    """

    def __init__(self, message: str, where: Location | None = None, context: str = ""):
        self.message = message
        self.where = where
        self.context = context
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.where:
            parts.append(str(self.where))
        if self.context:
            parts.append(self.context)
        parts.append(self.message)
        return ": ".join(parts)


class Interrupted(VnetctlError):
    """SIGINT/SIGTERM ended a command whose partial result would mislead (exit 130)."""
