"""The ModelVersion handlers: what runs on the events of ModelVersions and of their Runs.

What runs when:

- `model_version_event` (every event of a ModelVersion, the listing at a start included)
  records the lineage and writes the conditions and observedGeneration, keeps the finalizer on
  the version's Run (`modelplane.operator.runfinalizers`) and its `status.stages` current
  (`modelplane.operator.versionstages`), honours `modelplane.io/verify-requested` at once, and
  plans the next look. It works from the object in the event and decides in the event loop
  whatever needs no API call, so a restart over 10,000 settled versions reads and writes none of
  them and runs no thread for them. Its status write carries the resourceVersion it was computed
  from; on a conflict the object is read again.
- the looks (`modelplane.operator.versionlooks`, from the schedule of
  `modelplane.core.rechecks`) verify the artifact when due and take a pending lineage again;
  they are the one place that retries store outages.
- `run_event` (every event of a Run) keeps our finalizer on the Run while a ModelVersion names
  it, posts an Event on a Run that someone tried to delete saying who holds it, and takes the
  lineage of versions that wait for the run to appear or finish.

There is no kopf change handler (create/update/resume) and no kopf timer for ModelVersions:
kopf's change detection copies every object at every event, a timer keeps an asyncio task and a
copy of each object in memory, and the timer's finalizer had to be written to every version.
The first start of this version of the operator removes that finalizer (`modelplane.io/finalizer`)
from existing ModelVersions, one write each, once.

Both reconcile a version with `modelplane.operator.versionreconciling`. Everything is
level-based: each step reads the current objects and indexes and converges, so the operator can
restart at any moment. Steps for one ModelVersion are serialised by the
in-process locks of `modelplane.operator.versionindexes`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf

from modelplane.api import GROUP, VERSION, ModelVersion, ObjectMeta
from modelplane.core import lineage as lineages
from modelplane.core.artifacts import (
    VERIFY_HANDLED_ANNOTATION,
    VERIFY_REQUESTED_ANNOTATION,
    unchanged,
)
from modelplane.core.runs import Reference, RefKind
from modelplane.operator import versionlooks as looks
from modelplane.operator.instrumentation import reconciling
from modelplane.operator.runfinalizers import (
    announce_blocked_deletion,
    forget_announcement,
    run_finalizer_settled,
    sync_run_finalizer,
)
from modelplane.operator.runs import refresh_referrers
from modelplane.operator.versionindexes import VERSIONS, Indexes, locks, parse_version
from modelplane.operator.versionreconciling import reconcile, status_of
from modelplane.operator.versionstages import stages_wanted, write_stages

logger = logging.getLogger(__name__)

PLURAL = "modelversions"
RUNS = "runs"
KIND = "ModelVersion"


# ModelVersion handlers ---------------------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, PLURAL)
async def model_version_event(
    *, type: str | None, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
) -> None:
    """Reconciles the version on each of its events, the listing at a start included; keeps
    its Run's finalizer, its status.stages and its next look current; refreshes the runs that
    evaluate it when it appears or goes.

    What needs no API call is decided here, in the event loop; only a write, a read of the run
    or a verification goes to a thread. A restart over settled versions therefore costs no
    thread, read or write per version.
    """
    if namespace is None:
        return
    looks.looker.ensure_started()
    key = (namespace, name)
    version = parse_version(body)
    indexes = Indexes.from_kwargs(kwargs)
    if version is not None and version.spec.run is not None:
        run = version.spec.run
        if not run_finalizer_settled(namespace, run, indexes):
            await _in_thread(key, sync_run_finalizer, namespace, run, indexes)
    if type in ("ADDED", "DELETED"):
        await refresh_referrers(namespace, Reference(RefKind.MODEL_VERSION, name), kwargs)
    if type == "DELETED":
        locks.forget(PLURAL, namespace, name)
        looks.rechecks.forget(key)
        return
    if version is not None and version.metadata.deletion_timestamp is not None:
        looks.rechecks.forget(key)
        return
    if version is not None:
        stages = stages_wanted(namespace, version, indexes.stages)
        if stages is not None:
            await _in_thread(key, write_stages, namespace, name, stages)
    with reconciling(KIND):
        if version is None or _request_pending(version):
            # Verified at once (an outage is left to the looks, which back off); an object that
            # does not parse is reported.
            await _in_thread(key, reconcile, namespace, name, verify=True, seen=body)
        elif version.status is None:
            # New: its first look, planned for now below, writes its whole status at once (a
            # thousand versions registered together are not each written twice).
            pass
        elif not _settled(namespace, version):
            await _in_thread(key, reconcile, namespace, name, verify=False, seen=body)
    now = time.monotonic()
    looks.rechecks.plan(key, looks.on_clock(version, now), now=now)


async def _in_thread(key: tuple[str, str], fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
    """Runs a blocking step of the event handler in a thread. A failure is logged and leaves
    the version to a look soon, which reconciles everything again."""
    try:
        await asyncio.to_thread(fn, *args, **kw)
    except Exception:
        logger.exception("ModelVersion %s/%s: %s failed; looking again soon", *key, fn.__name__)
        looks.rechecks.plan(key, time.monotonic(), now=time.monotonic())


def _request_pending(version: ModelVersion) -> bool:
    annotations = version.metadata.annotations or {}
    requested = annotations.get(VERIFY_REQUESTED_ANNOTATION)
    return requested is not None and requested != annotations.get(VERIFY_HANDLED_ANNOTATION)


def _settled(namespace: str, version: ModelVersion) -> bool:
    """Whether `reconcile` without verification would write and post nothing for `version`,
    decided without any API call (False when that needs the run read)."""
    run = version.spec.run
    if run is not None and not lineages.is_final(version.status, run):
        return False
    now = datetime.now(UTC)
    lineage = lineages.decide(
        namespace=namespace, run_name=run, run=None, previous=version.status, now=now
    )
    _status, patch, notes = status_of(version, lineage, unchanged(version.status), now)
    return not patch and not notes


# Run events -------------------------------------------------------------------------------------


LISTING_WAIT = 120.0
"""Seconds a Run's event waits at most for the ModelVersions of its namespace to be listed. A
Run's finalizer is removed only after that; waiting longer (no ModelVersions watched there,
say) would only hold the Run's other events back."""


@kopf.on.event(GROUP, VERSION, RUNS)
async def run_event(
    *, type: str, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
) -> None:
    """Keeps the Run's finalizer, explains a blocked deletion, refreshes waiting lineages; once
    the versions of its namespace are listed, so that its holders are known (at a start)."""
    if namespace is None:
        return
    await VERSIONS.wait_listed(namespace, LISTING_WAIT)
    await asyncio.to_thread(_run_changed, type, body, namespace, name, Indexes.from_kwargs(kwargs))


def _run_changed(type: str, body: kopf.Body, namespace: str, name: str, indexes: Indexes) -> None:
    metadata = ObjectMeta.model_validate(dict(body.get("metadata", {})))
    holders = sorted(indexes.holders.get((namespace, name), ()), key=lambda h: h.name)
    if type == "DELETED":
        forget_announcement(metadata.uid)
    else:
        sync_run_finalizer(namespace, name, indexes)
        if metadata.deletion_timestamp is not None and holders:
            announce_blocked_deletion(body, name, metadata.uid, [h.name for h in holders])
    phase = (body.get("status") or {}).get("phase")
    for holder in holders:
        exists = type != "DELETED"
        if lineages.needs_refresh(holder.lineage, run_exists=exists, run_phase=phase):
            with reconciling(KIND):
                reconcile(namespace, holder.name, verify=False)
