"""The drift history in PostgreSQL (`--history postgresql://USER@HOST:PORT/DB`): several
controllers (the shards of a fleet) write one history, and one report reads it.

The password is never taken from where it would be printed: the URL may carry one (it
is then shown as `***` in every message), else PGPASSWORD, else ~/.pgpass (or
PGPASSFILE) as libpq reads it. A unix socket is given as libpq does, `?host=/run/dir`.

`PgDb` gives the history the few calls of sqlite3's connection it uses (`execute` with
`?` parameters, `executemany`, `in_transaction`, `close`); every error of the driver is
a `StoreError` whose message names the redacted URL only. A writer's transaction takes
the history's lock first (as SQLite's BEGIN IMMEDIATE), so concurrent checks queue.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from vnetctl import secrets

SCHEMES = ("postgresql://", "postgres://")
LOCK_ID = 0x766E6574  # "vnet": the advisory lock writers and migrations take
CONNECT_TIMEOUT_S = 10


class StoreError(Exception):
    """The PostgreSQL history failed (server down, refused, a query failed)."""


def is_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(SCHEMES)


def redacted(url: str) -> str:
    """The URL as it may be shown: its password, if any, replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return url.replace(parts.netloc, f"{user}:***@{netloc[2]}", 1)


def pgpass(host: str, port: int, database: str, user: str) -> str | None:
    """The password ~/.pgpass (or $PGPASSFILE) gives, libpq's way: the first line whose
    fields (host:port:database:user:password, `*` any, `\\` escaping) match."""
    path = Path(os.environ.get("PGPASSFILE") or Path.home() / ".pgpass")
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    wanted = [host, str(port), database, user]
    for line in lines:
        if not line.strip() or line.startswith("#"):
            continue
        fields = [f.replace("\\:", ":").replace("\\\\", "\\")
                  for f in re.split(r"(?<!\\):", line)]  # fmt: skip
        if len(fields) == 5 and all(f in ("*", w) for f, w in zip(fields[:4], wanted, strict=True)):
            return fields[4]
    return None


def pin_password(url: str) -> None:
    """The URL's password is a secret of the run: redacted wherever vnetctl prints or
    writes, and refused in a schedule's unit or cron line (vnetctl.drift.schedule).
    Planning starts a new run (vnetctl.secrets.new_run): a check registers it after."""
    if is_url(url):
        password = urlsplit(url).password
        if password:
            secrets.registry().add(unquote(password))


