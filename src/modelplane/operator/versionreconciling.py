"""Reconciling one ModelVersion: its lineage snapshot, artifact verification and conditions.

`reconcile` brings one version's status up to date from the object (as a watch event showed
it, or read), the version's Run and, when due and allowed, a check of its artifact (see
`modelplane.core.artifacts`, and `modelplane.operator.artifactchecks` for asking the store).
The status write carries the resourceVersion it was computed from; on a conflict the object
is read again. The event handlers (`modelplane.operator.modelversions`) and the looks
(`modelplane.operator.versionlooks`) call it; steps for one version are serialised by the
in-process locks of `modelplane.operator.versionindexes`.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from modelplane.api import GROUP, VERSION, ModelVersion, ModelVersionStatus, Run
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
from modelplane.operator import kube
from modelplane.operator.artifactchecks import check_artifact
from modelplane.operator.versionindexes import locks

logger = logging.getLogger(__name__)

PLURAL = "modelversions"
RUNS = "runs"
_CONFLICT_ATTEMPTS = 3


@functools.cache
def verification_policy() -> VerificationPolicy:
    """The re-verification intervals from the operator's environment."""
    return VerificationPolicy.from_env(os.environ)


@kopf.on.startup()
def check_verification_policy(**_: Any) -> None:
    """Fails the start on a bad interval rather than every reconciliation later."""
    verification_policy()


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
    status, patch, notes = status_of(version, lineage, artifact, now)
    if patch and not _patch_status(namespace, name, version.metadata.resource_version, patch):
        return None, check
    if check is not None:
        version = _mark_request_handled(namespace, name, version)
    for notice in notes:
        _post(obj, notice)
    written = version.model_copy(update={"status": status})
    return Reconciled(written, check if isinstance(check, StoreOutage) else None), check


def status_of(
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
