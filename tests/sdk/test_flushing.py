"""The flusher: histories stored before summaries, retries, heartbeats, and closing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from modelplane.sdk.buffers import MetricBuffer
from modelplane.sdk.flushing import Flusher
from modelplane.sdk.histories import decode_points

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


class FakeRun:
    """A store and a status that record writes, and can be told to fail."""

    def __init__(self) -> None:
        self.chunks: dict[str, bytes] = {}
        self.patches: list[dict[str, Any]] = []
        self.events: list[str] = []
        self.store_fails = False
        self.status_fails = False

    def store(self, path: str, data: bytes) -> None:
        if self.store_fails:
            raise OSError("store down")
        self.chunks[path] = data
        self.events.append(f"chunk {path}")

    def patch(self, status: dict[str, Any]) -> dict[str, Any]:
        if self.status_fails:
            raise OSError("api down")
        self.patches.append(status)
        self.events.append("status")
        return {"status": {"phase": "Running", **status}}

    def stored_points(self, key: str) -> int:
        return sum(
            len(decode_points(key, data))
            for path, data in sorted(self.chunks.items())
            if path.startswith(f"metrics/{key}/")
        )


def make(fake: FakeRun, buffer: MetricBuffer, interval: float = 3600) -> Flusher:
    return Flusher(
        buffer,
        store_chunk=fake.store,
        patch_status=fake.patch,
        interval=interval,
        clock=lambda: NOW,
        close_backoff=0.01,
    )


def test_stores_each_metrics_new_points_then_writes_summaries_and_heartbeat() -> None:
    fake, buffer = FakeRun(), MetricBuffer(clock=lambda: 1)
    flusher = make(fake, buffer)
    buffer.add("loss", 0.5, 0)
    buffer.add("acc", 0.9, 0)
    assert flusher.flush() is True
    assert fake.events == [
        "chunk metrics/loss/0000000001.jsonl",
        "chunk metrics/acc/0000000001.jsonl",
        "status",
    ]
    assert fake.patches == [
        {
            "heartbeatTime": "2025-01-01T12:00:00.000000Z",
            "metrics": {
                "loss": {"last": 0.5, "step": 0, "min": 0.5, "max": 0.5, "count": 1},
                "acc": {"last": 0.9, "step": 0, "min": 0.9, "max": 0.9, "count": 1},
            },
        }
    ]


def test_sends_only_a_heartbeat_when_nothing_changed() -> None:
    fake, buffer = FakeRun(), MetricBuffer()
    flusher = make(fake, buffer)
    buffer.add("loss", 0.5)
    flusher.flush()
    flusher.flush()
    assert fake.patches[1] == {"heartbeatTime": "2025-01-01T12:00:00.000000Z"}


def test_a_chunk_that_failed_is_retried_first_and_summaries_wait_for_it() -> None:
    fake, buffer = FakeRun(), MetricBuffer()
    flusher = make(fake, buffer)
    buffer.add("loss", 1.0, 0)
    fake.store_fails = True
    assert flusher.flush() is False
    # The heartbeat still goes out, without summaries the store cannot back yet.
    assert fake.patches == [{"heartbeatTime": "2025-01-01T12:00:00.000000Z"}]
    assert flusher.unstored_chunks == 1

    fake.store_fails = False
    buffer.add("loss", 2.0, 1)
    assert flusher.flush() is True
    assert list(fake.chunks) == [
        "metrics/loss/0000000001.jsonl",
        "metrics/loss/0000000002.jsonl",
    ]
    assert fake.patches[-1]["metrics"]["loss"]["count"] == 2
    assert fake.stored_points("loss") == 2


def test_a_failed_heartbeat_does_not_lose_summaries() -> None:
    fake, buffer = FakeRun(), MetricBuffer()
    flusher = make(fake, buffer)
    buffer.add("loss", 1.0)
    fake.status_fails = True
    flusher.flush()
    fake.status_fails = False
    flusher.flush()
    assert fake.patches[-1]["metrics"]["loss"]["count"] == 1


def test_the_thread_flushes_on_its_interval_and_when_the_buffer_fills() -> None:
    fake = FakeRun()
    full = threading.Event()
    buffer = MetricBuffer(flush_points=100, on_full=full.set)
    flusher = make(fake, buffer, interval=3600)
    flusher.start()
    try:
        for step in range(100):
            buffer.add("loss", step, step)
        assert full.is_set()
        flusher.wake()  # what ActiveRun wires on_full to
        deadline = time.monotonic() + 10
        while fake.stored_points("loss") < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fake.stored_points("loss") == 100
    finally:
        assert flusher.close() is True

    fake2, buffer2 = FakeRun(), MetricBuffer()
    ticking = make(fake2, buffer2, interval=0.05)
    ticking.start()
    deadline = time.monotonic() + 10
    while len(fake2.patches) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    ticking.close()
    assert len(fake2.patches) >= 3


def test_close_stores_what_is_left_and_reports_failure() -> None:
    fake, buffer = FakeRun(), MetricBuffer()
    flusher = make(fake, buffer, interval=0.01)
    flusher.start()
    buffer.add("loss", 1.0)
    assert flusher.close() is True
    assert fake.stored_points("loss") == 1
    assert not any(t.name.startswith("modelplane-flusher") for t in threading.enumerate())

    failing, buffer = FakeRun(), MetricBuffer()
    failing.store_fails = True
    flusher = make(failing, buffer)
    buffer.add("loss", 1.0)
    assert flusher.close() is False
    assert flusher.unstored_chunks == 1
