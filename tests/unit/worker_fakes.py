"""The fake transport of tests/unit/test_runner.py, by a name the worker processes of
vnetctl.fleet.workers load (they build their own connection pools after the fork)."""

from __future__ import annotations

import asyncio
import json

from tests.unit.test_runner import FakeConnection, FakeProcess, FakeTransport

NAME = "fake-for-workers"
PATH = "tests.unit.worker_fakes:Transport"
BEHAVIOURS: dict[str, str] = {}  # host -> FakeProcess behaviour, or 'slow'
SLOW = 0.02  # seconds per task of a 'slow' host


class SlowProcess(FakeProcess):
    """Every task takes SLOW seconds: a stop request or a kill lands mid-play."""

    async def _host(self, tasks, window):
        put = self.lines.put_nowait
        for t in tasks:
            if self.stdin_closed:
                put(json.dumps({"done": True, "stopped": True}) + "\n")
                put("")
                return
            put(json.dumps({"start": t["index"]}) + "\n")
            await asyncio.sleep(SLOW)
            put(json.dumps({"index": t["index"], "result": {"changed": True}}) + "\n")
        put(json.dumps({"done": True, "stopped": False}) + "\n")
        self.finished = True
        put("")


class SlowConnection(FakeConnection):
    async def start(self, command):
        return SlowProcess(self.host, self.behaviour, self.log)


class Transport(FakeTransport):
    def __init__(self):
        super().__init__(BEHAVIOURS, [])

    async def connect(self, target, options):
        if BEHAVIOURS.get(target.name) == "slow":
            return SlowConnection(target.name, "slow", self.log)
        return await super().connect(target, options)
