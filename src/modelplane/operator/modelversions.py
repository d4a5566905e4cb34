"""Reconciling ModelVersions: the lineage snapshot, artifact verification and conditions.

What runs when:

- `model_version_event` (every event of a ModelVersion, the listing at a start included)
  records the lineage and writes the conditions and observedGeneration, keeps the finalizer on
  the version's Run (`modelplane.operator.runfinalizers`) and its `status.stages` current
  (`modelplane.operator.versionstages`), honours `modelplane.io/verify-requested` at once, and
  plans the next look. It works from the object in the event and decides in the event loop
  whatever needs no API call, so a restart over 10,000 settled versions reads and writes none of
  them and runs no thread for them. Its status write carries the resourceVersion it was computed
  from; on a conflict the object is read again.
- `look` (from the schedule of `modelplane.core.rechecks`, at most `RECHECK_WORKERS` at once)
  verifies the artifact when due (see `modelplane.core.artifacts`, and
  `modelplane.operator.artifactchecks` for asking the store) and takes a pending lineage again:
  at once for a new version, every `RECHECK_INTERVAL` while its lineage waits for its run, when
  its verdict is old enough to be checked again, and after a delay doubling up to five minutes
  while the store cannot be reached. The schedule is the one place that retries store outages.
- `run_event` (every event of a Run) keeps our finalizer on the Run while a ModelVersion names
  it, posts an Event on a Run that someone tried to delete saying who holds it, and takes the
  lineage of versions that wait for the run to appear or finish.

There is no kopf change handler (create/update/resume) and no kopf timer for ModelVersions:
kopf's change detection copies every object at every event, a timer keeps an asyncio task and a
copy of each object in memory, and the timer's finalizer had to be written to every version.
The first start of this version of the operator removes that finalizer (`modelplane.io/finalizer`)
from existing ModelVersions, one write each, once.

Everything is level-based: each step reads the current objects and indexes and converges, so
the operator can restart at any moment. Steps for one ModelVersion are serialised by the
in-process locks of `modelplane.operator.versionindexes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from modelplane.api import GROUP, VERSION, ModelVersion, ModelVersionStatus, ObjectMeta, Run
from modelplane.core import lineage as lineages
from modelplane.core.artifacts import (
    VERIFY_HANDLED_ANNOTATION,
    VERIFY_REQUESTED_ANNOTATION,
    ArtifactCheck,
    ArtifactOutcome,
    StoreOutage,
    VerificationPolicy,
    outcome_of,
    unchanged,
    verification_due,
)
from modelplane.core.conditions import Reason
from modelplane.core.modelversions import Notice, assemble_status, notices, owned
from modelplane.core.patches import merge_patch
from modelplane.core.rechecks import Rechecks, next_look
from modelplane.core.runs import Reference, RefKind
from modelplane.operator import kube
from modelplane.operator.artifactchecks import check_artifact
from modelplane.operator.instrumentation import reconciling
from modelplane.operator.runfinalizers import (
    announce_blocked_deletion,
    forget_announcement,
    run_finalizer_settled,
    sync_run_finalizer,
)
from modelplane.operator.runs import refresh_referrers
from modelplane.operator.versionindexes import Indexes, locks, parse_version
from modelplane.operator.versionstages import stages_wanted, write_stages

logger = logging.getLogger(__name__)

PLURAL = "modelversions"
RUNS = "runs"
KIND = "ModelVersion"

RECHECK_INTERVAL = 30.0
"""Seconds between looks at a version whose lineage waits for its run (and the least time
between two looks at any version)."""
RECHECK_TICK = 1.0
"""How often the schedule is read for versions that are due."""
RECHECK_WORKERS = 8
"""Looks at once: they read artifacts, so they get threads of their own rather than kopf's."""
_CONFLICT_ATTEMPTS = 3

rechecks: Rechecks[tuple[str, str]] = Rechecks(RECHECK_INTERVAL)
"""When each ModelVersion, by (namespace, name), is next looked at."""


# Startup --------------------------------------------------------------------------------------


@functools.cache
def verification_policy() -> VerificationPolicy:
    """The re-verification intervals from the operator's environment."""
    return VerificationPolicy.from_env(os.environ)


@kopf.on.startup()
def check_verification_policy(**_: Any) -> None:
    """Fails the start on a bad interval rather than every reconciliation later."""
    verification_policy()


