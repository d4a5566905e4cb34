"""The storage format of full metric histories: where each flush goes, and how points are encoded.

A Run's status holds only summaries; every logged point goes to the artifact store, in chunks
written by the SDK's flusher. Under the run's artifact root (`status.artifactRoot`)::

    metrics/<encoded key>/<seq>.jsonl

* ``<encoded key>`` is the metric name percent-encoded (RFC 3986) except letters, digits, ``-``
  and ``_``, so ``loss/train`` is ``loss%2Ftrain`` and no name can nest inside another's
  directory or escape it (``..`` is ``%2E%2E``).
* ``<seq>`` is the flush's sequence number, 10 digits, zero-padded, starting at 1: each flush
  writes one chunk for every metric logged since the previous flush, so a metric's chunks sorted
  by name hold its points in logging order. Sequence numbers of one metric may skip (a flush in
  which it logged nothing).
* Each line of a chunk is one point, a JSON object:
  ``{"step": 3, "timestamp": 1735689600000, "value": 0.25}`` (timestamp in milliseconds since
  the epoch, as in MLflow).

The flusher stores a chunk before it writes the summaries that count its points, so the history
in the store always holds at least `status.metrics[key].count` points. This module does no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, unquote

from modelplane.sdk.buffers import Point

METRICS_DIR = "metrics"
_CHUNK = re.compile(r"^[0-9]{10}\.jsonl$")


@dataclass(frozen=True)
class Metric:
    """One logged point of a metric, as MLflow's `Metric` entity."""

    key: str
    value: float
    timestamp: int
    step: int


def encode_key(key: str) -> str:
    """The directory name of a metric: percent-encoded except letters, digits, '-' and '_'."""
    # quote() never encodes '.' and '~'; encode them too so '.' and '..' cannot be names.
    return quote(key, safe="-_").replace(".", "%2E").replace("~", "%7E")


def decode_key(name: str) -> str:
    return unquote(name)


def metric_dir(key: str) -> str:
    """The directory of a metric's chunks, relative to the run's artifact root."""
    return f"{METRICS_DIR}/{encode_key(key)}"


def chunk_name(seq: int) -> str:
    if not 1 <= seq < 10**10:
        raise ValueError(f"chunk sequence number out of range: {seq}")
    return f"{seq:010d}.jsonl"


def chunk_path(key: str, seq: int) -> str:
    """Where flush number ``seq`` stores the points of ``key``, relative to the run root."""
    return f"{metric_dir(key)}/{chunk_name(seq)}"


def is_chunk_name(name: str) -> bool:
    return _CHUNK.match(name) is not None


def encode_points(points: Iterable[Point]) -> bytes:
    """JSON lines of points. Values are finite floats, whose repr() is valid JSON."""
    return "".join(
        f'{{"step":{step},"timestamp":{timestamp},"value":{value!r}}}\n'
        for step, timestamp, value in points
    ).encode()


def decode_points(key: str, data: bytes) -> list[Metric]:
    """The points of one chunk, in order; raises ValueError for a malformed line."""
    metrics = []
    for number, line in enumerate(data.decode().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            point = json.loads(line)
            metrics.append(
                Metric(key, float(point["value"]), int(point["timestamp"]), int(point["step"]))
            )
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"metric {key!r}: malformed line {number}: {line[:100]!r}") from error
    return metrics
