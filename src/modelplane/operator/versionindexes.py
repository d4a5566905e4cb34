"""What the ModelVersion handlers share: the indexes they read, and keyed locks.

ModelVersions are indexed here, from kopf's watch streams as they are read (`VERSIONS`, fed by
`modelplane.operator.kopfstreams`): by model (`VersionStages`) and by the run they name
(`RunHolder`). They are not kopf indexes because kopf runs no handler before every object of
every indexed kind has been indexed, and holds every object's task, queue and body until then:
over 10,000 versions, most of the operator's memory at a start, and most of that memory stays
with the process afterwards. Kept here, the versions stream through kopf a few hundred at a
time (`modelplane.operator.kopfstreams`), and the index is complete for a namespace once its
listing has been read (`VersionIndex.is_listed`).

The indexes of ModelStages and Runs that the ModelVersion handlers read are kopf indexes,
registered next to the code that reads them (`modelplane.operator.versionstages`,
`modelplane.operator.runfinalizers`); kopf passes every index to every handler by its function
name, and `Indexes.from_kwargs` picks them out, with the version indexes.
The locks serialise the steps for one object (a ModelVersion, or one Run's finalizer) that the
scheduled looks, the change handlers and the events of other objects can reach at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import kopf
from pydantic import ValidationError

from modelplane.api import GROUP, ConditionStatus, ModelVersion
from modelplane.core.conditions import ConditionType, find_condition
from modelplane.core.stages import StagePointer
from modelplane.operator import kopfscale, kopfstreams

# Before kopf starts: kopf over 10,000 objects otherwise wakes every object's task whenever one
# is indexed, reads whole listings at once, and holds and copies each object's managedFields
# (see the module). Importing it also registers its garbage-collector tuning at start.
kopfscale.install()

# Index values: frozen (kopf compares its values to skip needless index updates); those of the
# version indexes, one per ModelVersion, with slots.


@dataclass(frozen=True, slots=True)
class RunHolder:
    """A ModelVersion that names a run, with its LineageRecorded (status, reason)."""

    name: str
    lineage: tuple[ConditionStatus, str] | None


@dataclass(frozen=True, slots=True)
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


HoldersIndex = Mapping[tuple[str, str], Collection[RunHolder]]
VersionsIndex = Mapping[tuple[str, str], Collection[VersionStages]]
StagesIndex = kopf.Index[tuple[str, str], StagePointer]
RunsIndex = kopf.Index[tuple[str, str], RunFinalizerState]


@dataclass(frozen=True)
class Indexes:
    """The indexes the ModelVersion handlers read: the version indexes (`VERSIONS`) and the
    kopf indexes of stages and runs, which kopf passes to every handler.

    A handler elsewhere (the ModelStage handlers) gets them with `Indexes.from_kwargs(kwargs)`.
    """

    holders: HoldersIndex
    versions: VersionsIndex
    stages: StagesIndex
    runs: RunsIndex

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Indexes:
        return cls(
            holders=VERSIONS.by_run,
            versions=VERSIONS.by_model,
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


def parse_version(body: Mapping[str, Any]) -> ModelVersion | None:
    """The ModelVersion in `body`, or None when it does not parse (admission let it through)."""
    try:
        return ModelVersion.from_object(body)
    except ValidationError:
        return None


V = TypeVar("V")
Key = tuple[str, str]


class Grouped(Mapping[Key, tuple[V, ...]], Generic[V]):
    """Values by key, several per key (one per object, by name); each read is a snapshot, so
    threads may read while the event loop writes."""

    def __init__(self, guard: threading.Lock) -> None:
        self._guard = guard
        self._groups: dict[Key, dict[str, V]] = {}

    def __getitem__(self, key: Key) -> tuple[V, ...]:
        with self._guard:
            return tuple(self._groups[key].values())

    def __iter__(self) -> Iterator[Key]:
        with self._guard:
            return iter(list(self._groups))

    def __len__(self) -> int:
        return len(self._groups)

    def _put(self, key: Key, name: str, value: V) -> None:
        self._groups.setdefault(key, {})[name] = value

    def _drop(self, key: Key, name: str) -> None:
        group = self._groups.get(key)
        if group is not None:
            group.pop(name, None)
            if not group:
                del self._groups[key]


@dataclass(frozen=True, slots=True)
class _Place:
    """Where one ModelVersion is in the indexes."""

    model: Key | None
    run: Key | None


class VersionIndex:
    """ModelVersions by (namespace, model) and by (namespace, run), kept from kopf's watch
    streams as they are read (`modelplane.operator.kopfstreams.feed`).

    It is complete for a namespace once that namespace's (or the whole cluster's) listing has
    been read, which `is_listed` tells and `wait_listed` waits for. A listing read again (after
    the API server dropped the watch's history) also forgets the versions it no longer shows.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self.by_model: Grouped[VersionStages] = Grouped(self._guard)
        self.by_run: Grouped[RunHolder] = Grouped(self._guard)
        self._places: dict[Key, _Place] = {}
        self._listing: dict[str | None, set[Key]] = {}
        self._listed: set[str | None] = set()
        self._progress = asyncio.Event()

    def observe(self, event_type: str | None, obj: Mapping[str, Any], scope: str | None) -> None:
        metadata = obj.get("metadata") or {}
        namespace, name = metadata.get("namespace"), metadata.get("name")
        if not isinstance(namespace, str) or not isinstance(name, str):
            return
        key = (namespace, name)
        if event_type is None:
            self._listing.setdefault(scope, set()).add(key)
        version = parse_version(obj) if event_type != "DELETED" else None
        with self._guard:
            self._forget(key)
            if version is not None:
                self._place(key, version)

    def listed(self, scope: str | None) -> None:
        seen = self._listing.pop(scope, set())
        with self._guard:
            for key in [k for k in self._places if scope in (None, k[0]) and k not in seen]:
                self._forget(key)
        self._listed.add(scope)
        progress, self._progress = self._progress, asyncio.Event()
        progress.set()

    def is_listed(self, namespace: str) -> bool:
        """Whether every ModelVersion of `namespace` has been seen since the start."""
        return None in self._listed or namespace in self._listed

    async def wait_listed(self, namespace: str, timeout: float) -> bool:
        """Waits until `is_listed(namespace)`, for at most `timeout` seconds; returns it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not self.is_listed(namespace):
                    await self._progress.wait()
        return self.is_listed(namespace)

    def _place(self, key: Key, version: ModelVersion) -> None:
        namespace, name = key
        model = (namespace, version.spec.model)
        stages = tuple(version.status.stages or ()) if version.status else ()
        self.by_model._put(model, name, VersionStages(name, version.spec.version, stages))
        run: Key | None = None
        if version.spec.run is not None and version.metadata.deletion_timestamp is None:
            run = (namespace, version.spec.run)
            recorded = find_condition(
                version.status.conditions if version.status else None,
                ConditionType.LINEAGE_RECORDED,
            )
            state = (recorded.status, recorded.reason) if recorded is not None else None
            self.by_run._put(run, name, RunHolder(name, state))
        self._places[key] = _Place(model, run)

    def _forget(self, key: Key) -> None:
        place = self._places.pop(key, None)
        if place is None:
            return
        if place.model is not None:
            self.by_model._drop(place.model, key[1])
        if place.run is not None:
            self.by_run._drop(place.run, key[1])


VERSIONS = VersionIndex()
"""The ModelVersions this operator watches, fed by kopf's ModelVersion streams."""
kopfstreams.feed(GROUP, "modelversions", VERSIONS)
