"""Counting and timing reconciliations: one context manager every handler wraps its work in."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import kopf

from modelplane.metrics import RECONCILE_SECONDS, RECONCILES


@contextmanager
def reconciling(kind: str) -> Iterator[None]:
    """Record one reconciliation of `kind`: success, retry (a temporary error) or error."""
    started = time.perf_counter()
    result = "error"
    try:
        yield
        result = "success"
    except kopf.TemporaryError:
        result = "retry"
        raise
    finally:
        RECONCILES.labels(kind=kind, result=result).inc()
        RECONCILE_SECONDS.labels(kind=kind).observe(time.perf_counter() - started)
