"""Choosing the next version number of a model, safely when several clients register at once.

There is no counter to increment: the API server's name uniqueness is the lock. A
ModelVersion must be named ``<model>-v<version>``, so creating ``churn-v4`` fails with 409
Conflict when another client created it first. `create_next_version` starts from one more
than the highest version it can see and, on each conflict, moves to the next number (or past
the highest one visible by then), for a bounded number of attempts. Numbers never skip: a
number is taken only by a successful create, and each attempt picks the lowest number above
every version seen. A version that was deleted may be given again only if it was the highest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from modelplane.sdk.errors import ConflictError, RegistrationError

T = TypeVar("T")

DEFAULT_ATTEMPTS = 100


def next_version(existing: Iterable[int]) -> int:
    """One more than the highest existing version; 1 for a new model."""
    return max(existing, default=0) + 1


def create_next_version(
    list_versions: Callable[[], Iterable[int]],
    create: Callable[[int], T],
    *,
    model: str,
    max_attempts: int = DEFAULT_ATTEMPTS,
) -> T:
    """Create the next free version with ``create(version)``; a `ConflictError` from it means
    the number was taken. Raises `RegistrationError` after ``max_attempts`` conflicts."""
    version = next_version(list_versions())
    for _ in range(max_attempts):
        try:
            return create(version)
        except ConflictError:
            version = max(version + 1, next_version(list_versions()))
    raise RegistrationError(
        f"could not register a version of model {model!r}: {max_attempts} attempts each found "
        "the version number taken by a concurrent registration"
    )
