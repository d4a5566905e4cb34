"""Handlers for ModelVersions: lineage snapshot, artifact verification, run finalizers, stages.

What runs when:

- `reconcile_model_version` (create, resume, update of a ModelVersion) records the lineage and
  writes the conditions and observedGeneration. It never reads the artifact, so it is quick.
- `recheck_model_version` (a timer, every 30 seconds, first as soon as the object is seen) does
  nothing unless something is pending (a cheap check of the object alone). Otherwise it
  verifies the artifact when due (see `modelplane.core.artifacts`) and takes a pending lineage
  again. An unreachable store raises `kopf.TemporaryError` with a doubling delay capped at five
  minutes: this timer is the one place that retries store outages.
- `model_version_event` (every event of a ModelVersion) keeps the finalizer on its Run and its
  `status.stages` current, and honours `modelplane.io/verify-requested` at once.
- `run_event` (every event of a Run) keeps our finalizer on the Run while a ModelVersion names
  it, posts an Event on a Run that someone tried to delete saying who holds it, and takes the
  lineage of versions that wait for the run to appear or finish.
- `model_stage_event` (every event of a ModelStage) calls `refresh_stages`.

Everything is level-based: each step reads the current objects and indexes and converges, so
the operator can restart at any moment. Steps for one ModelVersion, and for one Run's finalizer,
are serialised by in-process locks because the timer, the change handlers and the events of
other objects can reach the same object at once.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from modelplane.api import (
    GROUP,
    VERSION,
    ArtifactRef,
    ConditionStatus,
    ModelStage,
    ModelVersion,
    ObjectMeta,
    Run,
)
from modelplane.core import lineage as lineages
from modelplane.core.artifacts import (
    VERIFY_HANDLED_ANNOTATION,
    VERIFY_REQUESTED_ANNOTATION,
    ArtifactCheck,
    ArtifactOutcome,
    StoreOutage,
    VerificationPolicy,
    outcome_of,
    retry_delay,
    unchanged,
    verification_due,
)
from modelplane.core.conditions import ConditionType, Reason, find_condition
from modelplane.core.modelversions import Notice, assemble_status, notices, owned, pending
from modelplane.core.patches import merge_patch
from modelplane.core.stages import StagePointer, stages_of_version
from modelplane.metrics import ARTIFACT_BYTES_VERIFIED, ARTIFACT_VERIFICATION_FAILURES
from modelplane.operator import kube
from modelplane.operator.instrumentation import reconciling
from modelplane.store import StoreConfig, StoreError, StoreUnavailable, verify_artifact

logger = logging.getLogger(__name__)

PLURAL = "modelversions"
RUNS = "runs"
MODELSTAGES = "modelstages"
KIND = "ModelVersion"

RUN_FINALIZER = "modelplane.io/referenced-by-model-version"
"""Kept on a Run while a ModelVersion names it, so the lineage's source cannot be deleted."""

RECHECK_INTERVAL = 30.0
_FINALIZER_ATTEMPTS = 5


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
    """The indexes this module keeps, as kopf passes them to every handler's keyword arguments.

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


_locks = _KeyedLocks()

# Runs whose blocked deletion has been announced, by uid, with the holders named: an Event is
# posted again only when the holders change.
_announced: dict[str, tuple[str, ...]] = {}
_announced_guard = threading.Lock()


# Indexes ---------------------------------------------------------------------------------------


@kopf.index(GROUP, VERSION, PLURAL)
def modelversions_by_run(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[tuple[str, str], RunHolder] | None:
    """ModelVersions by (namespace, run), leaving out those being deleted."""
    version = _parse_version(body)
    if version is None or namespace is None or version.spec.run is None:
        return None
    if version.metadata.deletion_timestamp is not None or version.metadata.name is None:
        return None
    recorded = find_condition(
        version.status.conditions if version.status else None, ConditionType.LINEAGE_RECORDED
    )
    state = (recorded.status, recorded.reason) if recorded is not None else None
    return {(namespace, version.spec.run): RunHolder(version.metadata.name, state)}


@kopf.index(GROUP, VERSION, PLURAL)
def modelversions_by_model(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[tuple[str, str], VersionStages] | None:
    """ModelVersions by (namespace, model), with the stages their status lists."""
    version = _parse_version(body)
    if version is None or namespace is None or version.metadata.name is None:
        return None
    stages = tuple(version.status.stages or ()) if version.status else ()
    entry = VersionStages(version.metadata.name, version.spec.version, stages)
    return {(namespace, version.spec.model): entry}


@kopf.index(GROUP, VERSION, MODELSTAGES)
def modelstages_by_model(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[tuple[str, str], StagePointer] | None:
    """ModelStages by (namespace, model): the stage name and its live version."""
    try:
        stage = ModelStage.from_object(body)
    except ValidationError:
        return None
    if namespace is None:
        return None
    live = stage.status.live_version if stage.status is not None else None
    return {(namespace, stage.spec.model): StagePointer(stage.spec.stage, live)}


@kopf.index(GROUP, VERSION, RUNS)
def run_finalizers(
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


# Startup --------------------------------------------------------------------------------------


@functools.cache
def verification_policy() -> VerificationPolicy:
    """The re-verification intervals from the operator's environment."""
    return VerificationPolicy.from_env(os.environ)


