"""Package discovery, which pyproject.toml alone cannot express here: every package under
vnetctl/ (found, never listed by hand, so a new folder cannot be left out of the wheel)
plus modules/, the code pushed to hosts, shipped as vnetctl.hostmodules (the mapping is in
pyproject.toml's [tool.setuptools.package-dir]). Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

HOST_PACKAGES = ["vnetctl.hostmodules", "vnetctl.hostmodules.module_utils"]

CONTROLLER_PACKAGES = find_namespace_packages(
    include=["vnetctl", "vnetctl.*"], exclude=["*__pycache__"]
)

setup(packages=[*CONTROLLER_PACKAGES, *HOST_PACKAGES])
