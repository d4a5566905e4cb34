"""What the ModelVersion handlers share: their kopf index values, the indexes, and keyed locks.

The indexes themselves are registered next to the code that reads them
(`modelplane.operator.runfinalizers` and `modelplane.operator.versionstages`); kopf passes every
index to every handler by its function name, and `Indexes.from_kwargs` picks them out.
The locks serialise the steps for one object (a ModelVersion, or one Run's finalizer) that the
scheduled looks, the change handlers and the events of other objects can reach at once.

The index functions are `async def` although they never wait: they are quick and pure, and kopf
runs a plain function in its thread pool. At a start over 10,000 objects, every object is
indexed before any handler runs; a thread hop per object and index made that indexing slow and
spread it over many event-loop turns, and kopf wakes every object already indexed each time
one more finishes, so the cost grew with the square of the number of objects.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import kopf
from pydantic import ValidationError

from modelplane.api import ConditionStatus, ModelVersion
from modelplane.core.stages import StagePointer
from modelplane.operator import kopfscale

# Before kopf starts: kopf over 10,000 objects otherwise wakes every object's task whenever one
# is indexed, and holds and copies each object's managedFields (see the module). Importing it
# also registers its garbage-collector tuning at start.
kopfscale.install()

# Index values. Frozen dataclasses: kopf compares them to skip needless index updates.


@dataclass(frozen=True)
class RunHolder:
    """A ModelVersion that names a run, with its LineageRecorded (status, reason)."""

    name: str
    lineage: tuple[ConditionStatus, str] | None


@dataclass(frozen=True)
class VersionStages:
    """A ModelVersion of a model, with the stages its status lists."""

    name: str
    version: int
    stages: tuple[str, ...]


@dataclass(frozen=True)
class RunFinalizerState:
    """Whether a Run carries our finalizer and is being deleted."""

    finalized: bool
    deleting: bool


HoldersIndex = kopf.Index[tuple[str, str], RunHolder]
VersionsIndex = kopf.Index[tuple[str, str], VersionStages]
StagesIndex = kopf.Index[tuple[str, str], StagePointer]
RunsIndex = kopf.Index[tuple[str, str], RunFinalizerState]


@dataclass(frozen=True)
class Indexes:
    """The indexes the ModelVersion handlers keep, as kopf passes them to every handler.

    A handler elsewhere (the ModelStage handlers) gets them with `Indexes.from_kwargs(kwargs)`.
    """

    holders: HoldersIndex
    versions: VersionsIndex
    stages: StagesIndex
    runs: RunsIndex

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Indexes:
        return cls(
            holders=kwargs["modelversions_by_run"],
            versions=kwargs["modelversions_by_model"],
            stages=kwargs["modelstages_by_model"],
            runs=kwargs["run_finalizers"],
        )


class _KeyedLocks:
    """One lock per key, made on first use."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[tuple[str, ...], threading.Lock] = {}

    @contextmanager
    def hold(self, *key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def forget(self, *key: str) -> None:
        with self._guard:
            self._locks.pop(key, None)


locks = _KeyedLocks()
"""Keyed by (plural, namespace, name): one ModelVersion, or one Run's finalizer."""


def version_indexed(versions: VersionsIndex, namespace: str, name: str) -> bool:
    """Whether the ModelVersion `name` is in `modelversions_by_model`. Its name is
    `<model>-v<version>` (the CRD checks it), which says where to look."""
    model, separator, number = name.rpartition("-v")
    if not separator or not number.isdigit():
        return False
    return any(entry.name == name for entry in versions.get((namespace, model), ()))


def parse_version(body: kopf.Body) -> ModelVersion | None:
    """The ModelVersion in `body`, or None when it does not parse (admission let it through).

    The last one parsed is kept: kopf hands the same body to the two ModelVersion index
    functions one after the other, and parsing a version takes about 50 µs (half a second
    for each index over 10,000 versions at a start). Callers must not modify the result.
    """
    global _last_parsed  # noqa: PLW0603 - a cache of one, read and written in one step
    resource_version = body.get("metadata", {}).get("resourceVersion")
    last = _last_parsed
    if last is not None and last[0] is body and last[1] == resource_version:
        return last[2]
    try:
        version: ModelVersion | None = ModelVersion.from_object(body)
    except ValidationError:
        version = None
    _last_parsed = (body, resource_version, version)
    return version


_last_parsed: tuple[kopf.Body, str | None, ModelVersion | None] | None = None
