"""`lab up`'s wait for sshds probes ports a bounded number at a time: 500 at once on
a loaded machine each outlived its timeout while every sshd listened."""

from __future__ import annotations

import asyncio

from vnetctl.lab import sshd


def test_probes_are_bounded(monkeypatch):
    in_flight, most = 0, 0

    class Writer:
        def close(self):
            pass

    async def connect(address, port):
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return None, Writer()

    monkeypatch.setattr(asyncio, "open_connection", connect)
    endpoints = [(f"10.0.{i // 250}.{i % 250 + 1}", 22) for i in range(500)]
    assert sshd.endpoints_open(endpoints, timeout=5.0) == [True] * 500
    assert most == sshd.PROBES_AT_ONCE
