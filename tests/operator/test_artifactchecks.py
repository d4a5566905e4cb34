"""Asking the store for verdicts from several threads at once."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from modelplane.operator import artifactchecks
from modelplane.store import StoreConfig


def test_threads_open_the_store_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The store builds its client on first use; eight looks at once must not build eight."""
    inside = 0
    most = 0
    guard = threading.Lock()

    def open_store(uri: str, config: StoreConfig) -> None:
        nonlocal inside, most
        with guard:
            inside += 1
            most = max(most, inside)
        time.sleep(0.01)
        with guard:
            inside -= 1

    monkeypatch.setattr(artifactchecks, "open_store", open_store)
    config: Any = object()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: artifactchecks._open_once("s3://b/k", config), range(8)))
    assert most == 1
