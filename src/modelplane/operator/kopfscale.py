"""kopf over thousands of objects: what kopf 1.45 and CPython do not do by themselves.

Measured on a restart over 10,000 ModelVersions and 1,000 ModelStages (BENCHMARKS.md, section 2):

1. **Waking the tasks that wait for the indexes once.** At start, kopf indexes every object of
   every kind that has index handlers before any handler runs. Each object's task makes a
   toggle in one operator-wide `ToggleSet` when it is listed, drops it once the object is
   indexed, and then waits until the set is empty. kopf wakes *every* waiting task whenever any
   toggle is made or dropped, and each woken task takes the set's lock again only to find the
   set still not empty: about N²/2 wake-ups, a quarter to a half of the operator's CPU at a
   restart over 1,000 versions and more than 14 minutes of indexing over 10,000.
   `QuietToggleSet` wakes its waiters only when the set as a whole changes state (on to off or
   back); no waiter can miss a state it waits for, since no other make or drop changes whether
   the set is on. Toggles turned on or off one by one (kopf's peering pauses) still wake
   everyone, as before.
2. **Watch streams read at the pace they are handled**, objects without managedFields, and
   ModelVersions indexed as they are read: `modelplane.operator.kopfstreams`.
3. **Fewer full garbage collections.** A restart allocates millions of short-lived objects
   while more than a million live ones sit in memory; with CPython's default thresholds
   (700, 10, 10) the cyclic collector ran 16 full collections and took 16 of the 28 s of CPU
   a restart used. At start, `tune_garbage_collector` moves everything imported so far out of
   the collector's way (`gc.freeze`) and collects young objects every `GC_THRESHOLDS[0]`
   allocations (the other two thresholds as kopf-free code would set them: see `GC_THRESHOLDS`).
4. **At most `REQUESTS_AT_ONCE` of kopf's own API requests at once.** kopf's HTTP client has no
   connection limit and opens a TLS connection for every request made while the others are
   busy; its pool then reuses them in turn, so none stays idle long enough to be closed. Its
   requests come in bursts (every ModelStage's worker is released at the same moment once the
   stages are indexed, and patches its stage), so an initial sync over 200 ModelStages held
   290 connections to the API server throughout, about 300 KiB each (asyncio keeps a 256 KiB
   read buffer per TLS connection). Watches are not bounded.
5. **Giving freed memory back.** Every `TRIM_INTERVAL` seconds, a full garbage collection and
   glibc's `malloc_trim` (in a thread), which returns the heap pages a burst of work freed to
   the system (56 MiB after a restart over 11,000 objects with the code of the time). kopf's
   bodies and patches refer to themselves, so each handled event leaves garbage that only the
   cyclic collector frees, and what outlives two young collections waits for a full one, which
   the thresholds above make rare: in a long initial sync it piled up (64,000 unreachable
   objects at the end of one over 4,400 objects, 11 MiB more RSS). Most of what stays is
   CPython's own: its arenas are returned only when every object in them is gone, and the
   objects that live on are spread over the arenas the burst used.
6. **Two malloc arenas** (`MALLOC_ARENAS`, as `MALLOC_ARENA_MAX=2` would set, from `install`
   on). glibc gives each thread that allocates while another does an arena of its own, up to
   eight per core, and each keeps its own free pages; the operator's 40-odd threads (kopf's
   handler pool, the looks, TLS reads) left an initial sync over 4,400 objects at 264 MiB
   rather than 219 MiB. The GIL serialises most allocations anyway.

1, 2 and 4 replace functions of kopf's private modules, which kopf reads when it starts
(`kopf.run`), so `install` must run before that: `modelplane.operator.versionindexes`
calls it on import, as the operator registers its handlers. If a kopf upgrade moves these
internals, that part is skipped with a warning and kopf behaves as it does by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import logging
import weakref
from collections.abc import Callable, Iterable
from typing import Any

import kopf
from kopf._cogs.aiokits import aiotoggles
from kopf._cogs.clients import api

from modelplane.operator import kopfstreams

logger = logging.getLogger(__name__)

GC_THRESHOLDS = (10_000, 20, 100)
"""Young collections every 10,000 allocations instead of 700; a middle one every 20 of them; a
full one every 100 middle ones (and, as always, only once the objects that survived a middle
collection since the last full one are a quarter of those in the oldest generation)."""


class QuietToggleSet(aiotoggles.ToggleSet):
    """kopf's `ToggleSet`, waking its waiters only when the set's own state changes."""

    async def make_toggle(
        self, __val: bool = False, *, name: str | None = None
    ) -> aiotoggles.Toggle:
        toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            self._notify_if_changed(before)
        return toggle

    async def drop_toggle(self, toggle: aiotoggles.Toggle) -> None:
        async with self._condition:
            before = self.is_on()
            self._toggles.discard(toggle)
            self._notify_if_changed(before)

    async def drop_toggles(self, toggles: Iterable[aiotoggles.Toggle]) -> None:
        async with self._condition:
            before = self.is_on()
            self._toggles.difference_update(toggles)
            self._notify_if_changed(before)

    def _notify_if_changed(self, before: bool) -> None:
        if self.is_on() != before:
            self._condition.notify_all()


REQUESTS_AT_ONCE = 16
"""kopf's own API requests (not its watches) in flight at most."""

