"""Connection retries: back off on transient network errors, never on auth or host keys."""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import tenacity

from vnetctl.transport.base import AuthFailed, HostKeyRefused

T = TypeVar("T")

SSH_LOG = logging.getLogger("vnetctl.ssh")
TRANSIENT_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ETIMEDOUT, errno.EHOSTUNREACH}


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, AuthFailed | HostKeyRefused):
        return False
    if isinstance(exc, ConnectionRefusedError | ConnectionResetError | TimeoutError):
        return True
    if isinstance(exc, socket.timeout):
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


def _said(host: str) -> Callable[[tenacity.RetryCallState], None]:
    """-vvv (vnetctl.output.verbosity): each attempt that failed and is retried."""

    def said(state: tenacity.RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        SSH_LOG.info("[%s] SSH attempt %d failed (%s): retrying in %.1f s", host,
                     state.attempt_number, failure or "?", wait)  # fmt: skip

    return said


async def with_retries(connect: Callable[[], Awaitable[T]], retries: int, host: str = "") -> T:
    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=tenacity.wait_exponential_jitter(multiplier=0.5, max=4.0, jitter=0.25),
        retry=tenacity.retry_if_exception(is_transient),
        reraise=True,
        before_sleep=_said(host),
    )
    return await retrying(connect)
