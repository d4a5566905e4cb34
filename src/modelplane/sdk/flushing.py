"""The flusher: a background thread that writes a run's metrics and keeps its heartbeat alive.

Every ``interval`` seconds, and as soon as the buffer holds ``flush_points`` points, a *round*:

1. drains the buffer and encodes each metric's new points as one chunk (see
   `modelplane.sdk.histories`), queued in order;
2. stores the queued chunks in the artifact store, oldest first, stopping at the first failure;
3. merge-patches the Run's status with ``heartbeatTime`` and, when every queued chunk is
   stored and something changed, the summaries of all metrics (``metrics``).

A chunk that could not be stored stays queued and is retried next round, before newer ones,
and summaries wait until it is stored: the history in the store is never behind the counts
in the status. Heartbeats go out every round regardless, so a run whose store is briefly
unreachable is not taken for dead. Nothing here raises into the training code; failures are
logged and retried. `close` stops the thread and makes a last attempt to store everything.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from modelplane.sdk.buffers import MetricBuffer, Summary
from modelplane.sdk.histories import chunk_path, encode_points

log = logging.getLogger(__name__)

StoreChunk = Callable[[str, bytes], None]
"""Stores ``data`` at a path relative to the run's artifact root."""
PatchStatus = Callable[[dict[str, Any]], Mapping[str, Any] | None]
"""Merge-patches the run's status; returns the updated object (or None)."""

CLOSE_ATTEMPTS = 3
CLOSE_BACKOFF = 0.5


def rfc3339(moment: datetime) -> str:
    """A UTC time as Kubernetes writes it, with microseconds: 2025-01-01T12:00:00.000000Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Flusher:
    """Flushes one run's `MetricBuffer` and sends its heartbeats from a daemon thread."""

    def __init__(
        self,
        buffer: MetricBuffer,
        *,
        store_chunk: StoreChunk,
        patch_status: PatchStatus,
        interval: float,
        name: str = "run",
        clock: Callable[[], datetime] = utcnow,
        close_backoff: float = CLOSE_BACKOFF,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"flush interval must be positive, got {interval}")
        self._buffer = buffer
        self._store_chunk = store_chunk
        self._patch_status = patch_status
        self._interval = interval
        self._name = name
        self._clock = clock
        self._close_backoff = close_backoff
        self._queue: collections.deque[tuple[str, bytes]] = collections.deque()
        self._seq = 0
        self._latest: dict[str, Summary] = {}
        self._sent: dict[str, Summary] = {}
        self._round_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._warned_phase = False

    def wake(self) -> None:
        """Ask for a round now (the buffer calls this when it fills)."""
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._loop, name=f"modelplane-flusher-{self._name}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if self._stopping.is_set():
                return
            try:
                self.flush()
            # The thread must outlive any failure (a dropped connection, a store hiccup): it
            # logs and tries again next round, while the training code carries on.
            except Exception:
                log.exception("flushing run %s failed; retrying next round", self._name)

    def flush(self, *, heartbeat: bool = True) -> bool:
        """One round; True when every point drained so far is in the store."""
        with self._round_lock:
            drained = self._buffer.drain()
            if drained.points:
                self._seq += 1
                for key, points in drained.points.items():
                    self._queue.append((chunk_path(key, self._seq), encode_points(points)))
            self._latest = drained.summaries
            complete = self._store_queued()
            if heartbeat:
                self._send_status(complete)
            return complete

    def _store_queued(self) -> bool:
        while self._queue:
            path, data = self._queue[0]
            try:
                self._store_chunk(path, data)
            except Exception as error:  # noqa: BLE001 (kept queued and retried next round)
                log.warning("run %s: storing %s failed (%s); will retry", self._name, path, error)
                return False
            self._queue.popleft()
        return True

    def _send_status(self, complete: bool) -> None:
        status: dict[str, Any] = {"heartbeatTime": rfc3339(self._clock())}
        summaries = self._latest
        if complete and summaries != self._sent:
            status["metrics"] = {key: summary.to_dict() for key, summary in summaries.items()}
        try:
            updated = self._patch_status(status)
        except Exception as error:  # noqa: BLE001 (the next round sends a newer heartbeat)
            log.warning("run %s: heartbeat failed (%s); will retry", self._name, error)
            return
        if "metrics" in status:
            self._sent = summaries
        self._check_phase(updated)

    def _check_phase(self, updated: Mapping[str, Any] | None) -> None:
        phase = ((updated or {}).get("status") or {}).get("phase")
        if phase not in (None, "Running") and not self._warned_phase:
            self._warned_phase = True
            log.warning(
                "run %s is %s in the cluster while it still runs here (its heartbeat was lost "
                "for a while?); end_run will record how it really ended",
                self._name,
                phase,
            )

    def summaries(self) -> dict[str, Summary]:
        """The summaries as of the last round."""
        with self._round_lock:
            return dict(self._latest)

    def close(self) -> bool:
        """Stop the thread and store everything left; True when the history is complete."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        for attempt in range(CLOSE_ATTEMPTS):
            if self.flush(heartbeat=False):
                return True
            time.sleep(self._close_backoff * 2**attempt)
        return False

    @property
    def unstored_chunks(self) -> int:
        return len(self._queue)
