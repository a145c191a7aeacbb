"""One host's part of one play, as the controller follows it: the records its remote
process streams (see vnetctl.hostside.boot), what is in flight, and what never began."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable

from vnetctl.runner.confirm import earlier
from vnetctl.runner.results import Rescued, Status, TaskResult
from vnetctl.secrets import redact
from vnetctl.transport.base import ConnectionLost, RemoteFailure, RemoteProcess

Emit = Callable[[TaskResult | Rescued], None]
Note = Callable[[str, str], None]
# A host starts a task only while fewer than this many of its started tasks are
# unacknowledged (vnetctl.hostside.boot): a host lost mid-play may have begun at most
# this many tasks after the last start record received, and those are `unknown`, the
# rest truly `not started`. Eight keeps plays of up to eight tasks free of any wait,
# and longer ones at eight tasks per round trip.
ACK_WINDOW = 8
ACK = "+"  # what the controller writes on the host's stdin for each start record
UNSEEN = (
    f"unknown: contact was lost; the host may have started it (it runs up to {ACK_WINDOW} "
    "tasks ahead of what vnetctl has received); re-run to converge"
)


class HostPlay:
    def __init__(
        self, host: str, play: str, tasks: list, emit: Emit, note: Note,
        confirm_timeout: float | None = None, persist: str | None = None,
    ):  # fmt: skip
        self.host = host
        self.play = play
        self.names = {t.index: t.name for t in tasks}
        self.pending = {t.index: t for t in tasks}
        self.in_flight: int | None = None
        self.stage = "waiting to start"
        self.started = time.monotonic()
        self.done = False
        self.stopped = False
        self.fatal: str | None = None
        self.pid: int | None = None  # the remote process, as its login shell printed it
        self.confirm_timeout = confirm_timeout  # commit confirmed: the rollback timer
        self.persist = persist  # the play's `persist:` (None: the inventory's, or detected)
        self.armed: dict | None = None  # the host armed its rollback timer
        self.armed_at = 0.0
        self.refused = False  # the guard refused the play before any change on this host
        self.earlier: list[dict] = []  # rollbacks earlier runs left here, collected now
        self.launched = False  # the remote process was given its tasks: it may run them
        self.need: list[str] = []  # code the host's cache lacks: to send (boot._load)
        self.cached: dict | None = None  # code the host kept in its cache (host_code)
        self._emit = emit
        self._note = note

    # ---- records from the host -----------------------------------------------------

    def record(self, line: str) -> bool:
        """Take one line of the host's output; True when it was a start record (the
        controller acknowledges each, see ACK_WINDOW)."""
        if not line.strip():  # a tool run by a module may leave a bare newline
            return False
        if self.pid is None and line.strip().isdigit():
            self.pid = int(line)
            return False
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise RemoteFailure(None, f"unexpected output from host: {line[:200]!r}") from None
        if not isinstance(record, dict):
            raise RemoteFailure(None, f"unexpected output from host: {line[:200]!r}")
        if "start" in record:
            self.in_flight = record["start"]
            self.stage = f"task '{self.names.get(self.in_flight, self.in_flight)}'"
            return True
        if "result" in record:
            self._result(record["index"], record["result"])
        elif "rescued" in record:  # the block's rescue ended well: not a failure any more
            self._emit(Rescued(self.host, self.play, [int(i) for i in record["rescued"]]))
        elif "refused" in record:  # the management-path guard, before any change here
            refused = record["refused"]
            self.refused = True
            task = self.pending.pop(refused["index"], None)
            if task is not None:  # the steps that touch the path, as a task result has them
                touching = {"management_path": refused.get("management_path") or []}
                self._emit(TaskResult(self.host, self.play, task.index, task.name, task.module,
                                      Status.FAILED, str(refused["msg"]),
                                      data=touching))  # fmt: skip
            self.close(Status.NOT_STARTED, "", "not started: the play was refused on this host")
        elif "earlier" in record:
            for found in record["earlier"]:
                found = redact(dict(found, msg=earlier(found)))
                self.earlier.append(found)
                self._note(self.host, found["msg"])
        elif "need" in record:
            self.need = str(record["need"]).split()
        elif "cached" in record:
            self.cached = record["cached"]
        elif "armed" in record:
            self.armed, self.armed_at = record["armed"], time.monotonic()
        elif "waiting" in record:
            self.stage = "waiting for the host lock"
            self._note(self.host, "waiting: " + str(record["waiting"]))
        elif "fatal" in record:
            self.fatal = str(record["fatal"])
            self.stage = str(record.get("stage") or "starting")
        elif record.get("done"):
            self.done = True
            self.stopped = bool(record.get("stopped"))
        return False

    def _result(self, index: int, raw: dict) -> None:
        task = self.pending.pop(index, None)
        if task is None:
            raise RemoteFailure(None, f"host reported task {index}, which it was not given")
        if self.in_flight == index:
            self.in_flight = None
            self.stage = "between tasks"
        if "skipped_after" in raw:  # the host knows indexes; people know names
            name = self.names.get(raw["skipped_after"], raw["skipped_after"])
            raw = dict(raw, msg=f"skipped: task '{name}' failed on this host")
        if "pending" in raw:  # check mode: planned once an earlier task made a device
            name = self.names.get(raw["pending"]["after"], raw["pending"]["after"])
            raw = dict(
                raw,
                msg=f"would change, after task '{name}' creates "
                f"{raw['pending']['creates']} (planned once it exists)",
            )
        self._emit(TaskResult.from_module(self.host, self.play, task, raw))

    # ---- the end -------------------------------------------------------------------

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def where(self) -> str:
        """'in task 'x' after 12 s': for messages about a host that stopped answering."""
        return f"in {self.stage} after {self.elapsed:.0f} s"

    def host_line(self, status: Status, msg: str, label: str) -> None:
        """A result about the host itself (index -1), e.g. unreachable or the lock."""
        self._emit(TaskResult(self.host, self.play, -1, label, "-", status, msg))

    def close(
        self, in_flight: Status, msg: str, not_started_msg: str, unseen: bool = False
    ) -> None:
        """Report the task in flight (as `in_flight`) and every task that never began.
        `unseen`: the host's output was not read to its end (contact lost, output not
        understood, the process killed at once), so the ACK_WINDOW tasks after the last
        start record received may have begun: `unknown`, never `not started`."""
        if self.in_flight is not None and self.in_flight in self.pending:
            task = self.pending.pop(self.in_flight)
            self._emit(TaskResult(self.host, self.play, task.index, task.name, task.module,
                                  in_flight, msg))  # fmt: skip
        self.in_flight = None
        maybe = ACK_WINDOW if unseen and self.launched and not self.done else 0
        for n, task in enumerate(self.pending.values()):
            unknown = n < maybe
            status = Status.UNKNOWN if unknown else Status.NOT_STARTED
            said = UNSEEN if unknown else not_started_msg
            self._emit(TaskResult(self.host, self.play, task.index, task.name, task.module,
                                  status, said))  # fmt: skip
        self.pending.clear()


def describe_exit(status: int | None, stderr: str, python: str) -> str:
    """Why the remote process ended badly, in words an operator can act on."""
    text = stderr.strip()
    if status == 127:
        return f"the interpreter {python!r} was not found on the host (set " \
            f"ansible_python_interpreter or vnetctl_python_interpreter): {text[-500:]}"  # fmt: skip
    if "a password is required" in text or "a terminal is required" in text:
        return "sudo asks for a password: set ansible_become_password (or allow NOPASSWD)"
    if "incorrect password" in text:
        return "sudo refused the become password"
    shown = text[-2000:] or "(nothing on stderr)"
    return f"remote process exited with {status if status is not None else 'a signal'}: {shown}"


async def acknowledge(process: RemoteProcess, starts: int) -> int:
    """One "+" per start record received, in one write (one SSH packet, not one each);
    0, the start records now unacknowledged."""
    if starts:
        with contextlib.suppress(ConnectionLost):  # the host may have ended since: a
            await process.write(ACK * starts)  # connection that died, the next read says so
    return 0
