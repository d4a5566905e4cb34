"""The ModelVersion kind: one registered, immutable model artifact and the run that made it.

A ModelVersion is named `<model>-v<version>` (checked by the API server), so the API server's
name uniqueness makes version numbers unique per model and namespace. Its spec cannot change
except for `description`. The operator snapshots the run's lineage into status, verifies the
artifact against its digest, and lists the stages where the version is live.
`kubectl get mv` shows MODEL, VERSION, RUN, VERIFIED (status.artifact.verified) and STAGES
(status.stages, printed as a JSON list; leave it unset rather than empty).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field

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
from modelplane.api.fields import (
    MAX_METRICS,
    Description,
    Digest,
    ModelName,
    ObjectName,
    ParamMap,
    StageName,
    StoreUri,
    Version,
)
from modelplane.api.runs import CodeRef, DataInput, Environment, MetricMap
from modelplane.api.validations import immutable_except, object_rules, rule

MAX_SIGNATURE_COLUMNS = 512
MAX_EVALUATIONS = 20
MAX_STAGES = 32


def model_version_name(model: str, version: int) -> str:
    """The object name a ModelVersion must have: `<model>-v<version>`."""
    return f"{model}-v{version}"


class ArtifactRef(KubeModel):
    """Where the model artifact lives and the digest it must have."""

    uri: StoreUri = Field(
        description="Artifact location: s3://, gs:// or file://, e.g. s3://models/churn-model/3/."
    )
    digest: Digest = Field(
        description="Digest the stored artifact must match before the version can be promoted, "
        "e.g. sha256:<64 hex>.",
    )


class TensorSpec(KubeModel):
    """One input or output of a model signature: a named column or a tensor."""

    name: str | None = Field(
        default=None, max_length=250, description="Column or tensor name; absent for a tensor."
    )
    type: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_]*$",
        description="Data type as MLflow names it: double, long, string, float32, ...",
    )
    shape: list[Annotated[int, Field(ge=-1)]] | None = Field(
        default=None, max_length=8, description="Tensor shape; -1 marks a variable dimension."
    )
    optional: bool | None = Field(default=None, description="True when the column may be absent.")


class Signature(KubeModel):
    """The model's input and output schema, as in MLflow's ModelSignature."""

    inputs: list[TensorSpec] | None = Field(
        default=None, max_length=MAX_SIGNATURE_COLUMNS, description="Inputs the model accepts."
    )
    outputs: list[TensorSpec] | None = Field(
        default=None, max_length=MAX_SIGNATURE_COLUMNS, description="Outputs the model returns."
    )


class ModelVersionSpec(KubeModel):
    """A registered model version. Immutable except for `description`."""

    model_config = ConfigDict(
        json_schema_extra=immutable_except(
            "description", message="spec is immutable except description"
        )
    )

    model: ModelName = Field(description="Name of the model, a DNS label, e.g. churn-model.")
    version: Version = Field(description="Version number, 1 or more; the name ends in -v<version>.")
    run: ObjectName | None = Field(
        default=None,
        description="Name of the Run that produced the artifact; its lineage is copied into "
        "status. Absent for a model trained outside modelplane.",
    )
    artifact: ArtifactRef = Field(description="The artifact's location and expected digest.")
    flavor: str | None = Field(
        default=None,
        max_length=63,
        pattern=r"^[a-z][a-z0-9_.-]*$",
        description="How to load the artifact, as an MLflow flavor: sklearn, xgboost, pytorch, "
        "onnx, pyfunc, ...",
    )
    signature: Signature | None = Field(
        default=None, description="Optional input and output schema of the model."
    )
    description: Description | None = Field(
        default=None, description="What this version is; the only field that may change."
    )


class Lineage(KubeModel):
    """A snapshot of the producing run, copied when the version was registered."""

    experiment: str | None = Field(
        default=None, max_length=253, description="Experiment of the run."
    )
    run: str | None = Field(default=None, max_length=253, description="The run's name.")
    code: CodeRef | None = Field(default=None, description="Repository and commit that ran.")
    data: list[DataInput] | None = Field(
        default=None, max_length=64, description="Data sets the run read, with digests."
    )
    params: ParamMap | None = Field(default=None, description="The run's params.")
    metrics: MetricMap | None = Field(default=None, description="The run's metric summaries.")
    environment: Environment | None = Field(default=None, description="The run's environment.")
    recorded_at: datetime | None = Field(default=None, description="When the snapshot was taken.")


class ArtifactStatus(KubeModel):
    """The result of checking the stored artifact against spec.artifact."""

    verified: bool = Field(
        description="True when the artifact exists and its digest matches spec.artifact.digest."
    )
    size: int | None = Field(default=None, ge=0, description="Size of the artifact in bytes.")
    digest: str | None = Field(
        default=None, max_length=135, description="Digest computed from the stored artifact."
    )
    verified_at: datetime | None = Field(default=None, description="When it was last checked.")


class Evaluation(KubeModel):
    """Metrics of a finished run whose spec.evaluates names this version."""

    run: str = Field(max_length=253, description="Name of the evaluation Run.")
    metrics: Annotated[dict[str, float], Field(max_length=MAX_METRICS)] = Field(
        description="Last value of each metric the evaluation logged, e.g. test_auc."
    )
    finished_at: datetime | None = Field(default=None, description="When the run finished.")


class ModelVersionStatus(KubeModel):
    """The observed state of a ModelVersion, written by the operator."""

    observed_generation: int | None = observed_generation_field()
    conditions: list[Condition] | None = conditions_field()
    lineage: Lineage | None = Field(
        default=None,
        description="Snapshot of the producing run: experiment, code, data, params, metrics "
        "and environment.",
    )
    artifact: ArtifactStatus | None = Field(
        default=None, description="Verification of the stored artifact."
    )
    stages: list[StageName] | None = Field(
        default=None,
        max_length=MAX_STAGES,
        description="Stages where this version is live, e.g. [Production].",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    evaluations: list[Evaluation] | None = Field(
        default=None,
        max_length=MAX_EVALUATIONS,
        description="Most recent finished evaluation runs of this version and their metrics.",
    )


class ModelVersion(Resource):
    """One registered, immutable model artifact, linked to the run that produced it.

    Named <model>-v<version>. The spec cannot change except description; status carries the
    lineage snapshot, artifact verification and the stages where the version is live.
    """

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="modelversions",
        singular="modelversion",
        short_names=("mv",),
        columns=(
            PrinterColumn("Model", ".spec.model", "string", "Model name."),
            PrinterColumn("Version", ".spec.version", "integer", "Version number."),
            PrinterColumn("Run", ".spec.run", "string", "Run that produced the artifact."),
            PrinterColumn(
                "Verified", ".status.artifact.verified", "boolean", "Artifact digest verified."
            ),
            PrinterColumn(
                "Stages", ".status.stages", "string", "Stages where the version is live."
            ),
            AGE,
            PrinterColumn("Flavor", ".spec.flavor", "string", "Model flavor.", priority=1),
            PrinterColumn("Artifact", ".spec.artifact.uri", "string", "Artifact URI.", priority=1),
        ),
    )

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            # Compares the name's number with spec.version instead of formatting the version:
            # the API server's cost estimator treats string(int) as unbounded and refuses the
            # CRD. The digit check keeps int() from failing; ten digits fit in int64.
            rule(
                "self.metadata.name.startsWith(self.spec.model + '-v') && "
                "self.metadata.name.substring(size(self.spec.model) + 2)"
                ".matches('^[1-9][0-9]{0,9}$') && "
                "int(self.metadata.name.substring(size(self.spec.model) + 2)) == self.spec.version",
                "metadata.name must be <model>-v<version>",
            )
        )
    )

    kind: Literal["ModelVersion"] = "ModelVersion"
    spec: ModelVersionSpec = Field(
        description="The model, version number, producing run and artifact."
    )
    status: ModelVersionStatus | None = Field(
        default=None,
        description="Lineage snapshot, artifact verification, live stages and conditions.",
    )
