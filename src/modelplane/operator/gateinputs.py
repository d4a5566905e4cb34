"""Fetching what a ModelStage's gates are evaluated against: the version and the other stages.

The ModelStage handler (status path) and the admission webhook both call this module; the
evaluation itself is pure (`modelplane.core.gates`). Reads go through the operator's shared
synchronous client (`modelplane.operator.kube`), so call these from a sync handler (kopf runs
those in its thread pool).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
from modelplane.operator import kube
from modelplane.operator.watchcache import MODEL_VERSIONS

logger = logging.getLogger(__name__)

MODELVERSIONS = "modelversions"
MODELSTAGES = "modelstages"


def fetch_model_version(
    namespace: str, model: str, version: int, *, timeout: float | None = None, cached: bool = False
) -> ModelVersion | None:
    """The ModelVersion `<model>-v<version>`, or None when it does not exist.

    ``cached`` reads the watch cache (`modelplane.operator.watchcache`) once the object has
    been read: for reconciliations, whose guarded writes make a stale read harmless. Admission
    reads the server: a refusal based on a stale copy would be final for the writer.

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
    stages: list[ModelStage] = []
    for item in listing.get("items", []):
        if item.get("spec", {}).get("model") != model:
            continue
        try:
            stages.append(ModelStage.from_object(item))
        except ValidationError:
            name = item.get("metadata", {}).get("name")
            logger.warning("skipping ModelStage %s/%s: it does not parse", namespace, name)
    return stages


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