_requests: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def bounded(request: Callable[..., Any]) -> Callable[..., Any]:
    """kopf's API call `request`, waiting while `REQUESTS_AT_ONCE` others are in flight (in
    this event loop)."""

    @functools.wraps(request)
    async def bounded_request(*args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        limit = _requests.get(loop)
        if limit is None:
            limit = _requests[loop] = asyncio.Semaphore(REQUESTS_AT_ONCE)
        async with limit:
            return await request(*args, **kwargs)

    bounded_request.modelplane_bounded = True  # type: ignore[attr-defined]
    return bounded_request


def install() -> None:
    """Makes kopf build `QuietToggleSet`s, read its streams through
    `modelplane.operator.kopfstreams` and bound its requests from now on (idempotent)."""
    if aiotoggles.ToggleSet is not QuietToggleSet:
        if _toggle_sets_as_expected():
            aiotoggles.ToggleSet = QuietToggleSet  # type: ignore[misc]
        else:
            logger.warning("kopf's toggle sets changed shape; starting without the readiness fix")
    kopfstreams.install()
    limit_malloc_arenas()
    for verb in ("get", "post", "patch", "delete"):
        call = getattr(api, verb, None)
        if call is None or not callable(call):
            logger.warning("kopf's API client moved; its requests are not bounded")
        elif not getattr(call, "modelplane_bounded", False):
            setattr(api, verb, bounded(call))


@kopf.on.startup()
def tune_garbage_collector(**_: Any) -> None:
    """Freezes what is imported by now and makes full collections rarer (see the module)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


TRIM_INTERVAL = 10.0


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    return None if name is None else ctypes.CDLL(name)


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's `malloc_trim`, or None elsewhere (musl, macOS)."""
    libc = _libc()
    trim: Callable[[int], int] | None = getattr(libc, "malloc_trim", None)
    return trim


MALLOC_ARENAS = 2
M_ARENA_MAX = -8
"""glibc's `mallopt` parameter for the number of malloc arenas (malloc.h)."""


def limit_malloc_arenas() -> bool:
    """At most `MALLOC_ARENAS` glibc malloc arenas for the threads started from now on, as
    `MALLOC_ARENA_MAX` would set; False where that cannot be set (not glibc)."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None or not hasattr(_libc(), "malloc_trim"):
        return False
    return bool(mallopt(ctypes.c_int(M_ARENA_MAX), ctypes.c_int(MALLOC_ARENAS)))


class _Trimmer:
    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None

    async def run(self, trim: Callable[[int], int]) -> None:
        while True:
            await asyncio.sleep(TRIM_INTERVAL)
            # The garbage that reached the oldest generation, which the thresholds collect
            # rarely: about 20 ms for 250,000 tracked objects (see the module).
            gc.collect()
            await asyncio.to_thread(trim, 0)


_trimmer = _Trimmer()


@kopf.on.startup()
async def start_trimming(**_: Any) -> None:
    """Gives freed heap pages back to the system now and then (glibc only; see the module)."""
    trim = _malloc_trim()
    if trim is not None and _trimmer.task is None:
        _trimmer.task = asyncio.create_task(_trimmer.run(trim), name="malloc_trim")


@kopf.on.cleanup()
async def stop_trimming(**_: Any) -> None:
    if _trimmer.task is not None:
        _trimmer.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await _trimmer.task
        _trimmer.task = None


def _toggle_sets_as_expected() -> bool:
    probe = aiotoggles.ToggleSet(all)
    return isinstance(getattr(probe, "_condition", None), asyncio.Condition) and isinstance(
        getattr(probe, "_toggles", None), set
    )
