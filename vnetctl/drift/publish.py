"""Where a check's results go, in an order that never loses them: the history is read
and the run written in one open transaction, the report files are written, and only
then is the run committed.

A history that breaks at any point (damaged pages, a full disk, a newer schema) is
reported in one line and changes nothing else: the reports are still written (without
first-seen times and resolved items when the history could not be read) and the exit
code is still the drift's. A report file that cannot be written is reported in one
line too; the others, the history and stdout still get theirs, and the check ends
with exit 1 (an error), since what was asked for is not all there.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from vnetctl.drift import formats
from vnetctl.drift.history import ERRORS, History, HistoryUnusable
from vnetctl.drift.report import DriftReport
from vnetctl.errors import InputError
from vnetctl.secrets import redact

Say = Callable[[str], None]


def _stderr(line: str) -> None:
    print(redact(line), file=sys.stderr, flush=True)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc).removeprefix("drift history ")


def write_files(report: DriftReport, files: list[tuple[str, Path, str]], say: Say) -> bool:
    """Each (format, path, option) written atomically; False when one could not be."""
    written = True
    for fmt, path, option in files:
        try:
            formats.write(report, fmt, path)
        except InputError as exc:
            say(f"drift: {option} {path} not written: {exc.message}")
            written = False
    return written


def publish(
    report: DriftReport,
    check: str,
    label: str,
    files: list[tuple[str, Path, str]],
    *,
    record: bool = True,
    history: Path | str | None = None,
    shard: str | None = None,
    say: Say = _stderr,
) -> bool:
    """Write `files` ((format, path, option) each) and, unless `record` is False
    (--no-history), record the run in `history` (None: the default one) around them,
    as the run of `shard` ("K/N", --shard) when given.
    False when a file could not be written; a broken history never raises."""
    store = _open(history, say) if record else None
    if store is not None:
        try:
            store.begin(report, check, label, shard)
        except (*ERRORS, OSError) as exc:
            say(f"drift: history {store.path} unusable, this run is not recorded: "
                f"{_reason(exc)}")  # fmt: skip
            store.db.close()
            store = None
    written = write_files(report, files, say)
    if store is not None:
        try:
            store.commit()
        except (*ERRORS, OSError) as exc:
            say(f"drift: history {store.path}: run {report.run_id} was not recorded "
                f"({_reason(exc)}); the reports written name it")  # fmt: skip
        finally:
            store.db.close()
    return written


def _open(path: Path | str | None, say: Say) -> History | None:
    try:
        return History(path)
    except HistoryUnusable as exc:
        say(f"drift: {exc.message}: this run is not recorded")
    return None
