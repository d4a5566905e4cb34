"""What the operator takes from kopf's watch streams as they are read, and how fast kopf reads.

kopf reads each watched kind's stream in one task and starts a worker task, with a queue of its
own, for every object it has not seen for a few seconds. By itself, its first listing after a
start is one response holding every object, and it spawns a task, a queue and a copy of every
object at once, far faster than they are handled; CPython keeps most of that memory after the
burst (its arenas go back only when empty, and what lives on is spread over all of them).
Four things here change that (BENCHMARKS.md, section 2):

- **Listings in pages** of `LIST_CHUNK` objects, and per-object tasks that end `IDLE_TIMEOUT`
  after their last event rather than 5 s.
- **Objects without `metadata.managedFields`.** The API server's field-ownership records are
  more than half of each ModelVersion as kopf holds it (6.5 of 11.5 KiB) and nothing here or
  in kopf reads them; they are dropped as each object arrives.
- **Feeds.** A kind can be followed right where its stream is read (`feed`): every object, in
  the order the API server sent them, and the end of each listing. This is the informer
  pattern of Go controllers, and how the ModelVersion indexes are kept
  (`modelplane.operator.versionindexes`) rather than with kopf's index handlers, whose start-up
  rule (every object of every indexed kind is indexed before any handler runs) keeps every
  object's task alive until the last one is listed.
- **Pacing.** A kind's stream is read on only while fewer than `PACE` of its events are in
  kopf's hands (queued or being handled), so a listing of 10,000 objects never has more than
  that many tasks, queues and bodies alive at once rather than all of them. A kind with kopf
  index handlers is not paced: kopf holds all its events until its whole listing is indexed,
  so its stream must be read to the end.

`install` replaces kopf's `watching.infinite_watch` and `processing.process_resource_event`,
which kopf looks up when it starts (`kopf.run`); `modelplane.operator.kopfscale.install` calls
it. If a kopf upgrade moves them, that part is skipped with a warning and kopf reads its
streams as it does by itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Protocol

import kopf
from kopf._cogs.clients import watching
from kopf._core.intents import registries
from kopf._core.reactor import processing

logger = logging.getLogger(__name__)

Kind = tuple[str, str]
"""(API group, plural)"""


class Feed(Protocol):
    """Follows one kind's watch streams as they are read (on the event loop)."""

    def observe(self, event_type: str | None, obj: Mapping[str, Any], scope: str | None) -> None:
        """An object as listed (type None) or watched (ADDED, MODIFIED, DELETED)."""

    def listed(self, scope: str | None) -> None:
        """A listing of `scope` (a namespace, or None: the whole cluster) is complete."""


PACE = 200
"""Events of one kind in kopf's hands at most, for a kind without index handlers. Enough to
keep the event loop and the handler threads busy; each costs kopf a task, a queue and a copy of
the object for as long as it is handled, and the object's task lives on idle for
`settings.queueing.idle_timeout` after that."""

_feeds: dict[Kind, Feed] = {}
_pacers: dict[Kind, _Pacer] = {}


def feed(group: str, plural: str, follower: Feed) -> None:
    """From now on, every stream of this kind is shown to `follower` as it is read."""
    _feeds[group, plural] = follower


class _Pacer:
    """Events of one kind handed to kopf and not yet handled, with a wait for room."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self._room = asyncio.Event()

    async def admit(self) -> None:
        while self.in_flight >= self.limit:
            self._room.clear()
            await self._room.wait()
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1
        if self.in_flight < self.limit:
            self._room.set()


def _kind(resource: Any) -> Kind:
    return (getattr(resource, "group", ""), getattr(resource, "plural", ""))


def _pacer(resource: Any) -> _Pacer | None:
    """The pacer of `resource`'s kind, or None for a kind with index handlers."""
    try:
        indexed = registries.get_default_registry()._indexing.has_handlers(resource=resource)
    except AttributeError:
        logger.warning("kopf's registry changed shape; %s are read unpaced", resource)
        return None
    if indexed:
        return None
    return _pacers.setdefault(_kind(resource), _Pacer(PACE))


def lean(watch: Callable[..., AsyncIterator[Any]]) -> Callable[..., AsyncIterator[Any]]:
    """kopf's watch stream `watch`: objects without managedFields, fed and paced."""

    async def lean_watch(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        resource = kwargs.get("resource")
        scope = kwargs.get("namespace")
        follower = _feeds.get(_kind(resource))
        pacer = _pacer(resource)
        async for raw_event in watch(*args, **kwargs):
            if raw_event is watching.Bookmark.LISTED:
                if follower is not None:
                    follower.listed(scope)
                yield raw_event
                continue
            if not isinstance(raw_event, dict):
                yield raw_event
                continue
            obj = raw_event.get("object")
            metadata = obj.get("metadata") if isinstance(obj, dict) else None
            if isinstance(metadata, dict):
                metadata.pop("managedFields", None)
            event_type = raw_event.get("type")
            if follower is not None and isinstance(obj, dict):
                follower.observe(event_type, obj, scope)
            if pacer is not None and event_type != "BOOKMARK":
                await pacer.admit()
            yield raw_event

    lean_watch.modelplane_lean = True  # type: ignore[attr-defined]
    return lean_watch


def counted(process: Callable[..., Any]) -> Callable[..., Any]:
    """kopf's handling of one event, `process`, making room in its kind's pacer when done."""

    @functools.wraps(process)
    async def process_counted(*args: Any, **kwargs: Any) -> Any:
        try:
            return await process(*args, **kwargs)
        finally:
            pacer = _pacers.get(_kind(kwargs.get("resource")))
            if pacer is not None and pacer.in_flight > 0:
                pacer.release()

    process_counted.modelplane_counted = True  # type: ignore[attr-defined]
    return process_counted


LIST_CHUNK = 500
"""Objects per page of a listing (kopf's default reads a whole listing in one response: 10,000
ModelVersions decoded at once, and held until the last of them is handled)."""
IDLE_TIMEOUT = 0.5
"""Seconds kopf's task for an object lives on after its last event (kopf's default is 5 s): at
a start, every object's task, queue and last event lived on that long after being handled."""


@kopf.on.startup()
def read_streams_in_pages(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Listings in pages of `LIST_CHUNK`; kopf's per-object tasks end `IDLE_TIMEOUT` after
    their last event."""
    settings.watching.chunk_size = LIST_CHUNK
    settings.queueing.idle_timeout = IDLE_TIMEOUT


def install() -> None:
    """Makes kopf read its streams through `lean` and count handled events (idempotent)."""
    current = getattr(watching, "infinite_watch", None)
    handle = getattr(processing, "process_resource_event", None)
    if current is None or not callable(current) or handle is None or not callable(handle):
        logger.warning("kopf's watch stream moved; objects keep their managedFields, unpaced")
        return
    if not getattr(current, "modelplane_lean", False):
        watching.infinite_watch = lean(current)
    if not getattr(handle, "modelplane_counted", False):
        processing.process_resource_event = counted(handle)
