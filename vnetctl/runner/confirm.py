"""Commit confirmed, on the controller: after a play that armed the host's rollback
timer (see vnetctl.hostside.safe_apply), prove the host can still be reached with a NEW
SSH connection and confirm; if that cannot be done before the timer runs out, the host
rolls the play back by itself, and the controller comes back for the outcome (or, when it
cannot, the next run on that host collects it and says what happened)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from vnetctl.runner.payload import ConfirmSpec, confirm_command, confirm_stdin
from vnetctl.transport.base import Unreachable

RETRY = 1.0  # seconds between attempts to reach the host again
ROLLBACK_BOUND = 60.0  # after the deadline: time given to the host's rollback and to us


@dataclass
class Settled:
    """How a commit-confirmed play ended on one host."""

    confirmed: bool
    reachable: bool = True
    msg: str = ""
    rolled_back: bool = False  # whole: the state re-read equals the state before


class Confirmer:
    def __init__(self, pool, spec, confirm: ConfirmSpec, task_names: dict[int, str]):
        self.pool, self.spec, self.confirm = pool, spec, confirm
        self.task_names = task_names

    async def settle(self, armed_at: float, roll_back: str | None = None,
                     held: bool = False) -> Settled:  # fmt: skip
        """Confirm; or, given why (`roll_back`: a health gate failed), have the host roll
        the play back now. Either way over new connections, until the timer's deadline,
        then the rollback's result is collected. `held`: the confirmation waited for a
        rolling batch's health gates."""
        deadline = armed_at + self.confirm.timeout
        # not confirmed in time: contact was lost (the play's session, or our attempts
        # here, a slow connect included), unless the health gates held us back
        action, missed = ("abort", 10.0) if roll_back else ("confirm", 0.0), not held
        while time.monotonic() < deadline:
            missed = True
            try:
                answer = await self._ask(*action)
            except Unreachable:
                await asyncio.sleep(min(RETRY, max(0.0, deadline - time.monotonic())))
                continue
            if answer.get("confirmed"):
                return Settled(confirmed=True)
            if not answer.get("pending"):
                return self._outcome(answer, self._why(roll_back, missed), bool(roll_back))
            break  # the timer ran out just now, or the rollback asked for is under way
        why = self._why(roll_back, missed)
        lost = time.monotonic()
        while time.monotonic() < deadline + ROLLBACK_BOUND:
            try:
                answer = await self._ask("collect", 10.0)
            except Unreachable:
                await asyncio.sleep(RETRY)
                continue
            if not answer.get("pending"):
                return self._outcome(answer, why, bool(roll_back))
            await asyncio.sleep(RETRY)
        waited = time.monotonic() - lost
        return Settled(
            confirmed=False,
            reachable=False,
            msg=f"contact lost: not reachable {waited:.0f} s after the rollback timer ran "
            "out: whether the host rolled the play back is unknown; the next run on this "
            "host collects its result and says",
        )

    def _why(self, roll_back: str | None, missed: bool) -> str:
        if roll_back:
            return roll_back
        if missed:
            return "contact lost"
        return (f"not confirmed before the rollback timer ({self.confirm.timeout:g} s) ran "
                "out: the batch's health gates took longer")  # fmt: skip

    async def _ask(self, action: str, wait: float) -> dict:
        """One confirm/abort/collect over a connection of its own (closed after)."""
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

    def _outcome(self, answer: dict, why: str, asked: bool = False) -> Settled:
        if answer.get("gone"):
            return Settled(False, msg="the rollback timer's state vanished before it was "
                           "confirmed: check the host")  # fmt: skip
        index = answer.get("after_task")
        name = self.task_names.get(index, index)
        after = f" after applying task '{name}'" if index is not None and not asked else ""
        return Settled(False, msg=outcome(answer, f"{why}{after}", "the play"),
                       rolled_back=bool(answer.get("rolled_back")))  # fmt: skip


DIED = {  # the state a dead watchdog's directory was in (vnetctl.hostside.confirm_files)
    "armed": "while its timer ran",
    "expired": "after its timer ran out",
    "confirmed": "after the play was confirmed",
    "unarmed": "before it was armed",
}


def outcome(answer: dict, why: str, play: str) -> str:
    """What a host's watchdog did, in words: `answer` is what collecting it returned."""
    if "died" in answer:
        when = DIED.get(answer["died"], answer["died"])
        return (f"rollback unknown: {why}; the host's watchdog ended {when} without a "
                "result: check the host, re-run to converge")  # fmt: skip
    if "unreadable" in answer:
        return f"rollback unknown: {why}; its result cannot be read: {answer['unreadable']}"
    if answer.get("rolled_back"):
        return f"rolled back: {why}; the host's state equals the state before {play}"
    left = "; ".join([*(answer.get("left") or []), *(answer.get("problems") or [])])
    return f"rollback incomplete: {why}; left: {left or 'unknown differences'}"


def earlier(found: dict) -> str:
    """A rollback an earlier run left on the host, collected by this one (see
    vnetctl.hostside.confirm_files.leftovers), in words."""
    who = f"`{found['owner']}`" if found.get("owner") else f"play {found.get('play')}"
    armed = _clock(found.get("armed_at"))
    task = found.get("after_task")
    why = (f"an earlier run ({who}) armed a rollback timer{armed and ' at ' + armed} "
           "and never confirmed it")  # fmt: skip
    if task is not None:
        why += f"; the host undid it at {_clock(found.get('at'))}, from its task #{task}"
        why += f" ({found['after_module']})" if found.get("after_module") else ""
    return outcome(found, why, "that play")


def _clock(stamp) -> str:
    if not isinstance(stamp, int | float):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))
