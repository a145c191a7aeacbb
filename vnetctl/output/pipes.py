"""When the reader of our output goes away (`vnetctl run ... | head -3`).

A standard Unix tool writing into a pipe whose reader has exited is ended by SIGPIPE,
silently; its shell sees status 141. Python ignores SIGPIPE (so that a socket a host
closes is an error, not death) and raises BrokenPipeError instead, which would surface
as a traceback, or as "Task exception was never retrieved" inside the event loop.
Every write to stdout or stderr ends up here instead: vnetctl ends as such a tool
does. Hosts are safe when the controller ends abruptly: each remote process finishes
the task in flight at EOF on its stdin and starts no other (see README, "When things go
wrong").
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

from rich.console import Console


def end_as_sigpipe() -> NoReturn:
    """End the process as SIGPIPE ends a Unix tool: nothing more written, status 141."""
    try:  # whatever is still buffered must not be flushed (and fail) on the way out
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):
        pass
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGPIPE)
    os._exit(128 + signal.SIGPIPE)  # not reached: SIGPIPE's default action ends us


class PipeAwareConsole(Console):
    """A rich Console that ends vnetctl as SIGPIPE would when its reader went away
    (rich's own default raises SystemExit(1), which an asyncio task would swallow)."""

    def on_broken_pipe(self) -> None:
        end_as_sigpipe()
