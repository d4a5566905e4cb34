"""The looks at ModelVersions: a schedule in memory, run by threads of its own.

`look` (from the schedule of `modelplane.core.rechecks`, at most `RECHECK_WORKERS` at once)
verifies the artifact when due and takes a pending lineage again: at once for a new version,
every `RECHECK_INTERVAL` while its lineage waits for its run, when its verdict is old enough to
be checked again, and after a delay doubling up to five minutes while the store cannot be
reached. The schedule is the one place that retries store outages. The ModelVersion event
handler (`modelplane.operator.modelversions`) plans each version's next look.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kopf

from modelplane.api import ModelVersion
from modelplane.core.rechecks import Rechecks, next_look
from modelplane.operator.instrumentation import reconciling
from modelplane.operator.versionreconciling import reconcile, verification_policy

logger = logging.getLogger(__name__)

KIND = "ModelVersion"

RECHECK_INTERVAL = 30.0
"""Seconds between looks at a version whose lineage waits for its run (and the least time
between two looks at any version)."""
RECHECK_TICK = 1.0
"""How often the schedule is read for versions that are due."""
RECHECK_WORKERS = 8
"""Looks at once: they read artifacts, so they get threads of their own rather than kopf's."""

rechecks: Rechecks[tuple[str, str]] = Rechecks(RECHECK_INTERVAL)
"""When each ModelVersion, by (namespace, name), is next looked at."""


class _Looker:
    """Runs the looks that `rechecks` says are due, in threads of its own.

    It starts with the first ModelVersion event rather than at the operator's start, so that its
    task carries the context of kopf's object processing: kopf posts Events (`kopf.info`) only
    from there.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def ensure_started(self) -> None:
        if self._task is None:
            self._executor = ThreadPoolExecutor(
                max_workers=RECHECK_WORKERS, thread_name_prefix="modelversion-look"
            )
            self._task = asyncio.create_task(self._run(self._executor), name="modelversion looks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    @staticmethod
    async def _run(executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for key in rechecks.take_due(time.monotonic()):
                # `look` logs its own errors and never raises.
                loop.run_in_executor(executor, contextvars.copy_context().run, look, key)
            await asyncio.sleep(RECHECK_TICK)


looker = _Looker()


@kopf.on.cleanup()
async def stop_looks(**_: Any) -> None:
    await looker.stop()


def look(key: tuple[str, str]) -> float | None:
    """Looks at one version now: verifies its artifact when due and takes a pending lineage.

    Plans the next look (`rechecks.done`), after a growing delay when the store could not be
    reached, and returns when (None for a version gone meanwhile). Never raises: one version's
    failure must not stop the others.
    """
    namespace, name = key
    due: float | None = None
    outage = False
    try:
        with reconciling(KIND):
            result = reconcile(namespace, name, verify=True)
            due = on_clock(result.version, time.monotonic())
            if result.outage is not None:
                # Counted as a retry, as kopf counts a handler's temporary error.
                raise kopf.TemporaryError(f"artifact store unreachable: {result.outage.message}")
    except kopf.TemporaryError as error:
        logger.info("ModelVersion %s/%s: %s; trying again later", namespace, name, error)
        outage = True
    except Exception:
        logger.exception("looking at ModelVersion %s/%s failed; trying again", namespace, name)
        outage = True
    return rechecks.done(key, due, now=time.monotonic(), outage=outage)


def on_clock(version: ModelVersion | None, clock: float) -> float | None:
    """`next_look` of `version` as a time on the monotonic clock of `rechecks`, which reads
    `clock` now: exactly `clock` when something is pending."""
    if version is None:
        return None
    now = datetime.now(UTC)
    at = next_look(version, now=now, policy=verification_policy())
    return None if at is None else clock + (at - now).total_seconds()
