"""Task results, per-host stats and the exit code of a run."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from dataclasses import dataclass, field, fields
from enum import StrEnum


class Status(StrEnum):
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNREACHABLE = "unreachable"  # once per host: it could not be reached, or was lost
    UNKNOWN = "unknown"  # in flight when contact was lost or the run was interrupted
    NOT_STARTED = "not_started"  # never began: the host was lost, failed or stopped first
    RESCUED = "rescued"  # failed in a block whose rescue then ended well (as in Ansible)


class ExitCode:
    """Documented in README and `vnetctl --help`."""

    SUCCESS = 0
    BAD_INPUT = 1
    HOST_FAILED = 2
    HOST_UNREACHABLE = 3
    INTERRUPTED = 130  # as a shell reports a command ended by SIGINT


ROLLOUT_LABEL = "(rollout)"  # the line of a host a stopped rollout never started


@dataclass
class TaskResult:
    host: str
    play: str
    index: int  # -1: about the host rather than one task (connect, lock, timeout)
    task: str
    module: str
    status: Status
    msg: str = ""
    changes: list[dict] = field(default_factory=list)  # [{field, before, after}]
    diff: dict | None = None  # {before, after} as the module reported it
    commands: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # module-specific extras (e.g. facts)
    resource: str | None = None  # e.g. "bridge br-vm"

    @classmethod
    def from_module(cls, host: str, play: str, task, raw: dict) -> TaskResult:
        if raw.get("failed"):
            status = Status.FAILED
        elif raw.get("skipped"):
            status = Status.SKIPPED
        else:
            status = Status.CHANGED if raw.get("changed") else Status.OK
        known = {
            "changed", "failed", "skipped", "skipped_after", "msg", "changes", "diff",
            "commands", "resource",
        }  # fmt: skip
        data = {k: v for k, v in raw.items() if k not in known}
        if "facts" in data and data.get("ansible_facts") == {"vnet": data["facts"]}:
            # the facts module says the host's model twice (modules/facts.py): kept once
            data["ansible_facts"] = {"vnet": data["facts"]}
        return cls(
            host=host,
            play=play,
            index=task.index,
            task=task.name,
            module=task.module,
            status=status,
            msg=str(raw.get("msg", "")),
            changes=raw.get("changes") or [],
            diff=raw.get("diff"),
            commands=raw.get("commands") or [],
            data=data,
            resource=raw.get("resource"),
        )

    def to_dict(self) -> dict:
        """The result as JSON data, its lists and dicts shared, not copied: they hold
        what the host's JSON records said (plain data), and a deep copy of every host's
        facts (asdict) was ~1 ms of controller CPU per host in a run's JSON report."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# what a result says beyond its line in the recap: the host's JSON (vnetctl.hostside)
DETAIL = ("changes", "diff", "commands", "data")
EMPTY = {"changes": [], "diff": None, "commands": [], "data": {}}


class Keep(StrEnum):
    """What a run keeps of each task result once its reporter heard it: the part of the
    controller's memory that grows with the fleet (plans aside)."""

    ALL = "all"  # as the host said it: drift, facts, mesh, stats, trace read it after
    REPORT = "report"  # `run --format json`: all it prints, DETAIL packed (PackedResult)
    RECAP = "recap"  # `run` with the console: the recap and the exit code read no DETAIL


@dataclass
class PackedResult(TaskResult):
    """A result whose DETAIL is kept as compact JSON text (a third to a fifth of the
    memory of the objects json.loads made), read back only to write the report."""

    packed: str = ""

    def to_dict(self) -> dict:
        detail = json.loads(self.packed)
        if detail.pop("vnet_is_facts", False):  # in its place among the data's keys
            detail["data"]["ansible_facts"] = {"vnet": detail["data"]["facts"]}
        return {f.name: detail[f.name] if f.name in DETAIL else getattr(self, f.name)
                for f in fields(TaskResult)}  # fmt: skip


