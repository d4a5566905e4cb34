"""A fix for kopf's start over many objects: wake the tasks that wait for indexing only once.

At start, kopf indexes every object of every kind that has index handlers before any handler
runs. Each object's task makes a toggle in one operator-wide `ToggleSet` when it is listed, drops
it once the object is indexed, and then waits until the set is empty. kopf 1.45 wakes *every*
waiting task whenever any toggle is made or dropped, and each woken task takes the set's lock
again only to find the set still not empty; the listing task itself queues behind them for the
same lock. Over N objects that is about N²/2 wake-ups: measured with 1,000 ModelVersions it was
already about half of the operator's CPU time at a restart, and at 10,000 the indexing of a
restart took many minutes.

`install` makes kopf build its toggle sets from `QuietToggleSet`, which wakes its waiters only
when the set as a whole changes state (from on to off or back). Whether the set is on is
unchanged by any other make or drop, so no waiter can miss a state it waits for. Toggles turned
on or off one by one (kopf's peering pauses) still wake everyone, as before.

It replaces the class in kopf's private `aiotoggles` module, which kopf reads when it builds the
sets (`kopf.run`), so it must run before that: `modelplane.operator.versionindexes` calls it on
import, as the operator registers its handlers. If a kopf upgrade moves these internals, the fix
is skipped with a warning and kopf behaves as it does by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from kopf._cogs.aiokits import aiotoggles

logger = logging.getLogger(__name__)


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


def _kopf_internals_as_expected() -> bool:
    probe = aiotoggles.ToggleSet(all)
    return all(hasattr(probe, attr) for attr in ("_condition", "_toggles")) and isinstance(
        getattr(probe, "_condition", None), asyncio.Condition
    )


def install() -> None:
    """Makes kopf build `QuietToggleSet`s from now on (idempotent)."""
    if aiotoggles.ToggleSet is QuietToggleSet:
        return
    if not _kopf_internals_as_expected():
        logger.warning("kopf's toggle sets changed shape; starting without the readiness fix")
        return
    aiotoggles.ToggleSet = QuietToggleSet  # type: ignore[misc]
