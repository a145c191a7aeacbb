"""Commit confirmed, on the controller: after a play that armed the host's rollback
timer (see vnetctl.hostside.safe_apply), prove the host can still be reached with a NEW
SSH connection and confirm; if that cannot be done before the timer runs out, the host
rolls the play back by itself, and the controller comes back for the outcome."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from vnetctl.hostside.payload import ConfirmSpec, confirm_command, confirm_stdin
from vnetctl.transport.base import Unreachable

RETRY = 1.0  # seconds between attempts to reach the host again
ROLLBACK_BOUND = 60.0  # after the deadline: time given to the host's rollback and to us


@dataclass
class Settled:
    """How a commit-confirmed play ended on one host."""

    confirmed: bool
    reachable: bool = True
    msg: str = ""


class Confirmer:
    def __init__(self, pool, spec, confirm: ConfirmSpec, task_names: dict[int, str]):
        self.pool, self.spec, self.confirm = pool, spec, confirm
        self.task_names = task_names

    async def settle(self, armed_at: float) -> Settled:
        deadline = armed_at + self.confirm.timeout
        while time.monotonic() < deadline:
            try:
                answer = await self._ask("confirm", 0.0)
            except Unreachable:
                await asyncio.sleep(min(RETRY, max(0.0, deadline - time.monotonic())))
                continue
            if answer.get("confirmed"):
                return Settled(confirmed=True)
            if not answer.get("pending"):
                return self._outcome(answer)
            break  # the timer ran out just now: its rollback is under way
        lost = time.monotonic()
        while time.monotonic() < deadline + ROLLBACK_BOUND:
            try:
                answer = await self._ask("collect", 10.0)
            except Unreachable:
                await asyncio.sleep(RETRY)
                continue
            if not answer.get("pending"):
                return self._outcome(answer)
            await asyncio.sleep(RETRY)
        waited = time.monotonic() - lost
        return Settled(
            confirmed=False,
            reachable=False,
            msg=f"contact lost: not reachable {waited:.0f} s after the rollback timer ran "
            "out; the host rolls the play back by itself",
        )

    async def _ask(self, action: str, wait: float) -> dict:
        """One confirm/collect over a connection of its own (closed after)."""
        spec = self.spec
        password = spec.become_password.reveal() if spec.become and spec.become_password else None
        command = confirm_command(spec.python, self.confirm.directory, action, wait,
                                  spec.become, spec.become_user, password is not None)  # fmt: skip
        conn = await self.pool.fresh(spec.name)
        try:
            process = await conn.start(command)
            await process.write(confirm_stdin(password))
            process.close_stdin()
            lines = []
            while line := await asyncio.wait_for(process.readline(), wait + 15):
                lines.append(line)
            status, stderr = await asyncio.wait_for(process.wait(), 15)
        except (TimeoutError, OSError) as exc:
            raise Unreachable(f"no answer to {action}: {exc}") from None
        finally:
            await conn.close()
        if status != 0 or not lines:
            raise Unreachable(f"{action} failed ({status}): {stderr.strip()[-300:]}")
        return json.loads(lines[-1])

    def _outcome(self, answer: dict) -> Settled:
        if answer.get("gone"):
            return Settled(False, msg="the rollback timer's state vanished before it was "
                           "confirmed: check the host")  # fmt: skip
        index = answer.get("after_task")
        name = self.task_names.get(index, index)
        after = f" after applying task '{name}'" if index is not None else ""
        if answer.get("rolled_back"):
            return Settled(False, msg=f"rolled back: contact lost{after}; the host's state "
                           "equals the state before the play")  # fmt: skip
        left = "; ".join(answer.get("left") or []) or "unknown differences"
        return Settled(False, msg=f"rollback incomplete: contact lost{after}; left: {left}")
