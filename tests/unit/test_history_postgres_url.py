"""`--history postgresql://...`: how the URL becomes a connection (a unix socket as libpq
gives it, the password from the URL, PGPASSWORD or ~/.pgpass) and how it is shown: with
its password as ***, never in a schedule. The server side is
tests/integration/test_history_postgres.py."""

from __future__ import annotations

import pytest

from vnetctl.cli.main import main
from vnetctl.drift.postgres import StoreError, connect_args, is_url, redacted
from vnetctl.secrets import redact

SECRET = "pa:ss@w0rd-long"
URL = "postgresql://drift:pa%3Ass%40w0rd-long@db.example:5433/fleet"


@pytest.fixture(autouse=True)
def no_password_around(monkeypatch, tmp_path):
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.delenv("PGUSER", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


def test_a_url_is_shown_with_its_password_as_stars():
    assert redacted(URL) == "postgresql://drift:***@db.example:5433/fleet"
    assert redacted("postgresql://drift@db/fleet") == "postgresql://drift@db/fleet"
    assert is_url(URL) and is_url("postgres://x@y/z") and not is_url("/var/lib/h.sqlite")


def test_the_urls_password_is_used_and_becomes_a_secret_of_the_run():
    args = connect_args(URL)
    assert args == {"user": "drift", "database": "fleet", "password": "pa:ss@w0rd-long",
                    "timeout": 10, "host": "db.example", "port": 5433}  # fmt: skip
    assert redact(f"error near {SECRET}") == "error near ***"


def test_a_unix_socket_and_pgpassword(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "from-the-environment")
    args = connect_args("postgresql://drift@/fleet?host=/run/pg")
    assert args["unix_sock"] == "/run/pg/.s.PGSQL.5432" and "host" not in args
    assert args["password"] == "from-the-environment"


def test_pgpass_first_matching_line_wins_with_wildcards_and_escapes(monkeypatch, tmp_path):
    pgpass = tmp_path / "pgpass"
    pgpass.write_text("# comment\n\ndb.example:5433:other:drift:wrong\n"
                      "db.example:*:fleet:drift:a\\:b\ndb.example:*:*:*:later\n")  # fmt: skip
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    assert connect_args("postgresql://drift@db.example:5433/fleet")["password"] == "a:b"
    assert connect_args("postgresql://x@db.example/y")["password"] == "later"
    assert connect_args("postgresql://x@elsewhere/y")["password"] is None


def test_a_url_without_a_user_is_refused():
    with pytest.raises(StoreError, match="no user"):
        connect_args("postgresql://db.example/fleet")


def test_a_url_with_a_password_never_goes_into_a_schedule(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "site.yml").write_text(
        "- hosts: all\n  tasks:\n    - link: {name: eth2, mtu: 9000}\n"
    )
    (tmp_path / "inv.yml").write_text("all:\n  hosts:\n    h1: {ansible_host: 192.0.2.1}\n")
    url = "postgresql://drift:another-Secret-1@db/fleet"
    units = str(tmp_path / "units")
    code = main(["drift", "schedule", "install", "--systemd", "--name", "s", "--unit-dir", units,
                 "site.yml", "-i", "inv.yml", "--history", url])  # fmt: skip
    assert code == 1 and not (tmp_path / "units").exists()
    err = capsys.readouterr().err
    assert "--history" in err and "another-Secret-1" not in err
