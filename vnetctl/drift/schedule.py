"""Running the drift check on a schedule: a foreground loop (containers, supervisors),
a systemd service + timer, or a cron line.

Unit files and cron lines are readable by every user, and the scheduled command line is
shown by `ps` to every user: a secret never goes into them (`refuse_secrets`), and every
value written into them is checked or escaped for what reads it (systemd's specifiers
and quotes, cron's `%`; a line break or another control character is refused)."""

from __future__ import annotations

import random
import re
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from vnetctl.drift.files import write_atomic
from vnetctl.durations import parse_duration
from vnetctl.errors import InputError
from vnetctl.playbook.extra_vars import parse_extra_vars_one
from vnetctl.secrets import MARK_VAR, is_secret_name, marked_names, redact

MIN_INTERVAL = 10
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
SYSTEMD_DIR = Path("/etc/systemd/system")
# where systemd looks for system units (systemd.unit(5)): units elsewhere must be linked
SYSTEMD_SEARCH_PATH = (
    SYSTEMD_DIR,
    Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)
CRON_DIR = Path("/etc/cron.d")


def parse_interval(text: str) -> int:
    """'30s', '15m', '1h', '1d', '1h30m' -> whole seconds, at least MIN_INTERVAL."""
    try:
        seconds = parse_duration(text, unit=True)
    except ValueError as exc:
        raise InputError(f"interval: {exc}") from None
    if seconds != int(seconds):
        raise InputError(f"interval {text!r}: a whole number of seconds (as systemd and cron)")
    if seconds < MIN_INTERVAL:
        raise InputError(f"interval {text!r}: at least {MIN_INTERVAL}s between checks")
    return int(seconds)


def install_signal_stop() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the loop finishes the current check, then stops."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def run_every(
    interval: float,
    job: Callable[[], int],
    *,
    count: int | None = None,
    jitter: float = 0.1,
    stop: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    rand: Callable[[], float] = random.random,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Run `job` every `interval` seconds (± jitter × interval, so a fleet of checkers does
    not hit hosts in step), never two at once, until `count` runs or `stop` is set.
    Returns the last run's exit code."""
    stop = stop or threading.Event()
    say = progress or (lambda _message: None)
    runs, code = 0, 0
    while not stop.is_set() and (count is None or runs < count):
        started = clock()
        code = job()
        runs += 1
        if stop.is_set() or (count is not None and runs >= count):
            break
        wait = interval * (1 + jitter * (2 * rand() - 1)) - (clock() - started)
        if wait <= 0:
            say(f"drift: the check took longer than {interval:.0f}s; starting the next now")
            continue
        say(f"drift: next check in {wait:.0f}s")
        stop.wait(wait)
    return code


def unit_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InputError(f"schedule name {name!r}: expected 1-40 characters a-z, 0-9 and '-'")
    return f"vnetctl-drift-{name}"


SECRET_HINT = (
    "unit files and cron lines are readable by every user, and the scheduled command line "
    "is shown by ps: put the secret in a vars file only the schedule's user can read "
    "(chmod 600 FILE) and give -e @FILE, or in the inventory's host_vars/group_vars"
)


def refuse_secrets(tokens: list[str], extra_vars: list[str], marks: Iterable[Any]) -> None:
    """InputError when the check's arguments carry a secret: an `-e` variable that is
    secret by its name or marked (`vnetctl_secret_vars` in -e itself, or its values in
    `marks`, e.g. each inventory host's), or any argument holding the value of a
    secret the planning read. The message names the variable or the option, never the
    value."""
    inline = [v for v in extra_vars if not v.strip().startswith("@")]
    parsed = [parse_extra_vars_one(v) for v in inline]  # planned already: they parse
    marked: set[str] = set()
    for mark in [*marks, *(values.get(MARK_VAR) for values in parsed)]:
        marked |= marked_names(mark) or set()
    for values in parsed:
        secret = sorted(k for k in values if k != MARK_VAR and (is_secret_name(k) or k in marked))
        if secret:
            raise InputError(f"-e {', '.join(secret)}: a secret cannot go into a schedule: "
                             f"{SECRET_HINT}")  # fmt: skip
    for i, token in enumerate(tokens):
        if redact(token) != token:
            before = tokens[i - 1] if i else ""
            shown = before if before.startswith("-") else "an argument"
            raise InputError(f"{shown} holds the value of a secret variable, which cannot go "
                             f"into a schedule: {SECRET_HINT}")  # fmt: skip


def _refuse_unprintable(values: list[str], where: str) -> None:
    """A line break would end the line (and start one of its own: an injected unit
    setting or cron job); other control characters have no business there either."""
    for value in values:
        bad = next((c for c in value if not c.isprintable()), None)
        if bad is not None:
            raise InputError(f"{value!r} cannot go into {where}: it holds {bad!r} (a line "
                             "break or another control character)")  # fmt: skip


def _systemd_path(path: Path) -> str:
    """A WorkingDirectory= value: systemd expands %-specifiers in it and reads it whole
    (no quotes), but strips blanks at either end and joins a line ending in '\\'."""
    text = str(path)
    _refuse_unprintable([text], "a systemd unit")
    if not path.is_absolute() or text != text.strip() or text.endswith("\\"):
        raise InputError(f"working directory {text!r} cannot go into a systemd unit: it "
                         "must be absolute, without blanks or a backslash at its end")  # fmt: skip
    return text.replace("%", "%%")


