"""The modelplane API: pydantic models of the four kinds, the single source of the CRDs.

Parse an object read from the API server (a dict, or kopf's body) with `Kind.model_validate`
(or `Kind.from_object`), or with `parse_object` when the kind is not known in advance; dump a
model with `.to_manifest()` (a whole object) or `.to_dict()` (any part, e.g. a status patch).
Both use the wire's camelCase names and leave out fields that are None.

The CRDs in crds/ are generated from these models: `uv run python -m modelplane.api.crdgen`.
This package imports neither kopf nor boto3, so every layer can use it.
"""

from collections.abc import Mapping
from typing import Any

from modelplane.api.bases import (
    API_VERSION,
    CATEGORY,
    GROUP,
    VERSION,
    Condition,
    ConditionStatus,
    KubeModel,
    ObjectMeta,
    OwnerReference,
    Resource,
)
from modelplane.api.experiments import (
    BestRun,
    Experiment,
    ExperimentSpec,
    ExperimentStatus,
    Objective,
    RunCounts,
)
from modelplane.api.fields import parse_duration
from modelplane.api.modelstages import (
    Approval,
    Approvals,
    GateOp,
    GateResult,
    Gates,
    GateType,
    HistoryEntry,
    HistoryResult,
    MetricGate,
    ModelStage,
    ModelStageSpec,
    ModelStageStatus,
    RequireStage,
    RollbackPolicy,
    RolloutPhase,
    RolloutStatus,
    Serving,
    model_stage_name,
)
from modelplane.api.modelversions import (
    ArtifactRef,
    ArtifactStatus,
    Evaluation,
    Lineage,
    ModelVersion,
    ModelVersionSpec,
    ModelVersionStatus,
    Signature,
    TensorSpec,
    model_version_name,
)
from modelplane.api.runs import (
    CodeRef,
    DataInput,
    Environment,
    MetricSummary,
    Run,
    RunPhase,
    RunSpec,
    RunStatus,
)

AnyResource = Experiment | Run | ModelVersion | ModelStage

KINDS: dict[str, type[AnyResource]] = {
    "Experiment": Experiment,
    "Run": Run,
    "ModelVersion": ModelVersion,
    "ModelStage": ModelStage,
}


def parse_object(obj: Mapping[str, Any]) -> AnyResource:
    """Parses any modelplane object by its `kind`; raises ValueError for other kinds."""
    if obj.get("apiVersion") != API_VERSION or obj.get("kind") not in KINDS:
        raise ValueError(f"not a modelplane object: {obj.get('apiVersion')}/{obj.get('kind')}")
    return KINDS[obj["kind"]].from_object(obj)


__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "KINDS",
    "VERSION",
    "AnyResource",
    "Approval",
    "Approvals",
    "ArtifactRef",
    "ArtifactStatus",
    "BestRun",
    "CodeRef",
    "Condition",
    "ConditionStatus",
    "DataInput",
    "Environment",
    "Evaluation",
    "Experiment",
    "ExperimentSpec",
    "ExperimentStatus",
    "GateOp",
    "GateResult",
    "GateType",
    "Gates",
    "HistoryEntry",
    "HistoryResult",
    "KubeModel",
    "Lineage",
    "MetricGate",
    "MetricSummary",
    "ModelStage",
    "ModelStageSpec",
    "ModelStageStatus",
    "ModelVersion",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "ObjectMeta",
    "Objective",
    "OwnerReference",
    "RequireStage",
    "Resource",
    "RollbackPolicy",
    "RolloutPhase",
    "RolloutStatus",
    "Run",
    "RunCounts",
    "RunPhase",
    "RunSpec",
    "RunStatus",
    "Serving",
    "Signature",
    "TensorSpec",
    "model_stage_name",
    "model_version_name",
    "parse_duration",
    "parse_object",
]
