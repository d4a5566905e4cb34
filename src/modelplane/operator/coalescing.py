"""Running one reconciliation per object at a time, and remembering what was last seen.

Both keep kopf's worker threads free of repeated work: triggers that arrive while an object is
being reconciled fold into one more run (`Coalescer`), and a handler acts on a field only when
its value changed since the last event (`LastSeen`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class Coalescer:
    """Runs one function per key at a time; calls made meanwhile fold into one more run."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._running: set[Hashable] = set()
        self._again: set[Hashable] = set()

    def run(self, key: Hashable, fn: Callable[[], None]) -> None:
        with self._guard:
            if key in self._running:
                self._again.add(key)
                return
            self._running.add(key)
        try:
            while True:
                fn()
                with self._guard:
                    if key not in self._again:
                        self._running.discard(key)
                        return
                    self._again.discard(key)
        except BaseException:
            with self._guard:
                self._running.discard(key)
                self._again.discard(key)
            raise


class LastSeen(Generic[V]):
    """The value last seen per key, to act only when it changes."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._values: dict[Hashable, V] = {}

    def changed(self, key: Hashable, value: V) -> bool:
        """Record `value`; True when it differs from the last one (or is the first)."""
        with self._guard:
            changed = key not in self._values or self._values[key] != value
            self._values[key] = value
        return changed

    def forget(self, key: Hashable) -> None:
        with self._guard:
            self._values.pop(key, None)
