"""The ModelStage kind: a named pointer from a model to one version, with gates and serving.

`spec.version` is the desired version: changing it promotes or rolls back. The operator checks
the gates, rolls the serving Deployment built from `spec.serving`, and reports the live version,
every gate's result, the rollout and a bounded history in status. It never writes spec, so it
does not fight GitOps tools over it.

A ModelStage is named `<model>-<stage in lower case>` (checked by the API server): name
uniqueness then allows one ModelStage per model and stage in a namespace, case-insensitively.

`kubectl get modelstages` shows MODEL, STAGE, DESIRED (spec.version), LIVE (status.liveVersion),
GATES (status.gatesSummary, "<passed>/<total>" for the desired version, e.g. "1/1") and ROLLOUT
(status.rollout.phase); the operator keeps those status fields current.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, WithJsonSchema

from modelplane.api.bases import (
    AGE,
    Condition,
    CrdInfo,
    KubeModel,
    PrinterColumn,
    Resource,
    conditions_field,
    observed_generation_field,
)
from modelplane.api.fields import Duration, MetricName, ModelName, StageName, Version
from modelplane.api.validations import object_rules, rule

GateOp = Literal[">=", ">", "<=", "<", "=="]
GateType = Literal["Metric", "Stage", "Approvals"]
RollbackPolicy = Literal["automatic", "manual"]
RolloutPhase = Literal["Pending", "Progressing", "Complete", "Failed", "RolledBack"]
HistoryResult = Literal["Succeeded", "Failed", "RolledBack", "Rejected"]

MAX_METRIC_GATES = 32
MAX_GATE_RESULTS = MAX_METRIC_GATES + 2  # metric gates, requireStage, approvals
MAX_HISTORY = 50
MAX_APPROVALS = 20
MAX_APPROVALS_REQUIRED = 10
MAX_REPLICAS = 1000


def model_stage_name(model: str, stage: str) -> str:
    """The object name a ModelStage must have: `<model>-<stage in lower case>`."""
    return f"{model}-{stage.lower()}"


# A Deployment's pod template, kept as raw JSON: its schema is Kubernetes' PodTemplateSpec,
# which the API server validates when the operator creates the Deployment. Copying that schema
# here would add thousands of lines and tie the CRD to one Kubernetes release.
PodTemplate = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": True,
            "x-kubernetes-embedded-resource": False,
        }
    ),
]


class MetricGate(KubeModel):
    """A threshold a metric of the version must meet, e.g. test_auc >= 0.82."""

    name: MetricName = Field(
        description="Metric to check, looked up in the version's evaluations, then its lineage."
    )
    op: GateOp = Field(description="Comparison: >=, >, <=, < or ==.")
    value: float = Field(description="Threshold the metric is compared with.")


class RequireStage(KubeModel):
    """An earlier stage the version must have been live in, e.g. Staging for 10 minutes."""

    name: StageName = Field(description="The earlier stage, e.g. Staging.")
    min_duration: Duration | None = Field(
        default=None,
        description="How long the version must have been live there, e.g. 10m or 1h30m.",
    )


class Approvals(KubeModel):
    """People who must approve a version before it goes live in this stage."""

    required: int = Field(
        ge=0, le=MAX_APPROVALS_REQUIRED, description="Number of approvals needed, 0 to 10."
    )


class Gates(KubeModel):
    """Conditions a version must meet before it goes live; all must pass."""

    metrics: list[MetricGate] | None = Field(
        default=None,
        max_length=MAX_METRIC_GATES,
        description="Metric thresholds, e.g. {name: test_auc, op: '>=', value: 0.82}.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "op"],
        },
    )
    require_stage: RequireStage | None = Field(
        default=None, description="An earlier stage the version must have been live in."
    )
    approvals: Approvals | None = Field(default=None, description="Approvals needed.")


class Serving(KubeModel):
    """How the live version is served: a Deployment owned by the ModelStage."""

    replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS, description="Number of serving pods.")
    template: PodTemplate = Field(
        description="Pod template of the serving Deployment (image, ports, env, resources, "
        "probes). The model name, version and artifact URI reach its containers as environment "
        "variables and annotations.",
    )
    progress_deadline_seconds: int = Field(
        default=600,
        ge=1,
        le=86400,
        description="Seconds a rollout may take before it counts as failed.",
    )
    rollback: RollbackPolicy = Field(
        default="automatic",
        description="automatic: a failed rollout returns the Deployment to the last good "
        "version; manual: it stays as it is for a person to act.",
    )


class ModelStageSpec(KubeModel):
    """Which version of a model this stage points at, its gates and its serving."""

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "!has(self.gates) || !has(self.gates.requireStage) || "
                "self.gates.requireStage.name.lowerAscii() != self.stage.lowerAscii()",
                "gates.requireStage must name a different stage",
            )
        )
    )

    model: ModelName = Field(description="Name of the model, e.g. churn-model.")
    stage: StageName = Field(
        description="Name of the stage: Staging, Production, or an alias such as champion."
    )
    version: Version = Field(
        description="Desired version; changing it promotes (or rolls back) once gates pass."
    )
    gates: Gates | None = Field(
        default=None, description="Conditions a version must meet before it goes live here."
    )
    serving: Serving | None = Field(
        default=None,
        description="Serving Deployment for the live version; without it the stage is only "
        "a pointer.",
    )


class GateResult(KubeModel):
    """The result of one gate for the desired version."""

    name: str = Field(
        max_length=300, description="Metric name, stage name or 'approvals', per gate type."
    )
    type: GateType = Field(description="Metric, Stage or Approvals.")
    op: GateOp = Field(description="Comparison applied: observed <op> value.")
    value: float = Field(
        description="Threshold: metric value, seconds live in the stage, or approvals required."
    )
    observed: float | None = Field(
        default=None, description="Observed value; absent when it could not be found."
    )
    passed: bool = Field(description="Whether the gate passed.")
    message: str | None = Field(
        default=None, max_length=1024, description="Why the gate passed or failed."
    )


class RolloutStatus(KubeModel):
    """The state of the serving Deployment."""

    deployment: str | None = Field(
        default=None, max_length=253, description="Name of the serving Deployment."
    )
    version: int | None = Field(
        default=None, ge=1, description="Model version the Deployment is rolling to or serves."
    )
    revision: int | None = Field(default=None, ge=0, description="The Deployment's revision.")
    replicas: int | None = Field(default=None, ge=0, description="Desired replicas.")
    updated_replicas: int | None = Field(
        default=None, ge=0, description="Replicas running the current pod template."
    )
    available_replicas: int | None = Field(
        default=None, ge=0, description="Replicas available to serve."
    )
    phase: RolloutPhase | None = Field(
        default=None,
        description="Pending, Progressing, Complete, Failed or RolledBack.",
    )
    message: str | None = Field(
        default=None, max_length=1024, description="Details, e.g. why the rollout failed."
    )


class HistoryEntry(KubeModel):
    """One promotion or rollback of this stage."""

    version: int = Field(ge=1, description="Version the stage moved to (or tried to).")
    from_version: int | None = Field(
        default=None, ge=1, alias="from", description="Version that was live before."
    )
    at: datetime = Field(description="When it happened.")
    result: HistoryResult = Field(description="Succeeded, Failed, RolledBack or Rejected.")
    requested_by: str | None = Field(
        default=None, max_length=256, description="Who changed spec.version, when known."
    )
    message: str | None = Field(default=None, max_length=1024, description="Details.")


class Approval(KubeModel):
    """An approval of a version for this stage."""

    user: str = Field(min_length=1, max_length=256, description="Who approved.")
    version: int = Field(ge=1, description="Version approved.")
    at: datetime = Field(description="When.")
    comment: str | None = Field(default=None, max_length=1024, description="Why, optionally.")


class ModelStageStatus(KubeModel):
    """The observed state of a ModelStage, written by the operator."""

    observed_generation: int | None = observed_generation_field()
    conditions: list[Condition] | None = conditions_field()
    live_version: int | None = Field(
        default=None, ge=1, description="Version currently live (serving) in this stage."
    )
    previous_version: int | None = Field(
        default=None, ge=1, description="Version live before the current one."
    )
    live_since: datetime | None = Field(
        default=None, description="When the live version went live."
    )
    gates_version: int | None = Field(
        default=None, ge=1, description="Version the gate results below were computed for."
    )
    gates: list[GateResult] | None = Field(
        default=None, max_length=MAX_GATE_RESULTS, description="Result of every gate."
    )
    gates_summary: str | None = Field(
        default=None,
        max_length=16,
        description="Gates passed out of gates configured, e.g. 1/1, for kubectl get's GATES "
        "column.",
    )
    rollout: RolloutStatus | None = Field(
        default=None, description="State of the serving Deployment."
    )
    history: list[HistoryEntry] | None = Field(
        default=None,
        max_length=MAX_HISTORY,
        description=f"Promotions and rollbacks, oldest first, the last {MAX_HISTORY} kept.",
    )
    approvals: list[Approval] | None = Field(
        default=None,
        max_length=MAX_APPROVALS,
        description="Approvals recorded for versions of this stage.",
    )


class ModelStage(Resource):
    """A named stage of a model (Staging, Production, champion) pointing at one version.

    Changing spec.version promotes or rolls back: the operator checks the gates, rolls the
    serving Deployment and records the result. Named <model>-<stage in lower case>.
    """

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="modelstages",
        singular="modelstage",
        short_names=("ms",),
        columns=(
            PrinterColumn("Model", ".spec.model", "string", "Model name."),
            PrinterColumn("Stage", ".spec.stage", "string", "Stage name."),
            PrinterColumn("Desired", ".spec.version", "integer", "Desired version."),
            PrinterColumn("Live", ".status.liveVersion", "integer", "Live version."),
            PrinterColumn("Gates", ".status.gatesSummary", "string", "Gates passed/configured."),
            PrinterColumn("Rollout", ".status.rollout.phase", "string", "Rollout phase."),
            AGE,
            PrinterColumn(
                "Previous", ".status.previousVersion", "integer", "Previous version.", priority=1
            ),
            PrinterColumn(
                "Deployment",
                ".status.rollout.deployment",
                "string",
                "Serving Deployment.",
                priority=1,
            ),
        ),
    )

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "self.metadata.name == self.spec.model + '-' + self.spec.stage.lowerAscii()",
                "metadata.name must be <model>-<stage in lower case>",
            )
        )
    )

    kind: Literal["ModelStage"] = "ModelStage"
    spec: ModelStageSpec = Field(description="Model, stage, desired version, gates and serving.")
    status: ModelStageStatus | None = Field(
        default=None,
        description="Live version, gate results, rollout, history and conditions.",
    )
