"""When to look at each ModelVersion again: one schedule in memory, not a timer per object.

A periodic look at a ModelVersion (verify its artifact when due, take a pending lineage again)
has something to do only at times the object itself tells (`next_look`):

- at once, when `modelplane.core.modelversions.pending` says so: no verdict yet, a pending
  lineage or verification request, or a store that could not be reached;
- when a failed verdict is `retry_failed_after` old, or a good one `reverify_after` old
  (`modelplane.core.artifacts.verification_due`);
- never, for a version being deleted.

`Rechecks` keeps one due time per version in a heap, so an operator over 10,000 versions holds
10,000 small entries and looks only at those that are due; a kopf timer per object would keep
an asyncio task and a copy of every object, and wake each one every interval to find out that
nothing is due. Two rules keep the old timer's pace:

- a version looked at less than `interval` ago is not looked at again before that (a look's own
  status write comes back as an event that would plan it at once: a Running run's lineage is
  looked at every `interval`, not in a loop);
- a store that could not be reached is tried again after a delay that doubles from 5 seconds to
  5 minutes (`modelplane.core.artifacts.retry_delay`), whatever events say meanwhile, until a
  look reaches it or the object shows a verdict again.

Times are plain seconds on a monotonic clock that the caller passes in, so this is pure and
thread-safe: the operator plans from its watch events (in worker threads) and runs the looks
from its event loop.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from modelplane.api import ModelVersion
from modelplane.core.artifacts import VerificationPolicy, retry_delay
from modelplane.core.conditions import ConditionType, find_condition
from modelplane.core.modelversions import pending

K = TypeVar("K", bound=Hashable)


def next_look(
    version: ModelVersion, *, now: datetime, policy: VerificationPolicy
) -> datetime | None:
    """When a look at `version` next has something to do, if nothing else happens to it: `now`
    when something is pending, later when a verdict ages, None for a version being deleted."""
    if version.metadata.deletion_timestamp is not None:
        return None
    if pending(version, now=now, policy=policy):
        return now
    # Not pending, so the artifact has a verdict (True or False) with its time.
    status = version.status
    condition = find_condition(
        status.conditions if status is not None else None, ConditionType.ARTIFACT_VERIFIED
    )
    verified_at = status.artifact.verified_at if status and status.artifact else None
    if condition is None or verified_at is None:
        return now
    if condition.status == "True":
        return verified_at + policy.reverify_after
    return verified_at + policy.retry_failed_after


@dataclass
class _Entry:
    due: float
    seq: int
    outages: int = 0
    """Looks in a row that could not reach the store (the backoff's exponent)."""
    looked: float | None = None
    """When the last look ended."""
    running: bool = False


class Rechecks(Generic[K]):
    """The next look at each version, by key; thread-safe."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._entries: dict[K, _Entry] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def plan(self, key: K, due: float | None, *, now: float) -> None:
        """Plans the next look at `key` for `due` (from `next_look`, as seconds on the clock);
        None forgets the key. A version in backoff, or looked at less than `interval` ago, is
        not looked at sooner than that allows."""
        with self._lock:
            if due is None:
                self._entries.pop(key, None)
                return
            entry = self._entries.get(key)
            if entry is not None:
                if due > now:
                    entry.outages = 0  # the object shows a verdict again: no more backoff
                if entry.outages:
                    due = max(due, entry.due)  # the backoff sets the pace
                elif entry.looked is not None:
                    due = max(due, entry.looked + self.interval)
                if entry.due == due:
                    return
            self._push(key, due, entry)

    def forget(self, key: K) -> None:
        self.plan(key, None, now=0.0)

    def take_due(self, now: float) -> list[K]:
        """The keys due by `now`, marked as being looked at (`done` ends that)."""
        taken: list[K] = []
        with self._lock:
            while self._heap and self._heap[0][0] <= now:
                _due, seq, key = heapq.heappop(self._heap)
                entry = self._entries.get(key)
                if entry is None or entry.seq != seq or entry.running:
                    continue  # planned again since, forgotten, or already being looked at
                entry.running = True
                taken.append(key)
        return taken

    def done(self, key: K, due: float | None, *, now: float, outage: bool = False) -> float | None:
        """Ends a look at `key`, planning the next for `due` (from `next_look` on what the look
        saw), or after the backoff when the store could not be reached. Returns the time planned
        (None for a key forgotten meanwhile)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry.running = False
            entry.looked = now
            if outage:
                due = now + retry_delay(entry.outages)
                entry.outages += 1
            else:
                entry.outages = 0
                if due is None:
                    self._entries.pop(key, None)
                    return None
                due = max(due, now + self.interval)
            self._push(key, due, entry)
            return due

    def due_at(self, key: K) -> float | None:
        """When `key` is next looked at, or None."""
        with self._lock:
            entry = self._entries.get(key)
            return entry.due if entry is not None else None

    def _push(self, key: K, due: float, entry: _Entry | None) -> None:
        seq = next(self._seq)
        if entry is None:
            self._entries[key] = _Entry(due, seq)
        else:
            entry.due, entry.seq = due, seq
        heapq.heappush(self._heap, (due, seq, key))
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._compact()

    def _compact(self) -> None:
        """Drops heap items that were planned again or forgotten since."""
        self._heap = [(e.due, e.seq, k) for k, e in self._entries.items()]
        heapq.heapify(self._heap)
