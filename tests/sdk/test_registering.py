"""Version numbers: the next free one, distinct and gap-free under concurrent registration."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelplane.sdk.errors import ConflictError, RegistrationError
from modelplane.sdk.registering import create_next_version, next_version


class FakeServer:
    """Names are unique: creating a taken version raises ConflictError, as the API server."""

    def __init__(self, existing: tuple[int, ...] = ()) -> None:
        self.versions = set(existing)
        self.lock = threading.Lock()

    def list(self) -> list[int]:
        with self.lock:
            return sorted(self.versions)

    def create(self, version: int) -> int:
        with self.lock:
            if version in self.versions:
                raise ConflictError(409, "AlreadyExists", f"m-v{version} already exists")
            self.versions.add(version)
        return version


def test_next_version_follows_the_highest() -> None:
    assert next_version([]) == 1
    assert next_version([1, 2, 7]) == 8


def test_concurrent_registrations_get_distinct_consecutive_versions() -> None:
    server = FakeServer(existing=(1, 2))
    barrier = threading.Barrier(16)

    def register(_: int) -> int:
        barrier.wait()
        return create_next_version(server.list, server.create, model="m")

    with ThreadPoolExecutor(16) as pool:
        versions = sorted(pool.map(register, range(16)))
    assert versions == list(range(3, 19))


def test_a_conflict_skips_past_versions_created_meanwhile() -> None:
    server = FakeServer()
    tried: list[int] = []

    def create(version: int) -> int:
        tried.append(version)
        if len(tried) == 1:
            server.versions.update({1, 2, 3, 4})  # others registered four versions meanwhile
            raise ConflictError(409, "AlreadyExists", "taken")
        return server.create(version)

    assert create_next_version(server.list, create, model="m") == 5
    assert tried == [1, 5]


def test_gives_up_after_a_bounded_number_of_conflicts() -> None:
    def always_taken(version: int) -> int:
        raise ConflictError(409, "AlreadyExists", f"v{version} taken")

    with pytest.raises(RegistrationError, match="3 attempts"):
        create_next_version(list, always_taken, model="m", max_attempts=3)


def test_other_errors_are_not_retried() -> None:
    calls: list[int] = []

    def invalid(version: int) -> int:
        calls.append(version)
        raise ValueError("bad spec")

    with pytest.raises(ValueError, match="bad spec"):
        create_next_version(list, invalid, model="m")
    assert calls == [1]
