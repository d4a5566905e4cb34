"""Metric buffers: exact running summaries, draining, flushing by volume, and validation."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelplane.sdk.buffers import MetricBuffer, Summary

finite = st.floats(allow_nan=False, allow_infinity=False, width=64)


@given(st.lists(st.tuples(finite, st.integers(min_value=0, max_value=10**12)), min_size=1))
def test_summary_equals_the_summary_of_the_whole_history(points: list[tuple[float, int]]) -> None:
    buffer = MetricBuffer(clock=lambda: 7)
    for value, step in points:
        buffer.add("loss", value, step)
    values = [value for value, _ in points]
    assert buffer.summaries() == {
        "loss": Summary(
            last=values[-1], step=points[-1][1], min=min(values), max=max(values), count=len(values)
        )
    }


def test_drain_hands_over_pending_points_once_with_their_summaries() -> None:
    buffer = MetricBuffer(clock=lambda: 1000)
    buffer.add("loss", 0.5, 1)
    buffer.add("acc", 0.7, 1, timestamp=5)
    buffer.add("loss", 0.25, 2)
    first = buffer.drain()
    assert first.points == {"loss": [(1, 1000, 0.5), (2, 1000, 0.25)], "acc": [(1, 5, 0.7)]}
    assert first.summaries["loss"] == Summary(0.25, 2, 0.25, 0.5, 2)
    assert first.size == 3
    assert buffer.pending == 0

    buffer.add("acc", 0.9, 2)
    second = buffer.drain()
    assert second.points == {"acc": [(2, 1000, 0.9)]}
    # Summaries cover everything ever logged, not only the drained batch.
    assert second.summaries == {
        "loss": Summary(0.25, 2, 0.25, 0.5, 2),
        "acc": Summary(0.9, 2, 0.7, 0.9, 2),
    }


def test_step_defaults_to_zero_and_timestamp_to_the_clock_as_in_mlflow() -> None:
    buffer = MetricBuffer(clock=lambda: 123)
    buffer.add("x", 1)
    assert buffer.drain().points == {"x": [(0, 123, 1.0)]}


def test_calls_on_full_once_when_pending_points_reach_the_flush_size() -> None:
    calls: list[int] = []
    buffer = MetricBuffer(flush_points=3, on_full=lambda: calls.append(1))
    for step in range(5):
        buffer.add("x", step, step)
    assert calls == [1]
    buffer.drain()
    for step in range(3):
        buffer.add("x", step, step)
    assert calls == [1, 1]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_refuses_non_finite_values(value: float) -> None:
    buffer = MetricBuffer()
    with pytest.raises(ValueError, match="not finite"):
        buffer.add("loss", value)
    assert buffer.summaries() == {}


def test_refuses_negative_steps_and_bad_names() -> None:
    buffer = MetricBuffer()
    with pytest.raises(ValueError, match="step must be 0 or more"):
        buffer.add("loss", 1.0, -1)
    with pytest.raises(ValueError, match="invalid metric name"):
        buffer.add("loss:train", 1.0)
    with pytest.raises(ValueError, match="invalid metric name"):
        buffer.add("", 1.0)


def test_refuses_more_metrics_than_a_run_can_hold() -> None:
    buffer = MetricBuffer(max_metrics=2)
    buffer.add("a", 1)
    buffer.add("b", 1)
    with pytest.raises(ValueError, match="at most 2 metrics"):
        buffer.add("c", 1)
    buffer.add("a", 2)  # known metrics still log


def test_refuses_points_after_close_but_keeps_pending_ones() -> None:
    buffer = MetricBuffer(clock=lambda: 9)
    buffer.add("a", 1)
    buffer.close()
    with pytest.raises(RuntimeError, match="has ended"):
        buffer.add("a", 2)
    with pytest.raises(RuntimeError, match="has ended"):
        buffer.add("b", 2)
    assert buffer.drain().points == {"a": [(0, 9, 1.0)]}


def test_counts_every_point_logged_from_several_threads() -> None:
    buffer = MetricBuffer(flush_points=1000)
    drained: list[int] = []

    def log(offset: int) -> None:
        for i in range(20_000):
            buffer.add("loss", offset + i, i)

    threads = [threading.Thread(target=log, args=(n * 100_000,)) for n in range(4)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        drained.append(buffer.drain().size)
    for thread in threads:
        thread.join()
    drained.append(buffer.drain().size)
    assert sum(drained) == 80_000
    summary = buffer.summaries()["loss"]
    assert (summary.count, summary.min, summary.max) == (80_000, 0, 319_999)
