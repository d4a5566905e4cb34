"""kopf over thousands of objects: quiet readiness toggles, a tuned collector, trimmed heaps."""

from __future__ import annotations

import asyncio
import gc
import platform
from collections.abc import Iterator
from typing import Any

import pytest
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import api, watching

from modelplane.operator import kopfscale
from modelplane.operator.kopfscale import QuietToggleSet


def test_the_operator_builds_quiet_toggle_sets_and_watches_lean_objects() -> None:
    kopfscale.install()
    kopfscale.install()
    assert aiotoggles.ToggleSet is QuietToggleSet
    assert getattr(watching.infinite_watch, "modelplane_lean", False)


@pytest.fixture
def collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_collector_is_tuned_at_start(collector: None) -> None:
    kopfscale.tune_garbage_collector()
    assert gc.get_threshold() == kopfscale.GC_THRESHOLDS
    assert gc.get_freeze_count() > 0


def test_waiters_wake_once_when_the_last_object_is_indexed() -> None:
    """Each object indexed and waiting, as kopf does at start: wake-ups grow linearly."""
    objects = 300
    checks = 0

    async def scenario() -> None:
        nonlocal checks
        toggles = QuietToggleSet(all)
        listing = await toggles.make_toggle(name="listing")
        mine = [await toggles.make_toggle(name=str(i)) for i in range(objects)]
        is_on = toggles.is_on

        def counted() -> bool:
            nonlocal checks
            checks += 1
            return is_on()

        toggles.is_on = counted  # type: ignore[method-assign]

        async def worker(turns: int, toggle: aiotoggles.Toggle) -> None:
            for _ in range(turns):  # indexed one after the other, as thread hops spread them
                await asyncio.sleep(0)
            await toggles.drop_toggle(toggle)
            await toggles.wait_for(True)

        tasks = [asyncio.create_task(worker(i, t)) for i, t in enumerate(mine)]
        for _ in range(objects + 5):
            await asyncio.sleep(0)
        assert not any(t.done() for t in tasks)
        await toggles.drop_toggle(listing)
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)

    asyncio.run(scenario())
    # kopf's own ToggleSet checks about objects²/2 (45,000) times here.
    assert checks < 10 * objects


def test_a_set_that_turns_off_again_wakes_its_waiters() -> None:
    async def scenario() -> None:
        toggles = QuietToggleSet(all)
        waiter = asyncio.create_task(toggles.wait_for(False))
        await asyncio.sleep(0)
        assert not waiter.done()
        await toggles.make_toggle(name="new")
        await asyncio.wait_for(waiter, timeout=1)

    asyncio.run(scenario())


def test_freed_memory_is_given_back_now_and_then(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    monkeypatch.setattr(kopfscale, "_malloc_trim", lambda: calls.append)
    monkeypatch.setattr(kopfscale, "TRIM_INTERVAL", 0.01)

    async def scenario() -> None:
        await kopfscale.start_trimming()
        await asyncio.sleep(0.2)
        await kopfscale.stop_trimming()

    asyncio.run(scenario())
    assert calls
    assert set(calls) == {0}


def test_glibc_trim_is_found_on_glibc() -> None:
    found = kopfscale._malloc_trim() is not None
    assert found == (platform.libc_ver()[0] == "glibc")


def test_kopf_makes_a_bounded_number_of_requests_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests beyond the bound wait for one in flight to end; kopf's own calls go through it."""
    monkeypatch.setattr(kopfscale, "REQUESTS_AT_ONCE", 2)
    in_flight = 0
    most = 0

    async def request(**_: Any) -> str:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return "answer"

    async def scenario() -> list[str]:
        bounded = kopfscale.bounded(request)
        return await asyncio.gather(*(bounded(url=str(i)) for i in range(6)))

    assert asyncio.run(scenario()) == ["answer"] * 6
    assert most == 2
    kopfscale.install()
    assert all(
        getattr(getattr(api, verb), "modelplane_bounded", False)
        for verb in ("get", "post", "patch", "delete")
    )


def test_malloc_arenas_are_limited_on_glibc() -> None:
    assert kopfscale.limit_malloc_arenas() == (platform.libc_ver()[0] == "glibc")
