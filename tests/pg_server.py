"""A PostgreSQL server of a test's own, from Debian's packages (/usr/lib/postgresql/N/bin):
initdb into a fresh directory, listening on a unix socket in it only (no TCP port), with
password authentication, stopped by its own data directory (pg_ctl -D ... stop) and the
directory removed afterwards.

PostgreSQL refuses to run as root: run as root, the server runs as the `postgres` user
the package made (runuser), in a directory of its own under /tmp that the user can reach
(pytest's tmp_path is root's alone)."""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PASSWORD = "s3cret-Pg-pass"  # the test's, shown nowhere vnetctl writes (asserted)
USER = "vnetctl"


def bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    return found[-1].parent if found else None


def skip_reason() -> str | None:
    if bin_dir() is None:
        return "PostgreSQL is not installed (scripts/setup.sh installs it)"
    if os.geteuid() == 0 and not _has_user("postgres"):
        return "run as root and no `postgres` user to run the server as"
    return None


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass
class PgServer:
    folder: Path
    port: int = 5432

    @property
    def socket_dir(self) -> str:
        return str(self.folder)

    def url(self, password: bool = False, database: str = "vnetctl") -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@/{database}?host={self.folder}"


def _as_server_user(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def pg_server() -> Iterator[PgServer]:
    pg = bin_dir()
    assert pg is not None
    folder = Path(tempfile.mkdtemp(prefix="vnetctl-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    server = PgServer(folder)

    def run(*argv: str) -> None:
        subprocess.run(_as_server_user([str(pg / argv[0]), *argv[1:]]), capture_output=True,
                       text=True, timeout=120, check=True)  # fmt: skip

    superuser = "postgres" if os.geteuid() == 0 else getpass.getuser()
    started = False
    try:
        pwfile = folder / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        run("initdb", "-D", str(data), "-U", superuser, "--auth=scram-sha-256",
            f"--pwfile={pwfile}", "--no-sync")  # fmt: skip
        pwfile.unlink()
        options = f"-c listen_addresses='' -c unix_socket_directories={folder} -c fsync=off"
        run("pg_ctl", "-D", str(data), "-o", options, "-w", "-t", "60", "-l",
            str(folder / "log"), "start")  # fmt: skip
        started = True
        env = dict(os.environ, PGPASSWORD=PASSWORD)
        for sql in (f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'",
                    f"CREATE DATABASE vnetctl OWNER {USER}"):  # fmt: skip
            subprocess.run(_as_server_user([str(pg / "psql"), "-h", str(folder), "-U",
                                            superuser, "-d", "postgres", "-c", sql]),
                           env=env, capture_output=True, text=True, timeout=60,
                           check=True)  # fmt: skip
        yield server
    finally:
        if started:  # by its own data directory; a test may have stopped it already
            subprocess.run(_as_server_user([str(pg / "pg_ctl"), "-D", str(data), "-m", "fast",
                                            "-w", "-t", "60", "stop"]),
                           capture_output=True, timeout=120, check=False)  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)


def stop(server: PgServer) -> None:
    """Stop the server (a test of a history whose server is down)."""
    pg = bin_dir()
    subprocess.run(_as_server_user([str(pg / "pg_ctl"), "-D", str(server.folder / "data"), "-m",
                                    "fast", "-w", "stop"]), capture_output=True, timeout=60,
                   check=True)  # fmt: skip