@kopf.on.startup()
def check_verification_policy(**_: Any) -> None:
    """Fails the start on a bad interval rather than every reconciliation later."""
    verification_policy()


# ModelVersion handlers ---------------------------------------------------------------------------


@kopf.on.resume(GROUP, VERSION, PLURAL, id="reconcile-resume")
@kopf.on.create(GROUP, VERSION, PLURAL, id="reconcile-create")
@kopf.on.update(GROUP, VERSION, PLURAL, id="reconcile-update")
def reconcile_model_version(namespace: str | None, name: str, **_: Any) -> None:
    """Records the lineage and writes the conditions; the timer verifies the artifact."""
    if namespace is None:
        return
    with reconciling(KIND):
        reconcile(namespace, name, verify=False)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RECHECK_INTERVAL, id="recheck")
def recheck_model_version(
    body: kopf.Body, namespace: str | None, name: str, retry: int = 0, **_: Any
) -> None:
    """Verifies the artifact when due and takes a pending lineage; retries store outages."""
    version = _parse_version(body)
    if version is None or namespace is None or version.metadata.deletion_timestamp is not None:
        return
    if not pending(version, now=datetime.now(UTC), policy=verification_policy()):
        return
    with reconciling(KIND):
        outage = reconcile(namespace, name, verify=True)
        if outage is not None:
            raise kopf.TemporaryError(
                f"artifact store unreachable: {outage.message}", delay=retry_delay(retry)
            )


@kopf.on.event(GROUP, VERSION, PLURAL)
def model_version_event(
    *, type: str, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
) -> None:
    """Keeps the Run's finalizer and status.stages current; honours verify requests at once."""
    version = _parse_version(body)
    if version is None or namespace is None:
        return
    indexes = Indexes.from_kwargs(kwargs)
    if version.spec.run is not None:
        sync_run_finalizer(namespace, version.spec.run, indexes)
    if type == "DELETED":
        _locks.forget(PLURAL, namespace, name)
        return
    if version.metadata.deletion_timestamp is not None:
        return
    _sync_stages(namespace, name, version, indexes.stages)
    annotations = version.metadata.annotations or {}
    requested = annotations.get(VERIFY_REQUESTED_ANNOTATION)
    if requested is not None and requested != annotations.get(VERIFY_HANDLED_ANNOTATION):
        with reconciling(KIND):
            # An outage is left to the timer, which sees ArtifactVerified=Unknown and backs off.
            reconcile(namespace, name, verify=True)


