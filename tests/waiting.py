"""Bounded waiting for integration tests: poll until something holds, or fail with what was seen.

Tests against a real cluster observe an operator that converges asynchronously. These helpers
poll a function with a deadline, never forever, and on failure say what they waited for and the
last value (or exception) they saw, so a failing test explains itself.

    run = wait_for(lambda: ready_run(name), timeout=30, message="run Ready")
    holds_for(lambda: rv() == before, duration=5, message="no write after restart")
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

DEFAULT_INTERVAL = 0.2


class WaitTimeoutError(AssertionError):
    """What a test waited for did not happen in time (an assertion failure, not an error)."""


def wait_for(
    fn: Callable[[], T],
    timeout: float = 30.0,
    message: str = "a truthy value",
    *,
    interval: float = DEFAULT_INTERVAL,
    ignore: tuple[type[Exception], ...] = (),
) -> T:
    """Call `fn` until it returns a truthy value and return that value.

    Exceptions of the types in `ignore` count as "not yet" (e.g. KeyError while a field is
    still absent); others propagate at once. After `timeout` seconds, raises WaitTimeoutError naming
    `message` and the last value or exception seen.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = fn()
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeoutError(
                f"timed out after {timeout:g}s waiting for {message}; last seen: {last!r}"
            )
        time.sleep(interval)


def holds_for(
    fn: Callable[[], object],
    duration: float,
    message: str = "the condition",
    *,
    interval: float = DEFAULT_INTERVAL,
) -> None:
    """Call `fn` for `duration` seconds; raise WaitTimeoutError as soon as it returns a falsy value.

    For the negative cases: nothing is rewritten, a run stays Running.
    """
    deadline = time.monotonic() + duration
    while True:
        value = fn()
        if not value:
            raise WaitTimeoutError(f"{message} stopped holding; last seen: {value!r}")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
