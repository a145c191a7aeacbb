"""The packages under vnetctl/fleet: each adds, for a module, what a run needs across
the fleet, by naming it in its __init__.py: `EXPANDERS` (vnetctl.fleet.expanders) and
`GATES` (health gates, vnetctl.fleet.gates). They are found, never listed: adding one is
adding a folder, and nothing in the fleet's own modules imports them."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType
from typing import Any


@cache
def packages() -> tuple[ModuleType, ...]:
    """Every package under vnetctl/fleet, imported once, by name."""
    import vnetctl.fleet as fleet  # noqa: PLC0415 (this module is part of the package)

    found = sorted(pkgutil.iter_modules(fleet.__path__), key=lambda info: info.name)
    return tuple(
        importlib.import_module(f"vnetctl.fleet.{info.name}") for info in found if info.ispkg
    )


def registered(name: str) -> list[Any]:
    """What the packages list under `name` (EXPANDERS, GATES), in package order."""
    return [item for package in packages() for item in getattr(package, name, [])]
