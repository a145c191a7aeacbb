"""A gzip-compressed cpio archive in the "newc" format the kernel unpacks as an initramfs.

Written here rather than by cpio(1) so that the same inputs give the same bytes: every
timestamp is 0, every owner root, inode numbers are counted, and the entries keep the
order they are given in (a directory before what it holds).
"""

from __future__ import annotations

import gzip
import stat
from dataclasses import dataclass

MAGIC = b"070701"
TRAILER = "TRAILER!!!"


@dataclass(frozen=True)
class Entry:
    """One archive member: `mode` holds the type bits (stat.S_IFDIR...) and permissions;
    a symlink's data is its target; a device node has `rdev` (major, minor)."""

    path: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def directory(path: str) -> Entry:
    return Entry(path, stat.S_IFDIR | 0o755)


def file(path: str, data: bytes, executable: bool = False) -> Entry:
    return Entry(path, stat.S_IFREG | (0o755 if executable else 0o644), data)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, stat.S_IFLNK | 0o777, target.encode())


def char_device(path: str, major: int, minor: int) -> Entry:
    return Entry(path, stat.S_IFCHR | 0o600, rdev=(major, minor))


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _member(ino: int, entry: Entry) -> bytes:
    name = entry.path.lstrip("/").encode() + b"\0"
    nlink = 2 if stat.S_ISDIR(entry.mode) else 1
    fields = (ino, entry.mode, 0, 0, nlink, 0, len(entry.data), 0, 0, *entry.rdev, len(name), 0)
    header = MAGIC + b"".join(b"%08X" % value for value in fields)
    head = header + name
    return head + _pad(len(head)) + entry.data + _pad(len(entry.data))


def archive(entries: list[Entry]) -> bytes:
    """The uncompressed archive, trailer included."""
    members = [_member(ino, entry) for ino, entry in enumerate(entries, start=1)]
    members.append(_member(0, Entry(TRAILER, 0)))
    return b"".join(members)


def initramfs(entries: list[Entry]) -> bytes:
    """The archive gzip-compressed with no timestamp or file name in the header."""
    return gzip.compress(archive(entries), compresslevel=9, mtime=0)
