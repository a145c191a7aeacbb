"""The drift report: what on which host no longer matches the declared network.

Every output format (text, JSON, HTML, JUnit, Prometheus) renders this one model; the
history fills `first_seen` and `resolved`. The JSON form (`DriftReport.to_dict`) is the
documented schema in `vnetctl/drift/schema/drift-report.schema.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1


def check_id(
    playbook: str,
    inventory: str,
    limit: str | None,
    tags: list[str] | None = None,
    skip_tags: list[str] | None = None,
) -> str:
    """A check's identity (the history's key, the Prometheus `check` label): runs of the
    same playbook on the same inventory, limit and tags are runs of one check (a check
    of some tags must not call the other tasks' items resolved). `inventory`: the sources
    as given, comma-separated when several -i were stacked. A check without tags keeps
    the identity it had before tags could be given."""
    sources = [str(Path(source).resolve()) for source in inventory.split(",")]
    parts = [str(Path(playbook).resolve()), *sources, limit or ""]
    if tags or skip_tags:
        parts += [",".join(sorted(tags or [])), ",".join(sorted(skip_tags or []))]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def scope_words(limit: str | None, tags: list[str] | None, skip_tags: list[str] | None) -> str:
    """`--limit L --tags a,b --skip-tags c`, as given (empty: the whole playbook)."""
    words = [f"--limit {limit}"] if limit else []
    words += [f"--tags {','.join(tags)}"] if tags else []
    words += [f"--skip-tags {','.join(skip_tags)}"] if skip_tags else []
    return " ".join(words)


def natural_key(name: str) -> list:
    """h2 before h10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def by_host(values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(host, value) pairs in host order, whatever order the hosts answered in."""
    return sorted(values.items(), key=lambda pair: natural_key(pair[0]))


class Kind(StrEnum):
    MISSING = "missing"  # declared, absent on the host (a resource, or an item of a set)
    DIFFERENT = "different"  # a field whose actual value is not the declared one
    EXTRA = "extra"  # present inside what vnetctl owns, not declared (a port, an fdb peer)
    # the boot configuration (vnet_persist's files) is not what the declaration renders:
    # a file missing, different, or left from a declaration that is gone (field: its path)
    NOT_PERSISTED = "not persisted"


class HostState(StrEnum):
    IN_SYNC = "in_sync"
    DRIFTED = "drifted"
    FAILED = "failed"  # a task failed while planning: drift unknown
    UNREACHABLE = "unreachable"  # never counted as drift-free


@dataclass
class DriftItem:
    host: str
    resource: str  # e.g. "bridge br-vm", "mesh overlay"
    kind: Kind
    field: str | None  # dotted path, e.g. "mtu", "ports", "segments.100.peers"
    declared: Any = None
    actual: Any = None
    play: str = ""
    task: str = ""
    first_seen: float | None = None  # epoch seconds; from the history

    @property
    def key(self) -> str:
        """Identity across runs: the same item on a later run has the same key."""
        ident = [self.host, self.resource, self.kind.value, self.field]
        if self.kind is not Kind.NOT_PERSISTED:  # a file is identified by its path
            ident.append(self.declared)
        if self.kind not in (Kind.DIFFERENT, Kind.NOT_PERSISTED):
            ident.append(self.actual)  # an extra item is identified by what it is
        raw = json.dumps(ident, sort_keys=True, default=str)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["key"] = self.key
        return data


@dataclass
class HostDrift:
    host: str
    state: HostState
    reason: str = ""  # why unreachable or failed
    resources: int = 0  # resources checked on the host
    items: list[DriftItem] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state.value,
            "reason": self.reason,
            "resources": self.resources,
            "items": [i.to_dict() for i in self.items],
        }


@dataclass
class ConsistencyItem:
    """A field declared the same for every host of a task, whose actual values differ."""

    play: str
    task: str
    resource: str
    field: str
    declared: Any
    values: dict[str, Any]  # host -> actual value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrendPoint:
    """One recorded run of the check, for the HTML report's trend chart."""

    started: float
    drifted_hosts: int
    items: int


@dataclass
class DriftReport:
    playbook: str
    inventory: str
    started: float  # epoch seconds
    duration: float  # seconds
    limit: str | None = None
    tags: list[str] | None = None  # --tags, --skip-tags: the tasks checked
    skip_tags: list[str] | None = None
    hosts: list[HostDrift] = field(default_factory=list)
    consistency: list[ConsistencyItem] = field(default_factory=list)
    resolved: list[DriftItem] = field(default_factory=list)  # gone since the previous run
    run_id: int | None = None  # the history's id for this run
    previous_run: float | None = None  # when the previous run of this check started
    trend: list[TrendPoint] = field(default_factory=list)  # recorded runs, oldest first

    @property
    def check_id(self) -> str:
        return check_id(self.playbook, self.inventory, self.limit, self.tags, self.skip_tags)

    @property
    def scope(self) -> str:
        return scope_words(self.limit, self.tags, self.skip_tags)

    def items(self) -> list[DriftItem]:
        return [item for h in self.hosts for item in h.items]

    def hosts_in(self, state: HostState) -> list[HostDrift]:
        return [h for h in self.hosts if h.state is state]

    def needing_attention(self) -> list[HostDrift]:
        """Drifted hosts, then failed, then unreachable (what someone can act on first,
        then what could not be seen), each group in host order."""
        rank = {HostState.DRIFTED: 0, HostState.FAILED: 1, HostState.UNREACHABLE: 2}
        hosts = [h for h in self.hosts if h.state in rank]
        return sorted(hosts, key=lambda h: (rank[h.state], natural_key(h.host)))

    def counts(self) -> dict[str, int]:
        counts = {kind.value: 0 for kind in Kind}
        for item in self.items():
            counts[item.kind.value] += 1
        return counts

    @property
    def recorded(self) -> bool:
        """In the history (not --no-history): first-seen times and resolved items known."""
        return self.run_id is not None

    @property
    def has_errors(self) -> bool:
        return any(h.state in (HostState.FAILED, HostState.UNREACHABLE) for h in self.hosts)

    @property
    def has_drift(self) -> bool:
        return bool(self.items() or self.consistency)

    def exit_code(self) -> int:
        """As `terraform plan -detailed-exitcode`, for alerting: drift found on any
        reachable host is 2 whatever else happened (hosts unreachable or failed beside
        it are in the report); else a failed host (drift unknown) 1, unreachable hosts
        alone 3, nothing 0."""
        if self.has_drift:
            return 2
        if self.hosts_in(HostState.FAILED):
            return 1
        return 3 if self.hosts_in(HostState.UNREACHABLE) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "playbook": self.playbook,
            "inventory": self.inventory,
            "limit": self.limit,
            "tags": self.tags,
            "skip_tags": self.skip_tags,
            "run_id": self.run_id,
            "started": self.started,
            "duration": self.duration,
            "previous_run": self.previous_run,
            "summary": {
                "hosts": len(self.hosts),
                **{state.value: len(self.hosts_in(state)) for state in HostState},
                "items": self.counts(),
                "inconsistent_fields": len(self.consistency),
                "resolved": len(self.resolved),
                "exit_code": self.exit_code(),
            },
            "hosts": [h.to_dict() for h in self.hosts],
            "consistency": [c.to_dict() for c in self.consistency],
            "resolved": [i.to_dict() for i in self.resolved],
        }