class _Looker:
    """Runs the looks that `rechecks` says are due, in threads of its own.

    It starts with the first ModelVersion event rather than at the operator's start, so that its
    task carries the context of kopf's object processing: kopf posts Events (`kopf.info`) only
    from there.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def ensure_started(self) -> None:
        if self._task is None:
            self._executor = ThreadPoolExecutor(
                max_workers=RECHECK_WORKERS, thread_name_prefix="modelversion-look"
            )
            self._task = asyncio.create_task(self._run(self._executor), name="modelversion looks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    @staticmethod
    async def _run(executor: ThreadPoolExecutor) -> None:
        loop = asyncio.get_running_loop()
        while True:
            for key in rechecks.take_due(time.monotonic()):
                # `look` logs its own errors and never raises.
                loop.run_in_executor(executor, contextvars.copy_context().run, look, key)
            await asyncio.sleep(RECHECK_TICK)


_looker = _Looker()


@kopf.on.cleanup()
async def stop_looks(**_: Any) -> None:
    await _looker.stop()


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
    _looker.ensure_started()
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
        rechecks.forget(key)
        return
    if version is not None and version.metadata.deletion_timestamp is not None:
        rechecks.forget(key)
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
    rechecks.plan(key, _on_clock(version, now), now=now)


async def _in_thread(key: tuple[str, str], fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
    """Runs a blocking step of the event handler in a thread. A failure is logged and leaves
    the version to a look soon, which reconciles everything again."""
    try:
        await asyncio.to_thread(fn, *args, **kw)
    except Exception:
        logger.exception("ModelVersion %s/%s: %s failed; looking again soon", *key, fn.__name__)
        rechecks.plan(key, time.monotonic(), now=time.monotonic())


def look(key: tuple[str, str]) -> float | None:
    """Looks at one version now: verifies its artifact when due and takes a pending lineage.

    Plans the next look (`rechecks.done`), after a growing delay when the store could not be
    reached, and returns when (None for a version gone meanwhile). Never raises: one version's
    failure must not stop the others.
    """
    namespace, name = key
    due: float | None = None
    outage = False
    try:
        with reconciling(KIND):
            result = reconcile(namespace, name, verify=True)
            due = _on_clock(result.version, time.monotonic())
            if result.outage is not None:
                # Counted as a retry, as kopf counts a handler's temporary error.
                raise kopf.TemporaryError(f"artifact store unreachable: {result.outage.message}")
    except kopf.TemporaryError as error:
        logger.info("ModelVersion %s/%s: %s; trying again later", namespace, name, error)
        outage = True
    except Exception:
        logger.exception("looking at ModelVersion %s/%s failed; trying again", namespace, name)
        outage = True
    return rechecks.done(key, due, now=time.monotonic(), outage=outage)


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
    _status, patch, notes = _status_of(version, lineage, unchanged(version.status), now)
    return not patch and not notes


def _on_clock(version: ModelVersion | None, clock: float) -> float | None:
    """`next_look` of `version` as a time on the monotonic clock of `rechecks`, which reads
    `clock` now: exactly `clock` when something is pending."""
    if version is None:
        return None
    now = datetime.now(UTC)
    at = next_look(version, now=now, policy=verification_policy())
    return None if at is None else clock + (at - now).total_seconds()


@dataclass(frozen=True)
class Reconciled:
    """What `reconcile` left: the version as written (None when it is gone, is being deleted
    or does not parse), and the outage when the store could not be reached."""

    version: ModelVersion | None
    outage: StoreOutage | None = None


def reconcile(
    namespace: str, name: str, *, verify: bool, seen: Mapping[str, Any] | None = None
) -> Reconciled:
    """Brings one ModelVersion's lineage, artifact and conditions up to date.

    `seen` is the object as a watch event showed it; without it, the object is read. The status
    write is guarded by the resourceVersion it was computed from: when the object changed
    meanwhile, it is read again and the status computed anew. With `verify`, the artifact is
    checked when due (once, whatever the conflicts).
    """
    with locks.hold(PLURAL, namespace, name):
        obj = seen
        check: ArtifactCheck | StoreOutage | None = None
        for _attempt in range(_CONFLICT_ATTEMPTS):
            if obj is None:
                obj = kube.get(PLURAL, namespace, name)
                if obj is None:
                    return Reconciled(None)
            result, check = _reconcile_object(namespace, name, obj, verify=verify, check=check)
            if result is not None:
                return result
            obj = None  # changed meanwhile: read it again
        logger.warning("ModelVersion %s/%s kept changing; its next event retries", namespace, name)
        return Reconciled(None)


def _reconcile_object(
    namespace: str,
    name: str,
    obj: Mapping[str, Any],
    *,
    verify: bool,
    check: ArtifactCheck | StoreOutage | None,
) -> tuple[Reconciled | None, ArtifactCheck | StoreOutage | None]:
    """Reconciles `obj`; None (with the check made) when the write met a newer object."""
    try:
        version = ModelVersion.from_object(obj)
    except ValidationError as error:
        logger.warning("ModelVersion %s/%s cannot be parsed: %s", namespace, name, error)
        kopf.warn(_body(obj), reason=Reason.INVALID_SPEC, message=_short(error))
        return Reconciled(None), check
    if version.metadata.deletion_timestamp is not None:
        return Reconciled(None), check
    now = datetime.now(UTC)
    lineage = _lineage(namespace, version, now)
    artifact, check = _artifact(version, verify=verify, now=now, check=check)
    status, patch, notes = _status_of(version, lineage, artifact, now)
    if patch and not _patch_status(namespace, name, version.metadata.resource_version, patch):
        return None, check
    if check is not None:
        version = _mark_request_handled(namespace, name, version)
    for notice in notes:
        _post(obj, notice)
    written = version.model_copy(update={"status": status})
    return Reconciled(written, check if isinstance(check, StoreOutage) else None), check


def _status_of(
    version: ModelVersion,
    lineage: lineages.LineageOutcome,
    artifact: ArtifactOutcome,
    now: datetime,
) -> tuple[ModelVersionStatus, dict[str, Any], list[Notice]]:
    """The new status, the merge patch from the current one, and the Events to post."""
    previous = version.status
    status = assemble_status(
        previous,
        generation=version.metadata.generation,
        lineage=lineage,
        artifact=artifact,
        now=now,
    )
    patch = merge_patch(owned(previous), owned(status))
    return status, patch, notices(previous.conditions if previous else None, status.conditions)


def _lineage(namespace: str, version: ModelVersion, now: datetime) -> lineages.LineageOutcome:
    """The lineage outcome, reading the run unless the snapshot is final or there is no run."""
    run_name = version.spec.run
    run: Run | None = None
    error: str | None = None
    if run_name is not None and not lineages.is_final(version.status, run_name):
        obj = kube.get(RUNS, namespace, run_name)
        if obj is not None:
            try:
                run = Run.from_object(obj)
            except ValidationError as invalid:
                error = _short(invalid)
    return lineages.decide(
        namespace=namespace,
        run_name=run_name,
        run=run,
        previous=version.status,
        now=now,
        run_error=error,
    )


def _artifact(
    version: ModelVersion,
    *,
    verify: bool,
    now: datetime,
    check: ArtifactCheck | StoreOutage | None = None,
) -> tuple[ArtifactOutcome, ArtifactCheck | StoreOutage | None]:
    """The artifact outcome, and the check made (None when none was due or allowed). A `check`
    made moments ago for the same version is used rather than asking the store again."""
    previous = version.status
    annotations = version.metadata.annotations or {}
    due = verification_due(
        previous,
        now=now,
        policy=verification_policy(),
        requested=annotations.get(VERIFY_REQUESTED_ANNOTATION),
        handled=annotations.get(VERIFY_HANDLED_ANNOTATION),
    )
    if not verify or due is None:
        return unchanged(previous), None
    if check is None:
        logger.info("verifying the artifact of %s (%s)", version.metadata.name, due)
        check = check_artifact(version.spec.artifact)
    return outcome_of(check, previous.artifact if previous else None, now=now), check


def _mark_request_handled(namespace: str, name: str, version: ModelVersion) -> ModelVersion:
    """Copies verify-requested to verify-handled once a check has been made for it; returns
    the version with the annotation."""
    annotations = version.metadata.annotations or {}
    requested = annotations.get(VERIFY_REQUESTED_ANNOTATION)
    if requested is None or requested == annotations.get(VERIFY_HANDLED_ANNOTATION):
        return version
    patch = {"metadata": {"annotations": {VERIFY_HANDLED_ANNOTATION: requested}}}
    try:
        kube.custom_objects().patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, patch
        )
    except ApiException as error:
        if error.status != 404:
            raise
    metadata = version.metadata.model_copy(
        update={"annotations": {**annotations, VERIFY_HANDLED_ANNOTATION: requested}}
    )
    return version.model_copy(update={"metadata": metadata})


# Run events -------------------------------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, RUNS)
def run_event(
    *, type: str, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
) -> None:
    """Keeps the Run's finalizer, explains a blocked deletion, refreshes waiting lineages."""
    if namespace is None:
        return
    indexes = Indexes.from_kwargs(kwargs)
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


