"""The drift history: every check run in an embedded SQLite database.

It tells since when each item exists (its `first_seen` carries over from the host's
previous observation while the item stays) and what was resolved since. A host that
could not be checked (unreachable, failed) resolves nothing: its items are not
forgotten, and their first-seen times continue once it is checked again.

Concurrent checks (a timer and an operator, say) each write in one immediate
transaction, in WAL mode with a generous busy timeout: they queue, never interleave.
A check reads and writes its run in one transaction (`begin`), and commits it after
its report files are written (`commit`): a history that breaks (damaged pages, a full
disk) costs the check its history entry, never its reports (vnetctl.drift.publish).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vnetctl.drift import postgres
from vnetctl.drift.postgres import StoreError, is_url
from vnetctl.drift.report import DriftItem, DriftReport, HostState, Kind, TrendPoint
from vnetctl.errors import InputError
from vnetctl.secrets import redact

# 2: runs.not_persisted; 3: runs.shard, run_hosts.resources (older ones are upgraded in
# place, one version after the other, when opened)
SCHEMA_VERSION = 3
BUSY_TIMEOUT_S = 30.0
ERRORS = (sqlite3.Error, StoreError)  # what a history store raises when it fails
OBSERVED = (HostState.IN_SYNC.value, HostState.DRIFTED.value)
TABLES = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    check_id TEXT NOT NULL, label TEXT NOT NULL,
    playbook TEXT NOT NULL, inventory TEXT NOT NULL, limit_pattern TEXT,
    started REAL NOT NULL, duration REAL NOT NULL, exit_code INTEGER NOT NULL,
    hosts INTEGER NOT NULL, missing INTEGER NOT NULL, different INTEGER NOT NULL,
    extra INTEGER NOT NULL, inconsistent INTEGER NOT NULL, resolved INTEGER NOT NULL,
    not_persisted INTEGER NOT NULL DEFAULT 0,
    shard TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_check ON runs (check_id, id);
CREATE TABLE IF NOT EXISTS run_hosts (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
    resources INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, host)
);
CREATE INDEX IF NOT EXISTS run_hosts_by_host ON run_hosts (host, run_id);
CREATE TABLE IF NOT EXISTS items (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL, host TEXT NOT NULL, resource TEXT NOT NULL, kind TEXT NOT NULL,
    field TEXT, declared TEXT NOT NULL, actual TEXT NOT NULL,
    play TEXT NOT NULL, task TEXT NOT NULL, first_seen REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_run ON items (run_id, host);
"""
# from one version to the next: what an existing database needs
UPGRADES = {
    2: ["ALTER TABLE runs ADD COLUMN not_persisted INTEGER NOT NULL DEFAULT 0"],
    3: [
        "ALTER TABLE runs ADD COLUMN shard TEXT",
        "ALTER TABLE run_hosts ADD COLUMN resources INTEGER NOT NULL DEFAULT 0",
    ],
}


def forget_history(report: DriftReport) -> None:
    """The report as a check without a history makes it: no run id, no first-seen
    times, nothing said of what was resolved."""
    report.run_id, report.previous_run, report.resolved, report.trend = None, None, [], []
    for item in report.items():
        item.first_seen = None


def default_path() -> Path:
    if os.environ.get("VNETCTL_STATE_DIR"):
        return Path(os.environ["VNETCTL_STATE_DIR"]) / "drift.sqlite"
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "vnetctl" / "drift.sqlite"


@dataclass
class RunRecord:
    id: int
    check_id: str
    label: str
    playbook: str
    inventory: str
    limit: str | None
    started: float
    duration: float
    exit_code: int
    hosts: int
    items: dict[str, int]
    inconsistent: int
    resolved: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class HistoryUnusable(InputError):
    """The history cannot be opened: not SQLite, damaged, written by a newer vnetctl."""


def check_history_directory(path: Path) -> None:
    """A history given with --history goes where its directory already is."""
    if not path.absolute().parent.is_dir():
        raise InputError(
            f"--history {path}: directory {path.absolute().parent} does not exist (create it first)"
        )


def location(text: str) -> Path | str:
    """--history's value: a PostgreSQL URL as given, else a SQLite file's path."""
    return text if is_url(text) else Path(text)


