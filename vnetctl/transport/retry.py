"""Connection retries: back off on transient network errors, never on auth or host keys."""

from __future__ import annotations

import errno
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import tenacity

from vnetctl.transport.base import AuthFailed, HostKeyRefused

T = TypeVar("T")

TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, AuthFailed | HostKeyRefused):
        return False
    if isinstance(exc, ConnectionRefusedError | ConnectionResetError | TimeoutError):
        return True
    if isinstance(exc, socket.timeout):
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


async def with_retries(connect: Callable[[], Awaitable[T]], retries: int) -> T:
    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=tenacity.wait_exponential_jitter(multiplier=0.5, max=4.0, jitter=0.25),
        retry=tenacity.retry_if_exception(is_transient),
        reraise=True,
    )
    return await retrying(connect)
