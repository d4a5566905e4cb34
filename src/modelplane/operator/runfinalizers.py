"""Keeping referenced Runs from deletion: our finalizer on every Run a ModelVersion names.

A ModelVersion's lineage points at its Run, so the Run must outlive it. `sync_run_finalizer`
adds `RUN_FINALIZER` to a Run while a ModelVersion names it and removes it afterwards, decided
from two indexes (the versions by run, `modelplane.operator.versionindexes.VERSIONS`, and the
kopf index `run_finalizers`) so it needs no list. The finalizer is removed only once every
ModelVersion of the namespace has been listed since the start: before that, a version naming
the run may just not have been read yet. The event
handlers of ModelVersions and Runs (`modelplane.operator.modelversions`) call it, and post an
Event on a Run that someone tried to delete saying which versions hold it
(`announce_blocked_deletion`), once per set of holders.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import kopf
from kubernetes.client import ApiException

from modelplane.api import GROUP, VERSION, ObjectMeta
from modelplane.operator import kube
from modelplane.operator.versionindexes import VERSIONS, Indexes, RunFinalizerState, locks

logger = logging.getLogger(__name__)

PLURAL = "modelversions"
RUNS = "runs"

RUN_FINALIZER = "modelplane.io/referenced-by-model-version"
"""Kept on a Run while a ModelVersion names it, so the lineage's source cannot be deleted."""

_FINALIZER_ATTEMPTS = 5

# Runs whose blocked deletion has been announced, by uid, with the holders named: an Event is
# posted again only when the holders change.
_announced: dict[str, tuple[str, ...]] = {}
_announced_guard = threading.Lock()


@kopf.index(GROUP, VERSION, RUNS)
async def run_finalizers(
    meta: kopf.Meta, namespace: str | None, name: str | None, **_: Any
) -> dict[tuple[str, str], RunFinalizerState] | None:
    """Runs by (namespace, name): whether they carry our finalizer and are being deleted."""
    if namespace is None or name is None:
        return None
    metadata = ObjectMeta.model_validate(dict(meta))
    state = RunFinalizerState(
        finalized=RUN_FINALIZER in (metadata.finalizers or []),
        deleting=metadata.deletion_timestamp is not None,
    )
    return {(namespace, name): state}


def sync_run_finalizer(namespace: str, run: str, indexes: Indexes) -> None:
    """Adds our finalizer to `run` while a ModelVersion names it and removes it afterwards.

    Decided from the indexes, so it needs no list; a stale index is corrected by the watch
    event that the next change of either side brings. The write is guarded by the Run's
    resourceVersion and retried on conflict.
    """
    with locks.hold(RUNS, namespace, run):
        for _attempt in range(_FINALIZER_ATTEMPTS):
            if run_finalizer_settled(namespace, run, indexes):
                return
            wanted = bool(indexes.holders.get((namespace, run)))
            if _write_run_finalizer(namespace, run, wanted=wanted):
                return
        logger.warning("gave up on the finalizer of run %s/%s after conflicts", namespace, run)


def run_finalizer_settled(namespace: str, run: str, indexes: Indexes) -> bool:
    """Whether the indexes say `run` carries our finalizer exactly when a version names it (or
    the run is not known, or no version names it but not every version has been listed yet),
    so `sync_run_finalizer` has nothing to do now. Quick: no API call."""
    wanted = bool(indexes.holders.get((namespace, run)))
    if not wanted and not VERSIONS.is_listed(namespace):
        return True  # the Run's own event decides, once the versions are listed (`run_event`)
    known = list(indexes.runs.get((namespace, run), ()))
    return not known or all(state.finalized == wanted for state in known)


def _write_run_finalizer(namespace: str, run: str, *, wanted: bool) -> bool:
    """Adds or removes our finalizer; False on a write conflict (try again), else True."""
    obj = kube.get(RUNS, namespace, run)
    if obj is None:
        return True
    metadata = ObjectMeta.model_validate(obj.get("metadata", {}))
    finalizers = list(metadata.finalizers or [])
    if (RUN_FINALIZER in finalizers) == wanted:
        return True
    if wanted and metadata.deletion_timestamp is not None:
        # The API server accepts no new finalizer on an object being deleted.
        logger.warning("run %s/%s is being deleted before it could be protected", namespace, run)
        return True
    if wanted:
        finalizers.append(RUN_FINALIZER)
    else:
        finalizers.remove(RUN_FINALIZER)
    patch = {"metadata": {"finalizers": finalizers, "resourceVersion": metadata.resource_version}}
    try:
        kube.custom_objects().patch_namespaced_custom_object(
            GROUP, VERSION, namespace, RUNS, run, patch
        )
    except ApiException as error:
        if error.status == 409:
            return False
        if error.status == 404:
            return True
        raise
    logger.info(
        "%s finalizer %s on run %s/%s",
        "added" if wanted else "removed",
        RUN_FINALIZER,
        namespace,
        run,
    )
    return True


def announce_blocked_deletion(
    body: kopf.Body, name: str, uid: str | None, holders: list[str]
) -> None:
    """Posts an Event on a Run being deleted that names the versions holding it, once per set."""
    key = uid or name
    with _announced_guard:
        if _announced.get(key) == tuple(holders):
            return
        _announced[key] = tuple(holders)
    kopf.warn(
        body,
        reason="DeletionBlocked",
        message=f"run {name} is the lineage of ModelVersion {', '.join(holders)}; it is "
        f"deleted once no ModelVersion references it (finalizer {RUN_FINALIZER})",
    )


def forget_announcement(uid: str | None) -> None:
    """Drops what was announced for a Run that is gone."""
    if uid is not None:
        with _announced_guard:
            _announced.pop(uid, None)
