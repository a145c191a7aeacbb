"""asyncssh, imported without the warnings its import makes and we cannot act on.

asyncssh 2.24 names cryptography's DSA classes in type annotations at import time, and
cryptography 48+ warns about DSA on every such access (CryptographyDeprecationWarning, a
UserWarning: `-W ignore::DeprecationWarning` does not hide it). vnetctl never offers or
accepts DSA keys; the five warnings would be printed by every command that connects.
Only that message, from asyncssh's import, is ignored: a warning asyncssh gives at run
time, or any other, still shows (and fails the tests, pyproject.toml's filterwarnings).
Import asyncssh from here, never directly.
"""

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

__all__ = ["asyncssh"]