def reconcile(namespace: str, name: str, *, verify: bool) -> StoreOutage | None:
    """Brings one ModelVersion's lineage, artifact and conditions up to date.

    With `verify`, the artifact is checked when due. Returns the outage when the store could
    not be reached, for the caller to retry; returns None otherwise.
    """
    with _locks.hold(PLURAL, namespace, name):
        obj = kube.get(PLURAL, namespace, name)
        if obj is None:
            return None
        try:
            version = ModelVersion.from_object(obj)
        except ValidationError as error:
            logger.warning("ModelVersion %s/%s cannot be parsed: %s", namespace, name, error)
            kopf.warn(_body(obj), reason=Reason.INVALID_SPEC, message=_short(error))
            return None
        if version.metadata.deletion_timestamp is not None:
            return None
        now = datetime.now(UTC)
        previous = version.status
        lineage = _lineage(namespace, version, now)
        artifact, checked = _artifact(version, verify=verify, now=now)
        status = assemble_status(
            previous,
            generation=version.metadata.generation,
            lineage=lineage,
            artifact=artifact,
            now=now,
        )
        patch = merge_patch(owned(previous), owned(status))
        if patch:
            _patch_status(namespace, name, patch)
        if checked is not None:
            _mark_request_handled(namespace, name, version)
        for notice in notices(previous.conditions if previous else None, status.conditions):
            _post(obj, notice)
        return checked if isinstance(checked, StoreOutage) else None


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
    version: ModelVersion, *, verify: bool, now: datetime
) -> tuple[ArtifactOutcome, ArtifactCheck | StoreOutage | None]:
    """The artifact outcome, and the check made (None when none was due or allowed)."""
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
    logger.info("verifying the artifact of %s (%s)", version.metadata.name, due)
    check = check_artifact(version.spec.artifact)
    return outcome_of(check, previous.artifact if previous else None, now=now), check


ALLOW_FILE_ARTIFACTS_ENV = "MODELPLANE_ALLOW_FILE_ARTIFACTS"
FILE_ARTIFACTS_DISABLED = "FileArtifactsDisabled"


def check_artifact(ref: ArtifactRef) -> ArtifactCheck | StoreOutage:
    """Asks the store for a verdict on `ref` and counts the work in the metrics.

    A store that cannot be asked, or that refuses in a way that says nothing about the
    artifact, gives a `StoreOutage`: the artifact is then never reported verified.
    """
    if ref.uri.startswith("file://") and os.environ.get(ALLOW_FILE_ARTIFACTS_ENV) != "1":
        # Reading paths on the operator's own filesystem would let anyone who may create a
        # ModelVersion learn which files exist there, and their sizes.
        ARTIFACT_VERIFICATION_FAILURES.labels(reason=FILE_ARTIFACTS_DISABLED).inc()
        return ArtifactCheck(
            verified=False,
            reason=FILE_ARTIFACTS_DISABLED,
            message=f"file:// artifacts are disabled in this operator: {ref.uri} was not read "
            f"(set {ALLOW_FILE_ARTIFACTS_ENV}=1 on a single-machine install)",
            size=None,
            digest=None,
        )
    try:
        result = verify_artifact(ref.uri, ref.digest, config=StoreConfig.from_env())
    except StoreUnavailable as error:
        ARTIFACT_VERIFICATION_FAILURES.labels(reason=Reason.STORE_UNREACHABLE).inc()
        return StoreOutage(str(error))
    except StoreError as error:
        # A bad store setting or an unexpected answer: no verdict on the artifact either.
        ARTIFACT_VERIFICATION_FAILURES.labels(reason=Reason.STORE_UNREACHABLE).inc()
        return StoreOutage(f"{type(error).__name__}: {error}")
    if result.actual_digest is not None and result.size:
        ARTIFACT_BYTES_VERIFIED.inc(result.size)
    if not result.verified:
        ARTIFACT_VERIFICATION_FAILURES.labels(reason=str(result.reason)).inc()
    return ArtifactCheck(
        verified=result.verified,
        reason=str(result.reason),
        message=result.message,
        size=result.size,
        digest=result.actual_digest,
    )


def _mark_request_handled(namespace: str, name: str, version: ModelVersion) -> None:
    """Copies verify-requested to verify-handled once a check has been made for it."""
    annotations = version.metadata.annotations or {}
    requested = annotations.get(VERIFY_REQUESTED_ANNOTATION)
    if requested is None or requested == annotations.get(VERIFY_HANDLED_ANNOTATION):
        return
    patch = {"metadata": {"annotations": {VERIFY_HANDLED_ANNOTATION: requested}}}
    try:
        kube.custom_objects().patch_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, patch
        )
    except ApiException as error:
        if error.status != 404:
            raise


