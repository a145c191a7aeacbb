"""The SSH transports by name, each imported on first use: an SSH library costs 80-200 ms
to import, which every run, `--help` and every bad-input error would otherwise pay."""

from __future__ import annotations

import importlib

from vnetctl.transport.base import Transport

TRANSPORTS = {
    "asyncssh": "vnetctl.transport.asyncssh_transport:AsyncsshTransport",
    "paramiko": "vnetctl.transport.paramiko_transport:ParamikoTransport",
}


def load_transport(name: str) -> Transport:
    module, _, cls = TRANSPORTS[name].partition(":")
    return getattr(importlib.import_module(module), cls)()
