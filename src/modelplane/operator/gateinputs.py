"""Fetching what a ModelStage's gates are evaluated against: the version and the other stages.

The ModelStage handler (status path) and the admission webhook both call this module; the
evaluation itself is pure (`modelplane.core.gates`, `modelplane.core.gateverdicts`). Reads go
through the operator's shared synchronous client (`modelplane.operator.kube`), so call the
fetching functions from a thread (kopf runs sync handlers in its pool); the ``cached_`` ones
read only the watch cache and may run on the event loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from pydantic import ValidationError

from modelplane.api import (
    GROUP,
    VERSION,
    Approval,
    ModelStage,
    ModelVersion,
    model_version_name,
)
from modelplane.core import approvals as approvals_
from modelplane.core.gates import GateInputs, build_gate_inputs
from modelplane.core.gateverdicts import reads_other_stages
from modelplane.operator import kube
from modelplane.operator.watchcache import MODEL_VERSIONS, STAGES

logger = logging.getLogger(__name__)

MODELVERSIONS = "modelversions"
MODELSTAGES = "modelstages"


def fetch_model_version(
    namespace: str, model: str, version: int, *, timeout: float | None = None, cached: bool = False
) -> ModelVersion | None:
    """The ModelVersion `<model>-v<version>`, or None when it does not exist.

    ``cached`` reads the watch cache (`modelplane.operator.watchcache`) once the object has
    been read: for reconciliations, whose guarded writes make a stale read harmless. Admission
    refuses only on a read of the server (see `cached_admission_reads`): a refusal based on a
    stale copy would be final for the writer.

    An object that does not parse (it cannot: the CRD validates it) raises ValidationError;
    other API errors raise `kubernetes.client.ApiException`.
    """
    name = model_version_name(model, version)

    def fetch() -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = kube.custom_objects().get_namespaced_custom_object(
                GROUP, VERSION, namespace, MODELVERSIONS, name, _request_timeout=timeout
            )
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return found

    raw = MODEL_VERSIONS.get(namespace, name, fetch) if cached else fetch()
    if raw is None:
        return None
    return ModelVersion.from_object(raw)


def fetch_model_stages(
    namespace: str, model: str, *, timeout: float | None = None
) -> list[ModelStage]:
    """Every ModelStage of `model` in `namespace`; objects that do not parse are skipped."""
    listing: Mapping[str, Any] = kube.custom_objects().list_namespaced_custom_object(
        GROUP, VERSION, namespace, MODELSTAGES, _request_timeout=timeout
    )
    return _stages_of(namespace, model, listing.get("items", []))


def _stages_of(namespace: str, model: str, items: Iterable[Mapping[str, Any]]) -> list[ModelStage]:
    stages: list[ModelStage] = []
    for item in items:
        if item.get("spec", {}).get("model") != model:
            continue
        try:
            stages.append(ModelStage.from_object(item))
        except ValidationError:
            name = item.get("metadata", {}).get("name")
            logger.warning("skipping ModelStage %s/%s: it does not parse", namespace, name)
    return stages


AdmissionReads = tuple[ModelVersion | None, list[ModelStage]]
"""What the gates webhook judges a version change by: the version named (None: absent) and
the model's stages when its gates read them (else empty)."""


def cached_admission_reads(namespace: str, stage: ModelStage) -> AdmissionReads | None:
    """The admission reads from the watch cache; None when the version is not cached.

    A cached copy may be a moment old, so the webhook admits on it but refuses only on what
    `fetch_admission_reads` reads from the server."""
    model, version = stage.spec.model, stage.spec.version
    raw = MODEL_VERSIONS.peek(namespace, model_version_name(model, version))
    if raw is None:
        return None
    stages = []
    if reads_other_stages(stage):
        stages = _stages_of(namespace, model, STAGES.bodies(namespace))
    return ModelVersion.from_object(raw), stages


def fetch_admission_reads(
    namespace: str, stage: ModelStage, *, timeout: float, keep: bool
) -> AdmissionReads:
    """The admission reads from the API server. ``keep`` has the version kept in the watch
    cache from then on (for one the cache did not hold)."""
    model, version = stage.spec.model, stage.spec.version
    model_version = fetch_model_version(namespace, model, version, timeout=timeout, cached=keep)
    if model_version is None or not reads_other_stages(stage):
        return model_version, []
    return model_version, fetch_model_stages(namespace, model, timeout=timeout)


def collect_gate_inputs(
    namespace: str, stage: ModelStage, version: int, *, now: datetime | None = None
) -> GateInputs | None:
    """The gate inputs of `version` as a candidate for `stage`; None when the version is missing.

    Readiness of the version is a separate question: see `modelplane.core.gates.version_problem`
    and `fetch_model_version`.
    """
    model_version = fetch_model_version(namespace, stage.spec.model, version, cached=True)
    if model_version is None:
        return None
    return build_gate_inputs(
        stage,
        model_version,
        fetch_model_stages(namespace, stage.spec.model),
        now=now or datetime.now(UTC),
    )


def stage_approvals(stage: ModelStage) -> list[Approval]:
    """The approvals of the stage's desired version, for `status.approvals`, oldest first."""
    return approvals_.approvals_of(stage.metadata.annotations, version=stage.spec.version)
