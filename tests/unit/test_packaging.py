"""Every package of the controller ships: pyproject lists them by hand (modules/ is
mapped in as vnetctl.hostmodules), so a new folder must be added there."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_every_controller_package_is_in_pyproject():
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "vnetctl").rglob("__init__.py")
    }
    assert found <= listed, sorted(found - listed)
