"""A full disk for host-side code, without root: an `os` module whose writes run out of
room after a given number of bytes (a short write, then ENOSPC, as the kernel does)."""

from __future__ import annotations

import os


class FullDisk:
    """Patched in for the `os` of the module under test: `room` bytes are left."""

    def __init__(self, room: int):
        self.room = room

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        if not self.room:
            raise OSError(28, "No space left on device")
        wrote = os.write(fd, bytes(data[: self.room]))
        self.room -= wrote
        return wrote
