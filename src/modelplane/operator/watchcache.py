"""The newest version seen of watched objects, so a reconciliation reads memory, not the API.

kopf already watches the objects a ModelStage depends on and hands each event's body to a
handler. Keeping those bodies (the informer pattern of Go controllers) lets a reconciliation
read its ModelStage, Deployment and target ModelVersion without three GETs. A promotion
triggers a dozen reconciliations (each Deployment status update and each status write of our
own is an event), so the GETs were most of the operator's and the API server's work.

A cached body may be older than the object on the server (its event is still on the way).
That is safe because every write the operator makes is guarded: status patches carry the
resourceVersion the plan was made from and Deployments are replaced at theirs, so a plan made
from a stale body is refused (409) and the newer event, which updates this cache first,
reconciles again.

Two kinds of cache:

- ``every=True``: every object of the watch is kept (ModelStages, serving Deployments).
- ``every=False``: only objects that were read at least once are kept, and from then on kept
  current by their events (ModelVersions: thousands exist, a few are the targets of stages).

Events of one object arrive in order, but after the answers to our own writes: an event older
than the body kept (by resourceVersion) does not replace it.

A miss reads the object from the API server (``fetch``) and keeps it unless an event stored a
newer one meanwhile. A write refused as stale (409) drops the entry (`forget`), so an object
whose events stopped reaching us (a Deployment that lost its label) cannot stay stale.
`managedFields`, the largest part of most objects and never read by the
plans, is dropped. Readers get their own deep copy and may change it.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Mapping
from typing import Any

Key = tuple[str, str]
"""(namespace, name)"""


class WatchCache:
    """Bodies of one kind of object by (namespace, name), fed by its watch events."""

    def __init__(self, *, every: bool) -> None:
        self._every = every
        self._guard = threading.Lock()
        self._bodies: dict[Key, dict[str, Any]] = {}
        self._wanted: set[Key] = set()

    def observe(self, body: Mapping[str, Any], *, deleted: bool = False) -> None:
        """Record an object as its watch event showed it (events of one object arrive in
        order); a deleted object is forgotten."""
        key = _key(body)
        if key is None:
            return
        with self._guard:
            if deleted:
                self._bodies.pop(key, None)
                self._wanted.discard(key)
            elif self._every or key in self._wanted:
                cached = self._bodies.get(key)
                # Events trail our own writes: the event of a write whose answer is kept here
                # may arrive after the answer to a later write, and must not bring it back.
                if cached is None or _is_newer(body, cached) is not False:
                    self._bodies[key] = _stored(body)

    def get(
        self, namespace: str, name: str, fetch: Callable[[], Mapping[str, Any] | None]
    ) -> dict[str, Any] | None:
        """The newest body seen, else what `fetch` reads from the API server (None: absent)."""
        key = (namespace, name)
        with self._guard:
            body = self._bodies.get(key)
            if body is None:
                # From now on every event of it is kept, also one that arrives during fetch.
                self._wanted.add(key)
        if body is None:
            fetched = fetch()
            if fetched is None:
                return None
            with self._guard:
                # An event that arrived during the fetch is at least as new: it wins.
                body = self._bodies.setdefault(key, _stored(fetched))
        return copy.deepcopy(body)

    def peek(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The newest body seen, or None when none is kept: never asks the API server."""
        with self._guard:
            body = self._bodies.get((namespace, name))
        return copy.deepcopy(body) if body is not None else None

    def bodies(self, namespace: str) -> list[dict[str, Any]]:
        """Every body kept of the namespace (of an ``every=True`` cache: the whole watch)."""
        with self._guard:
            kept = [body for (ns, _), body in self._bodies.items() if ns == namespace]
        return copy.deepcopy(kept)

    def written(self, based_on: Mapping[str, Any], answer: Mapping[str, Any]) -> None:
        """Keep the server's answer to a write made on top of `based_on`, unless an event has
        replaced that version meanwhile (then the event is at least as new as the answer).

        Without this, the next reconciliation would plan from the version before our own write
        and have its write refused, until the write's event arrives."""
        key = _key(answer)
        if key is None:
            return
        expected = (based_on.get("metadata") or {}).get("resourceVersion")
        with self._guard:
            cached = self._bodies.get(key)
            if cached is None:
                return
            if cached["metadata"].get("resourceVersion") == expected or _is_newer(answer, cached):
                self._bodies[key] = _stored(answer)

    def forget(self, namespace: str, name: str) -> None:
        """Drop an object whose write was refused as stale: the next read asks the server."""
        with self._guard:
            self._bodies.pop((namespace, name), None)

    def __len__(self) -> int:
        with self._guard:
            return len(self._bodies)


def _key(body: Mapping[str, Any]) -> Key | None:
    metadata = body.get("metadata") or {}
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if not isinstance(namespace, str) or not isinstance(name, str):
        return None
    return namespace, name


def _is_newer(body: Mapping[str, Any], than: Mapping[str, Any]) -> bool | None:
    """Whether `body` is a later version of the object than `than`, by resourceVersion; None
    when the two do not compare. The API server documents resourceVersions as opaque, but the
    etcd-backed ones are increasing integers; anything else is treated as unordered."""
    try:
        return int(body["metadata"]["resourceVersion"]) > int(than["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def _stored(body: Mapping[str, Any]) -> dict[str, Any]:
    stored = copy.deepcopy(dict(body))
    metadata = stored.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return stored


# The caches of this operator process. The ModelStage handlers (`modelplane.operator.modelstages`)
# feed them from their watch events; the reconciliations and the gates webhook read them.
STAGES = WatchCache(every=True)
SERVING_DEPLOYMENTS = WatchCache(every=True)
MODEL_VERSIONS = WatchCache(every=False)