# Helpers ----------------------------------------------------------------------------------------


def _patch_status(
    namespace: str, name: str, resource_version: str | None, status: dict[str, Any]
) -> bool:
    """Merge-patches status if the object is still at `resource_version`; False if it is not
    (read it again). A version deleted meanwhile is no error."""
    if resource_version is None:
        kube.patch_status(PLURAL, namespace, name, status)
        return True
    try:
        return kube.patch_status_at(PLURAL, namespace, name, resource_version, status)
    except ApiException as error:
        if error.status != 404:
            raise
    return True


def _body(obj: Mapping[str, Any]) -> kopf.Body:
    """kopf's view of an object read with the kubernetes client, for posting Events on it."""
    if isinstance(obj, kopf.Body):
        return obj
    return kopf.Body(cast("kopf.RawBody", obj))


def _post(obj: Mapping[str, Any], notice: Notice) -> None:
    if notice.type == "Warning":
        kopf.warn(_body(obj), reason=notice.reason, message=notice.message)
    else:
        kopf.info(_body(obj), reason=notice.reason, message=notice.message)
    logger.info("%s %s: %s", obj["metadata"]["name"], notice.reason, notice.message)


def _short(error: ValidationError) -> str:
    problems: Iterable[str] = (
        f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
        for item in error.errors()[:5]
    )
    return "; ".join(problems)