def kept(result: TaskResult, keep: Keep) -> TaskResult:
    """What of `result` to keep: a new object (the reporter may hold the one it heard)."""
    if keep is Keep.ALL or isinstance(result, PackedResult):
        return result
    if all(getattr(result, k) == v for k, v in EMPTY.items()):
        return result
    if keep is Keep.RECAP:
        return dataclasses.replace(result, **EMPTY)
    detail = {k: getattr(result, k) for k in DETAIL}
    facts, vnet = result.data.get("facts"), result.data.get("ansible_facts")
    if facts is not None and isinstance(vnet, dict) and list(vnet) == ["vnet"] \
            and vnet["vnet"] is facts:  # fmt: skip
        # the facts module's model twice (TaskResult.from_module), packed once
        detail["data"] = dict(result.data, ansible_facts=None)
        detail["vnet_is_facts"] = True
    # the report's own encoding (default=str) of the JSON a host sent: read back equal
    packed = json.dumps(detail, separators=(",", ":"), default=str)
    return PackedResult(**{**result.to_dict(), **EMPTY}, packed=packed)


@dataclass
class Rescued:
    """A host's block rescue ended well (vnetctl/hostside/conditions.py): its failed
    tasks `indexes` of `play` are `rescued`, and the host goes on to the later plays."""

    host: str
    play: str
    indexes: list[int]


@dataclass
class RunResult:
    results: list[TaskResult] = field(default_factory=list)
    unreachable: dict[str, str] = field(default_factory=dict)  # host -> reason
    hosts: list[str] = field(default_factory=list)  # every host the run targeted
    interrupted: bool = False  # SIGINT/SIGTERM: tasks stopped early (see NOT_STARTED)
    # hosts whose play the management-path guard refused before any change there
    refused: set[str] = field(default_factory=set)
    # rollbacks earlier runs left on hosts (their controller killed or lost), collected
    # by this run: {host, play, msg, rolled_back, left, problems, owner, at, ...}
    earlier: list[dict] = field(default_factory=list)
    # a rolling play stopped: why, and what became of its hosts (vnetctl.fleet.rollout)
    rollout_stopped: dict | None = None
    # `run --check --detailed-exitcode`: a change that would be made is 2, as drift is
    detailed_exitcode: bool = False
    keep: Keep = Keep.ALL  # what `results` keeps of each result added (see kept)

    def add(self, result: TaskResult) -> None:
        """`result`, once its reporter heard it: what the run keeps of it."""
        self.results.append(kept(result, self.keep))

    def rescue(self, notice: Rescued) -> bool:
        """The failures a block's rescue cleared become `rescued`; True when the host
        has no failure left (it goes on to the later plays)."""
        for result in self.results:
            same = (result.host, result.play) == (notice.host, notice.play)
            if same and result.status is Status.FAILED and result.index in notice.indexes:
                result.status = Status.RESCUED
        return not any(r.host == notice.host and r.status is Status.FAILED for r in self.results)

    def stats(self) -> dict[str, Counter]:
        stats = {host: Counter() for host in self.hosts}
        for result in self.results:
            stats.setdefault(result.host, Counter())[result.status.value] += 1
        return stats

    def exit_code(self) -> int:
        """One rule with `vnetctl drift`: something to act on on a reachable host (a
        failure; with detailed_exitcode, a change) is 2 whatever else happened, so an
        alert keyed on 2 never misses it behind an unreachable host; unreachable alone 3."""
        if self.interrupted:
            return ExitCode.INTERRUPTED
        bad = (Status.FAILED, Status.UNKNOWN)
        if self.detailed_exitcode:
            bad += (Status.CHANGED,)

        def to_act_on(r: TaskResult) -> bool:  # a task lost with its host: unreachable
            lost = r.status is Status.UNKNOWN and r.host in self.unreachable
            return r.status in bad and r.host not in self.refused and not lost

        if any(to_act_on(r) for r in self.results):
            return ExitCode.HOST_FAILED
        if self.unreachable:
            return ExitCode.HOST_UNREACHABLE
        if self.refused:  # refused as bad input is: before any change on those hosts
            return ExitCode.BAD_INPUT
        return ExitCode.SUCCESS


def facts_of(result: RunResult) -> dict[str, dict | str]:
    """Each host's facts from a run of the facts play (playbook.adhoc.facts_plan), or
    why it has none: the first line the run has about that host."""
    facts: dict[str, dict | str] = {}
    for r in result.results:
        if "facts" in r.data:
            facts[r.host] = r.data["facts"]
        else:
            facts.setdefault(r.host, f"{r.status.value}: {r.msg}")
    return facts
