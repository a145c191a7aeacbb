"""The relay's clock (vnetctl.lab.relay): callbacks on the event loop at due times, to
within about 0.1 ms, where the event loop's own timers are late by up to 2 ms."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable


class Alarm:
    """A callback for the event loop at a due time; cancel() before it runs stops it."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]):
        self.callback, self.cancelled = callback, False

    def cancel(self) -> None:
        self.cancelled = True

    def fire(self) -> None:
        if not self.cancelled:
            self.callback()


class Clock:
    """Calls back on the event loop at due times, to within about 0.1 ms.

    The event loop's own timers wait in epoll, which counts whole milliseconds: a
    12.5 ms delay woke 1.7 ms late on this machine, so RTT 25 became 28.6. Here one
    thread sleeps with the kernel's nanosecond timers and hands each due callback to
    the loop; the loop's clock is the same (time.monotonic).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.heap: list[tuple[float, int, Alarm]] = []
        self.order = itertools.count()
        self.wake = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, name="relay-clock", daemon=True)
        self.thread.start()

    def call_at(self, due: float, callback: Callable[[], None]) -> Alarm:
        alarm = Alarm(callback)
        if due <= time.monotonic():
            self.loop.call_soon(alarm.fire)
            return alarm
        with self.wake:
            heapq.heappush(self.heap, (due, next(self.order), alarm))
            self.wake.notify()
        return alarm

    def _run(self) -> None:
        with self.wake:
            while not self.stopped:
                wait = self.heap[0][0] - time.monotonic() if self.heap else None
                if wait is None or wait > 0:
                    self.wake.wait(wait)
                    continue
                alarm = heapq.heappop(self.heap)[2]
                if not alarm.cancelled:
                    try:
                        self.loop.call_soon_threadsafe(alarm.fire)
                    except RuntimeError:  # the loop is closed: nothing is waiting
                        return

    def stop(self) -> None:
        with self.wake:
            self.stopped = True
            self.wake.notify()
        self.thread.join(timeout=5)