def _systemd_quote(arg: str) -> str:
    """One ExecStart word: systemd expands %-specifiers and $VARIABLES in it, and reads
    quotes and backslashes; each is written so that the word reads back as `arg`."""
    escaped = arg.replace("%", "%%").replace("$", "$$")
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./$-]+", escaped):
        return escaped
    escaped = escaped.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def systemd_units(
    name: str, argv: list[str], every_seconds: int, *, workdir: Path
) -> dict[str, str]:
    unit = unit_name(name)
    _refuse_unprintable(argv, "a systemd unit")
    command = " ".join(_systemd_quote(a) for a in argv)
    directory = _systemd_path(workdir)
    spread = max(1, every_seconds // 10)
    service = f"""\
# Written by `vnetctl drift schedule install`; `vnetctl drift schedule remove` deletes it.
[Unit]
Description=vnetctl drift check {name}
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
WorkingDirectory={directory}
ExecStart={command}
# exit 2 means drift was found and reported: the check itself worked
SuccessExitStatus=2
Nice=10
IOSchedulingClass=idle
"""
    timer = f"""\
# Written by `vnetctl drift schedule install`; `vnetctl drift schedule remove` deletes it.
[Unit]
Description=vnetctl drift check {name} every {every_seconds}s

[Timer]
OnBootSec=2min
OnUnitActiveSec={every_seconds}s
RandomizedDelaySec={spread}s
AccuracySec=1s
Unit={unit}.service

[Install]
WantedBy=timers.target
"""
    return {f"{unit}.service": service, f"{unit}.timer": timer}


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir()


def install_systemd(
    name: str,
    argv: list[str],
    every_seconds: int,
    *,
    workdir: Path,
    unit_dir: Path = SYSTEMD_DIR,
) -> list[Path]:
    written = []
    unit_dir.mkdir(parents=True, exist_ok=True)  # the directory systemd reads: ours to make
    for filename, text in systemd_units(name, argv, every_seconds, workdir=workdir).items():
        written.append(write_atomic(unit_dir / filename, text))
    if systemd_running() and unit_dir == SYSTEMD_DIR:
        _systemctl("daemon-reload")
        _systemctl("enable", "--now", f"{unit_name(name)}.timer")
    return written


def remove_systemd(name: str, unit_dir: Path = SYSTEMD_DIR) -> list[Path]:
    unit = unit_name(name)
    if systemd_running() and unit_dir == SYSTEMD_DIR:
        _systemctl("disable", "--now", f"{unit}.timer", check=False)
    removed = []
    for suffix in (".timer", ".service"):
        path = unit_dir / f"{unit}{suffix}"
        if path.exists():
            path.unlink()
            removed.append(path)
    if removed and systemd_running() and unit_dir == SYSTEMD_DIR:
        _systemctl("daemon-reload")
    return removed


def _systemctl(*args: str, check: bool = True) -> None:
    subprocess.run(["systemctl", *args], check=check, timeout=60, capture_output=True)


def cron_schedule(every_seconds: int) -> str:
    minutes, hours = every_seconds / 60, every_seconds / 3600
    if every_seconds % 60 == 0 and minutes < 60 and 60 % minutes == 0:
        return f"*/{int(minutes)} * * * *" if minutes > 1 else "* * * * *"
    if every_seconds % 3600 == 0 and hours < 24 and 24 % hours == 0:
        return f"0 */{int(hours)} * * *"
    if every_seconds == 86400:
        return "0 0 * * *"
    raise InputError(
        f"cron cannot run something every {every_seconds}s: use minutes that divide 60, "
        "hours that divide 24, or 1d (or --systemd, which can)"
    )


def cron_text(name: str, argv: list[str], every_seconds: int, *, workdir: Path, user: str) -> str:
    log = f"/var/log/{unit_name(name)}.log"
    _refuse_unprintable([str(workdir), *argv], "a cron line")
    for value in (str(workdir), *argv):
        if "\\%" in value:  # cron turns \% into %: this backslash could not be kept
            raise InputError(f"{value!r} cannot go into a cron line: it holds '\\%'")
    command = f"cd {shlex.quote(str(workdir))} && {shlex.join(argv)} >>{log} 2>&1"
    command = command.replace("%", "\\%")  # cron reads an unescaped % as a newline
    return (
        "# Written by `vnetctl drift schedule install`; "
        "`vnetctl drift schedule remove` deletes it.\n"
        "SHELL=/bin/sh\n"
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        f"{cron_schedule(every_seconds)} {user} {command}\n"
    )


def install_cron(
    name: str,
    argv: list[str],
    every_seconds: int,
    *,
    workdir: Path,
    cron_dir: Path = CRON_DIR,
    user: str = "root",
) -> Path:
    text = cron_text(name, argv, every_seconds, workdir=workdir, user=user)
    cron_dir.mkdir(parents=True, exist_ok=True)  # the directory cron reads: ours to make
    return write_atomic(cron_dir / unit_name(name), text)


def remove_cron(name: str, cron_dir: Path = CRON_DIR) -> list[Path]:
    path = cron_dir / unit_name(name)
    if not path.exists():
        return []
    path.unlink()
    return [path]
