"""A command run on a terminal of its own, with a person typing at its prompts: what
`--ask-vault-pass` and `-K` need (getpass reads /dev/tty, the controlling terminal)."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time

_STYLES = re.compile(r"\x1b\[[0-9;]*m")


def under_a_terminal(
    argv: list[str], answers: list[tuple[str, str]], timeout: float = 120
) -> tuple[int, str]:
    """`argv` run under script(1), a pseudo-terminal its controlling terminal. For each
    (prompt, typed) in order: once `prompt` shows, `typed` is typed there (getpass
    discards what was typed before its prompt). Returns the exit code and everything
    the terminal showed."""
    command = " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)
    env = dict(os.environ, COLUMNS="200", NO_COLOR="1")
    pipes = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    with subprocess.Popen(["script", "-qec", command, "/dev/null"], env=env, **pipes) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        seen, start = b"", 0
        deadline = time.monotonic() + timeout
        for prompt, typed in answers:
            while prompt.encode() not in seen[start:] and time.monotonic() < deadline:
                ready, _, _ = select.select([proc.stdout], [], [], 1.0)
                chunk = os.read(proc.stdout.fileno(), 4096) if ready else b""
                if ready and not chunk:
                    break  # it ended before asking
                seen += chunk
            start = len(seen)
            proc.stdin.write(typed.encode())
            proc.stdin.flush()
        rest, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    text = (seen + rest).decode(errors="replace").replace("\r\n", "\n")
    return proc.returncode, _STYLES.sub("", text)  # a terminal gets bold even with NO_COLOR