# Stages -----------------------------------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, MODELSTAGES)
def model_stage_event(*, body: kopf.Body, namespace: str | None, **kwargs: Any) -> None:
    """A ModelStage changed (or went away): its model's versions list their stages again."""
    try:
        stage = ModelStage.from_object(body)
    except ValidationError:
        return
    if namespace is None:
        return
    refresh_stages(namespace, stage.spec.model, Indexes.from_kwargs(kwargs))


def refresh_stages(namespace: str, model: str, indexes: Indexes) -> None:
    """Writes `status.stages` of every version of `model` whose listed stages are out of date.

    It runs on every ModelStage event already (status.liveVersion included). A ModelStage
    handler may also call it right after changing the live version:
    `refresh_stages(namespace, model, Indexes.from_kwargs(kwargs))`.
    """
    pointers = list(indexes.stages.get((namespace, model), ()))
    for entry in list(indexes.versions.get((namespace, model), ())):
        desired = stages_of_version(entry.version, pointers)
        if list(entry.stages) != desired:
            _write_stages(namespace, entry.name, desired)


def _sync_stages(namespace: str, name: str, version: ModelVersion, stages: StagesIndex) -> None:
    pointers = list(stages.get((namespace, version.spec.model), ()))
    desired = stages_of_version(version.spec.version, pointers)
    current = list(version.status.stages or ()) if version.status else []
    if current != desired:
        _write_stages(namespace, name, desired)


def _write_stages(namespace: str, name: str, stages: list[str]) -> None:
    logger.info("ModelVersion %s/%s is live in %s", namespace, name, stages or "no stage")
    _patch_status(namespace, name, {"stages": stages or None})


# Runs -------------------------------------------------------------------------------------------


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
        _forget_announcement(metadata.uid)
    else:
        sync_run_finalizer(namespace, name, indexes)
        if metadata.deletion_timestamp is not None and holders:
            _announce_blocked_deletion(body, name, metadata.uid, [h.name for h in holders])
    phase = (body.get("status") or {}).get("phase")
    for holder in holders:
        exists = type != "DELETED"
        if lineages.needs_refresh(holder.lineage, run_exists=exists, run_phase=phase):
            with reconciling(KIND):
                reconcile(namespace, holder.name, verify=False)


def sync_run_finalizer(namespace: str, run: str, indexes: Indexes) -> None:
    """Adds our finalizer to `run` while a ModelVersion names it and removes it afterwards.

    Decided from the indexes, so it needs no list; a stale index is corrected by the watch
    event that the next change of either side brings. The write is guarded by the Run's
    resourceVersion and retried on conflict.
    """
    with _locks.hold(RUNS, namespace, run):
        for _attempt in range(_FINALIZER_ATTEMPTS):
            wanted = bool(indexes.holders.get((namespace, run)))
            known = list(indexes.runs.get((namespace, run), ()))
            if not known or all(state.finalized == wanted for state in known):
                return
            if _write_run_finalizer(namespace, run, wanted=wanted):
                return
        logger.warning("gave up on the finalizer of run %s/%s after conflicts", namespace, run)


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


def _announce_blocked_deletion(
    body: kopf.Body, name: str, uid: str | None, holders: list[str]
) -> None:
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


def _forget_announcement(uid: str | None) -> None:
    if uid is not None:
        with _announced_guard:
            _announced.pop(uid, None)


# Helpers ----------------------------------------------------------------------------------------


def _parse_version(body: kopf.Body) -> ModelVersion | None:
    try:
        return ModelVersion.from_object(body)
    except ValidationError:
        return None


def _patch_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    """Merge-patches status; a version deleted meanwhile is no error."""
    try:
        kube.patch_status(PLURAL, namespace, name, status)
    except ApiException as error:
        if error.status != 404:
            raise


def _body(obj: dict[str, Any]) -> kopf.Body:
    """kopf's view of an object read with the kubernetes client, for posting Events on it."""
    return kopf.Body(cast("kopf.RawBody", obj))


def _post(obj: dict[str, Any], notice: Notice) -> None:
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
