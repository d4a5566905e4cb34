"""Metric buffers: points waiting to be flushed, and a running summary of each metric.

`MetricBuffer.add` is the hot path of training code, one call per logged point, so it does no
I/O, builds no pydantic model and allocates one tuple: it appends the point to its metric's
series and updates the series' summary (last, step, min, max, count) in place. The flusher
thread calls `drain`, which hands over every pending point together with the summaries of
exactly those points, taken under the same lock, so a summary written to the Run never counts a
point that is not in the batch being stored.

Values must be finite: a Run's status is JSON, which has no NaN or infinity, and a summary
whose `last` silently skipped a NaN would let a diverged model pass a metric gate.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from modelplane.api.fields import MAX_METRICS, METRIC_NAME

Point = tuple[int, int, float]
"""One logged point: (step, timestamp in milliseconds since the epoch, value)."""

_METRIC_NAME = re.compile(METRIC_NAME)


def now_ms() -> int:
    """Milliseconds since the epoch, MLflow's metric timestamp unit."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Summary:
    """A snapshot of one metric's summary, as `status.metrics[<key>]` holds it."""

    last: float
    step: int
    min: float
    max: float
    count: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "last": self.last,
            "step": self.step,
            "min": self.min,
            "max": self.max,
            "count": self.count,
        }


class _Series:
    """One metric's pending points and running summary (mutable; guarded by the buffer's lock)."""

    __slots__ = ("count", "last", "max", "min", "points", "step")

    def __init__(self) -> None:
        self.points: list[Point] = []
        self.count = 0
        self.last = self.min = self.max = 0.0
        self.step = 0

    def summary(self) -> Summary:
        return Summary(self.last, self.step, self.min, self.max, self.count)


@dataclass(frozen=True)
class Drained:
    """What `MetricBuffer.drain` hands over: new points by metric, and every metric's summary."""

    points: dict[str, list[Point]]
    summaries: dict[str, Summary]

    @property
    def size(self) -> int:
        return sum(len(points) for points in self.points.values())


class MetricBuffer:
    """Buffers logged points and keeps each metric's summary current; thread-safe.

    ``on_full`` is called (under the lock, so it must only signal, e.g. `threading.Event.set`)
    when the pending points reach ``flush_points``, so a fast training loop is flushed by
    volume as well as by time. ``clock`` supplies default timestamps.
    """

    def __init__(
        self,
        *,
        flush_points: int = 10_000,
        max_metrics: int = MAX_METRICS,
        on_full: Callable[[], None] | None = None,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        if flush_points < 1:
            raise ValueError(f"flush_points must be at least 1, got {flush_points}")
        self._series: dict[str, _Series] = {}
        self._lock = threading.Lock()
        self._pending = 0
        self._flush_points = flush_points
        self._max_metrics = max_metrics
        self._on_full = on_full
        self._clock = clock
        self._closed = False

    def add(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Record one point; ``step`` defaults to 0 and ``timestamp`` to now, as in MLflow.

        Raises ValueError for a non-finite value, a negative step or a bad metric name, and
        RuntimeError once the buffer is closed (the run has ended).
        """
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"metric {key!r}: value {value} is not finite; log finite values")
        step = 0 if step is None else int(step)
        if step < 0:
            raise ValueError(f"metric {key!r}: step must be 0 or more, got {step}")
        if timestamp is None:
            timestamp = self._clock()
        with self._lock:
            if self._closed:
                raise RuntimeError("the run has ended; its metrics can no longer be logged")
            series = self._series.get(key)
            if series is None:
                series = self._new_series(key)
            if series.count == 0:
                series.min = series.max = value
            elif value < series.min:
                series.min = value
            elif value > series.max:
                series.max = value
            series.last = value
            series.step = step
            series.count += 1
            series.points.append((step, int(timestamp), value))
            self._pending += 1
            if self._pending == self._flush_points and self._on_full is not None:
                self._on_full()

    def _new_series(self, key: str) -> _Series:
        if not isinstance(key, str) or _METRIC_NAME.match(key) is None:
            raise ValueError(
                f"invalid metric name {key!r}: use 1-250 letters, digits, '_', '-', '.', '/' "
                "or spaces"
            )
        if len(self._series) >= self._max_metrics:
            raise ValueError(
                f"cannot log metric {key!r}: a run holds at most {self._max_metrics} metrics"
            )
        series = self._series[key] = _Series()
        return series

    @property
    def pending(self) -> int:
        """Points logged and not yet drained."""
        return self._pending

    def drain(self) -> Drained:
        """Take every pending point, with the summaries of everything logged so far."""
        with self._lock:
            points: dict[str, list[Point]] = {}
            for key, series in self._series.items():
                if series.points:
                    points[key] = series.points
                    series.points = []
            summaries = {key: series.summary() for key, series in self._series.items()}
            self._pending = 0
        return Drained(points, summaries)

    def summaries(self) -> dict[str, Summary]:
        """The current summary of every metric logged so far."""
        with self._lock:
            return {key: series.summary() for key, series in self._series.items()}

    def close(self) -> None:
        """Refuse further points; pending ones can still be drained."""
        with self._lock:
            self._closed = True