def connect_args(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    user = unquote(parts.username or query.get("user") or os.environ.get("PGUSER") or "")
    if not user:
        raise StoreError(f"drift history {redacted(url)}: no user (postgresql://USER@...)")
    host = unquote(parts.hostname or "") or query.get("host") or "localhost"
    port = parts.port or int(query.get("port", 5432))
    database = unquote(parts.path.lstrip("/")) or user
    pin_password(url)
    password = parts.password
    password = unquote(password) if password is not None else os.environ.get("PGPASSWORD")
    if password is None:
        password = pgpass("localhost" if host.startswith("/") else host, port, database, user)
    args: dict[str, Any] = {"user": user, "database": database, "password": password,
                            "timeout": CONNECT_TIMEOUT_S}  # fmt: skip
    if host.startswith("/"):
        args["unix_sock"] = f"{host}/.s.PGSQL.{port}"
    else:
        args.update(host=host, port=port)
    return args


class Rows:
    """A query's result as sqlite3's cursor gives it."""

    def __init__(self, rows: list | None):
        self.rows = [tuple(r) for r in rows or []]

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list:
        return self.rows

    def __iter__(self):
        return iter(self.rows)


class PgDb:
    def __init__(self, url: str):
        self.label = redacted(url)
        try:
            import pg8000.native
        except ImportError as exc:  # a broken installation: said, the report still written
            raise StoreError(f"drift history {self.label}: no PostgreSQL driver ({exc})") from None
        self._errors = (pg8000.native.Error, OSError)
        args = connect_args(url)
        try:
            self.con = pg8000.native.Connection(**args)
        except self._errors as exc:
            raise StoreError(f"drift history {self.label}: {self._why(exc)}") from None
        except AttributeError:  # the driver's way of saying it was asked for none it had
            if args["password"] is not None:
                raise
            raise StoreError(
                f"drift history {self.label}: the server asks for a password: none in the "
                "URL, PGPASSWORD or ~/.pgpass"
            ) from None
        self.in_transaction = False

    def _why(self, exc: BaseException) -> str:
        args = exc.args[0] if exc.args else exc
        if isinstance(args, dict):  # the server's error: its message
            return str(args.get("M", args))
        return str(args).replace(self.label, "")

    def execute(self, sql: str, params: tuple | list = ()) -> Rows:
        statement = sql.strip()
        if statement.upper() == "BEGIN IMMEDIATE":  # a writer: queue behind the others
            self._run("BEGIN")
            self.in_transaction = True
            return self._run(f"SELECT pg_advisory_xact_lock({LOCK_ID})")
        rows = self._run(statement, params)
        if statement.upper() in ("COMMIT", "ROLLBACK"):
            self.in_transaction = False
        return rows

    def executemany(self, sql: str, rows: list) -> None:
        for row in rows:
            self.execute(sql, row)

    def _run(self, sql: str, params: tuple | list = ()) -> Rows:
        numbered = iter(range(1, len(params) + 1))
        text = re.sub(r"\?", lambda _m: f":p{next(numbered)}", sql)
        try:
            return Rows(self.con.run(text, **{f"p{i}": v for i, v in enumerate(params, 1)}))
        except self._errors as exc:
            raise StoreError(f"drift history {self.label}: {self._why(exc)}") from None

    def close(self) -> None:
        with contextlib.suppress(*self._errors):  # a connection the server dropped
            self.con.close()


# The history's tables in PostgreSQL, at SCHEMA_VERSION (vnetctl.drift.history): epoch
# seconds as DOUBLE PRECISION (REAL would round them), items kept in insertion order by
# `seq` (SQLite's rowid).
TABLES = """
CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    check_id TEXT NOT NULL, label TEXT NOT NULL,
    playbook TEXT NOT NULL, inventory TEXT NOT NULL, limit_pattern TEXT,
    started DOUBLE PRECISION NOT NULL, duration DOUBLE PRECISION NOT NULL,
    exit_code INTEGER NOT NULL,
    hosts INTEGER NOT NULL, missing INTEGER NOT NULL, different INTEGER NOT NULL,
    extra INTEGER NOT NULL, inconsistent INTEGER NOT NULL, resolved INTEGER NOT NULL,
    not_persisted INTEGER NOT NULL DEFAULT 0,
    shard TEXT
);
CREATE INDEX runs_by_check ON runs (check_id, id);
CREATE TABLE run_hosts (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    host TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL,
    resources INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, host)
);
CREATE INDEX run_hosts_by_host ON run_hosts (host, run_id);
CREATE TABLE items (
    seq BIGSERIAL PRIMARY KEY,
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL, host TEXT NOT NULL, resource TEXT NOT NULL, kind TEXT NOT NULL,
    field TEXT, declared TEXT NOT NULL, actual TEXT NOT NULL,
    play TEXT NOT NULL, task TEXT NOT NULL, first_seen DOUBLE PRECISION NOT NULL
);
CREATE INDEX items_by_run ON items (run_id, host);
"""
# from one version to the next (the first PostgreSQL history was version 3)
UPGRADES: dict[int, list[str]] = {}


def schema_version(db: PgDb) -> int:
    """The history's version (0: empty), read under the writers' lock held by the caller."""
    db.execute("CREATE TABLE IF NOT EXISTS vnetctl_schema (version INTEGER NOT NULL)")
    row = db.execute("SELECT MAX(version) FROM vnetctl_schema").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(db: PgDb, target: int) -> int:
    """Bring the history to `target`, in one transaction under the writers' lock (two
    controllers opening a new history at once: one creates it, the other finds it);
    the version found (newer than `target`: nothing is done, the caller refuses)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(db)
        if found < target:
            statements = []
            if found == 0:
                statements += list(filter(str.strip, TABLES.split(";")))
            for number in range(found + 1, target + 1) if found else ():
                statements += UPGRADES[number]
            for statement in statements:
                db.execute(statement)
            db.execute("DELETE FROM vnetctl_schema")
            db.execute("INSERT INTO vnetctl_schema VALUES (?)", (target,))
        db.execute("COMMIT")
        return found
    except BaseException:
        with contextlib.suppress(StoreError):
            db.execute("ROLLBACK")
        raise
