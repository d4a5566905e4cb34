"""Reconciling ModelVersions: the lineage snapshot, artifact verification and conditions.

What runs when:

- `reconcile_model_version` (create, resume, update of a ModelVersion) records the lineage and
  writes the conditions and observedGeneration. It never reads the artifact, so it is quick.
- `recheck_model_version` (a timer, every 30 seconds, first as soon as the object is seen) does
  nothing unless something is pending (a cheap check of the object alone). Otherwise it
  verifies the artifact when due (see `modelplane.core.artifacts`, and
  `modelplane.operator.artifactchecks` for asking the store) and takes a pending lineage
  again. An unreachable store raises `kopf.TemporaryError` with a doubling delay capped at five
  minutes: this timer is the one place that retries store outages.
- `model_version_event` (every event of a ModelVersion) keeps the finalizer on its Run
  (`modelplane.operator.runfinalizers`) and its `status.stages` current
  (`modelplane.operator.versionstages`), and honours `modelplane.io/verify-requested` at once.
- `run_event` (every event of a Run) keeps our finalizer on the Run while a ModelVersion names
  it, posts an Event on a Run that someone tried to delete saying who holds it, and takes the
  lineage of versions that wait for the run to appear or finish.

Everything is level-based: each step reads the current objects and indexes and converges, so
the operator can restart at any moment. Steps for one ModelVersion are serialised by the
in-process locks of `modelplane.operator.versionindexes`.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from modelplane.api import GROUP, VERSION, ModelVersion, ObjectMeta, Run
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
from modelplane.core.conditions import Reason
from modelplane.core.modelversions import Notice, assemble_status, notices, owned, pending
from modelplane.core.patches import merge_patch
from modelplane.operator import kube
from modelplane.operator.artifactchecks import check_artifact
from modelplane.operator.instrumentation import reconciling
from modelplane.operator.runfinalizers import (
    announce_blocked_deletion,
    forget_announcement,
    sync_run_finalizer,
)
from modelplane.operator.versionindexes import Indexes, locks, parse_version
from modelplane.operator.versionstages import sync_stages

logger = logging.getLogger(__name__)

PLURAL = "modelversions"
RUNS = "runs"
KIND = "ModelVersion"

RECHECK_INTERVAL = 30.0


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
    version = parse_version(body)
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
    version = parse_version(body)
    if version is None or namespace is None:
        return
    indexes = Indexes.from_kwargs(kwargs)
    if version.spec.run is not None:
        sync_run_finalizer(namespace, version.spec.run, indexes)
    if type == "DELETED":
        locks.forget(PLURAL, namespace, name)
        return
    if version.metadata.deletion_timestamp is not None:
        return
    sync_stages(namespace, name, version, indexes.stages)
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
    with locks.hold(PLURAL, namespace, name):
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