class History:
    def __init__(self, path: Path | str | None = None):
        """`path` given (--history): a SQLite file, whose directory must exist, or a
        postgresql:// URL; the default's directory is made. A history that cannot be
        opened or brought to this schema: HistoryUnusable."""
        self.order = "rowid"  # what keeps items in the order they were written
        self.found_version = SCHEMA_VERSION  # the schema it had when opened (0: new)
        if is_url(path):
            self._open_postgres(str(path))
            return
        self.path = Path(path) if path else default_path()
        if path is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise HistoryUnusable(f"drift history {self.path}: {exc.strerror}") from None
        else:
            check_history_directory(self.path)
        try:
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise HistoryUnusable(f"drift history {self.path}: not usable: {exc}") from None
        try:
            self._open()
        except sqlite3.Error as exc:
            self.db.close()
            raise HistoryUnusable(f"drift history {self.path}: not usable: {exc}") from None
        except BaseException:
            self.db.close()
            raise

    def _open_postgres(self, url: str) -> None:
        self.path, self.order = postgres.redacted(url), "seq"
        try:
            self.db = postgres.PgDb(url)
        except StoreError as exc:
            raise HistoryUnusable(f"{exc}") from None
        try:
            version = self.found_version = postgres.migrate(self.db, SCHEMA_VERSION)
        except StoreError as exc:
            self.db.close()
            raise HistoryUnusable(f"{exc}") from None
        if version > SCHEMA_VERSION:
            self.db.close()
            raise self._newer(version)

    def _newer(self, version: int) -> HistoryUnusable:
        return HistoryUnusable(
            f"drift history {self.path} was written by a newer vnetctl (schema "
            f"{version}, this one knows {SCHEMA_VERSION}); upgrade or use --history"
        )

    def _open(self) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise self._newer(version)
        if version < SCHEMA_VERSION:
            with self._transaction():
                # read again under the write lock: another controller opening the same
                # new history at once (shards) may have made it meanwhile
                version = self.found_version = self.db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise self._newer(version)
                if version == SCHEMA_VERSION:
                    return
                fresh = (
                    self.db.execute(
                        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='runs'"
                    ).fetchone()
                    is None
                )
                for statement in filter(str.strip, TABLES.split(";")):
                    self.db.execute(statement)
                for number in range(version + 1, SCHEMA_VERSION + 1) if not fresh else ():
                    for statement in UPGRADES[number]:
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def _transaction(self):
        db = self.db

        class Immediate:
            def __enter__(self):
                db.execute("BEGIN IMMEDIATE")

            def __exit__(self, exc_type, *rest):
                if exc_type is None:
                    db.execute("COMMIT")
                elif db.in_transaction:
                    with contextlib.suppress(*ERRORS):  # the first error is the one
                        db.execute("ROLLBACK")

        return Immediate()

    def record(
        self, report: DriftReport, check: str, label: str = "", shard: str | None = None
    ) -> None:
        """Store the run; fill the report's run_id, previous_run, first_seen, resolved."""
        self.begin(report, check, label, shard)
        self.commit()

    def begin(
        self, report: DriftReport, check: str, label: str = "", shard: str | None = None
    ) -> None:
        """Fill the report from the history (run_id, previous_run, first_seen,
        resolved) and write the run, in a transaction left open for `commit()`. On any
        error (ERRORS) nothing is written, and the report is left as a check
        without a history makes it (forget_history)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self._annotate(report, check, label, shard)
        except BaseException:
            self._rollback()
            forget_history(report)
            raise

    def commit(self) -> None:
        try:
            self.db.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self.db.in_transaction:
            with contextlib.suppress(*ERRORS):  # the error that led here is reported
                self.db.execute("ROLLBACK")

    def _annotate(self, report: DriftReport, check: str, label: str, shard: str | None) -> None:
        row = self.db.execute(
            "SELECT started FROM runs WHERE check_id=? ORDER BY id DESC LIMIT 1", (check,)
        ).fetchone()
        report.previous_run = row[0] if row else None
        report.resolved = []
        for host in report.hosts:
            before = {i.key: i for i in self._last_observation(check, host.host)}
            for item in host.items:
                seen = before.get(item.key)
                item.first_seen = seen.first_seen if seen else report.started
            if host.state.value in OBSERVED:
                keys = {i.key for i in host.items}
                report.resolved += [i for k, i in before.items() if k not in keys]
        report.run_id = self._insert(report, check, label, shard)
        report.trend = self.trend(check)

    def trend(self, check: str, runs: int = 100) -> list[TrendPoint]:
        """The check's last `runs` runs, oldest first: drifted hosts and items of each."""
        rows = self.db.execute(
            "SELECT r.started, (SELECT COUNT(*) FROM run_hosts h WHERE h.run_id = r.id "
            "AND h.state = ?), r.missing + r.different + r.extra + r.not_persisted "
            "FROM runs r WHERE r.check_id = ? ORDER BY r.id DESC LIMIT ?",
            (HostState.DRIFTED.value, check, runs),
        ).fetchall()
        return [TrendPoint(*row) for row in reversed(rows)]

    def _last_observation(self, check: str, host: str) -> list[DriftItem]:
        row = self.db.execute(
            "SELECT MAX(r.id) FROM runs r JOIN run_hosts h ON h.run_id = r.id "
            "WHERE r.check_id=? AND h.host=? AND h.state IN (?, ?)",
            (check, host, *OBSERVED),
        ).fetchone()
        return self.items(row[0], host) if row and row[0] is not None else []

    def _insert(self, report: DriftReport, check: str, label: str, shard: str | None) -> int:
        counts = report.counts()
        cursor = self.db.execute(
            "INSERT INTO runs (check_id, label, playbook, inventory, limit_pattern, started, "
            "duration, exit_code, hosts, missing, different, extra, inconsistent, resolved, "
            "not_persisted, shard) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            (
                check, label, report.playbook, report.inventory, report.limit, report.started,
                report.duration, report.exit_code(), len(report.hosts), counts["missing"],
                counts["different"], counts["extra"], len(report.consistency),
                len(report.resolved), counts[Kind.NOT_PERSISTED.value], shard,
            ),
        )  # fmt: skip
        run_id = int(cursor.fetchone()[0])
        self.db.executemany(
            "INSERT INTO run_hosts (run_id, host, state, reason, resources) VALUES (?, ?, ?, ?, ?)",
            [
                (run_id, h.host, h.state.value, redact(h.reason), h.resources) for h in report.hosts
            ],  # fmt: skip
        )
        self.db.executemany(
            "INSERT INTO items (run_id, key, host, resource, kind, field, declared, actual, "
            "play, task, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    run_id, i.key, i.host, redact(i.resource), i.kind.value, redact(i.field),
                    redact(json.dumps(i.declared, default=str)),
                    redact(json.dumps(i.actual, default=str)), i.play, i.task, i.first_seen,
                )
                for i in report.items()
            ],
        )  # fmt: skip
        return run_id

    def has_run(self, run_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is not None

    def items(self, run_id: int, host: str | None = None) -> list[DriftItem]:
        query = (
            "SELECT host, resource, kind, field, declared, actual, play, task, first_seen "
            "FROM items WHERE run_id=?"
        )
        args: tuple = (run_id,)
        if host is not None:
            query, args = query + " AND host=?", (run_id, host)
        return [
            DriftItem(
                host=r[0], resource=r[1], kind=Kind(r[2]), field=r[3],
                declared=json.loads(r[4]), actual=json.loads(r[5]),
                play=r[6], task=r[7], first_seen=r[8],
            )
            for r in self.db.execute(query + f" ORDER BY {self.order}", args)
        ]  # fmt: skip

    def runs(self, check: str | None = None, limit: int = 20) -> list[RunRecord]:
        where, args = ("WHERE check_id=?", (check,)) if check else ("", ())
        rows = self.db.execute(
            "SELECT id, check_id, label, playbook, inventory, limit_pattern, started, duration, "
            "exit_code, hosts, missing, different, extra, inconsistent, resolved, not_persisted "
            f"FROM runs {where} ORDER BY id DESC LIMIT ?",
            (*args, limit),
        )
        return [
            RunRecord(
                *r[:10],
                items={
                    "missing": r[10],
                    "different": r[11],
                    "extra": r[12],
                    Kind.NOT_PERSISTED.value: r[15],
                },
                inconsistent=r[13],
                resolved=r[14],
            )
            for r in rows
        ]
