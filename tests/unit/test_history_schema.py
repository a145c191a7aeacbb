"""`vnetctl drift history --schema`: the one tool that says which schema a history has,
after opening it migrated it (SQLite here; PostgreSQL in
tests/integration/test_history_postgres.py)."""

from __future__ import annotations

import sqlite3

from vnetctl.cli.main import main
from vnetctl.drift.history import SCHEMA_VERSION, TABLES


def test_a_new_an_old_and_a_current_history(tmp_path, capsys):
    new, old = tmp_path / "new.sqlite", tmp_path / "old.sqlite"
    assert main(["drift", "history", "--history", str(new), "--schema"]) == 0
    assert "no drift history at" in capsys.readouterr().out and not new.exists()
    db = sqlite3.connect(old)
    version_2 = TABLES.replace(",\n    shard TEXT", "")
    db.executescript(version_2.replace("    resources INTEGER NOT NULL DEFAULT 0,\n", ""))
    db.execute("PRAGMA user_version=2")
    db.commit()
    db.close()
    assert main(["drift", "history", "--history", str(old), "--schema"]) == 0
    assert f"schema {SCHEMA_VERSION} (migrated from 2)" in capsys.readouterr().out
    assert main(["drift", "history", "--history", str(old), "--schema"]) == 0
    assert f"schema {SCHEMA_VERSION} (current)" in capsys.readouterr().out
    with sqlite3.connect(old) as check:
        columns = [row[1] for row in check.execute("PRAGMA table_info(runs)")]
    assert "shard" in columns
