"""asyncssh, imported without the warnings its import makes and we cannot act on.

asyncssh 2.24 names cryptography's DSA classes in type annotations at import time, and
cryptography 48+ warns about DSA on every such access (CryptographyDeprecationWarning, a
UserWarning: `-W ignore::DeprecationWarning` does not hide it). vnetctl never offers or
accepts DSA keys; the five warnings would be printed by every command that connects.
Only that message, from asyncssh's import, is ignored: a warning asyncssh gives at run
time, or any other, still shows (and fails the tests, pyproject.toml's filterwarnings).
Import asyncssh from here, never directly.

Also what every asyncssh client of this project shares (the transport and the
benchmark's floor): the cipher preference, and the known_hosts and key files parsed once
per content rather than per connection.
"""

import functools
import os
import warnings

from cryptography.utils import CryptographyDeprecationWarning

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore",
        message="DSA is deprecated",
        category=CryptographyDeprecationWarning,
        module=r"asyncssh\.",
    )
    import asyncssh

__all__ = ["CIPHERS", "asyncssh", "client_keys", "known_hosts"]

# asyncssh's own list, AES-GCM first: ~2 us of controller CPU a packet, against ~13 us
# for chacha20-poly1305 (a cipher context made per packet); OpenSSH offers all of them
CIPHERS = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
           "aes256-ctr", "aes192-ctr", "aes128-ctr"]  # fmt: skip


def known_hosts(path: str) -> "asyncssh.SSHKnownHosts":
    """The file parsed once while unchanged (a key accepted is written to it): asyncssh
    given the path parses it at every connection, ~2 ms a host at 100 entries and in
    proportion to the entries after. OSError when it cannot be read."""
    seen = os.stat(path)
    return _known_hosts(path, seen.st_mtime_ns, seen.st_size)


@functools.lru_cache(maxsize=8)
def _known_hosts(path: str, _mtime_ns: int, _size: int) -> "asyncssh.SSHKnownHosts":
    return asyncssh.read_known_hosts(path)


def client_keys(path: str) -> list:
    """The key (and its `-cert.pub` certificate, where there is one) loaded once while
    neither changes (a long `stats --every` outlives a short-lived certificate), as
    asyncssh would load them from the path at every connection."""
    return _client_keys(path, _version(path), _version(path + "-cert.pub"))


def _version(path: str) -> tuple[int, int] | None:
    try:
        seen = os.stat(path)
    except FileNotFoundError:
        return None
    return seen.st_mtime_ns, seen.st_size


@functools.lru_cache(maxsize=8)
def _client_keys(path: str, _key: tuple | None, _cert: tuple | None) -> list:
    if _key is None:
        raise FileNotFoundError(path)
    return asyncssh.load_keypairs([path])
