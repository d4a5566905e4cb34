"""The Run kind: one training or evaluation execution and the record of what went into it.

The SDK (or a user) writes the spec: params, code, data, environment, the parent run of a sweep,
and the ModelVersion an evaluation run evaluates. These are the lineage of every model the run
produces, so the API server keeps them from changing once set. Params and data inputs follow
MLflow's rules instead of being frozen whole, because training code logs them while it runs:
a param, once logged, keeps its value, and a data input, once recorded, stays; new ones may be
added. The SDK writes phase, times and metric summaries into status; the operator adds
conditions. `kubectl get runs` shows EXPERIMENT, PHASE (status.phase) and PARENT.
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
    Commit,
    Digest,
    ObjectName,
    ParamMap,
    PinnedImage,
    RepositoryUri,
    StoreUri,
    TagMap,
)
from modelplane.api.validations import combine, immutable_once_set, object_rules, rule

RunPhase = Literal["Running", "Finished", "Failed", "Killed"]

MAX_DATA_INPUTS = 64


class CodeRef(KubeModel):
    """The code a run executed: a git repository at an exact commit."""

    repository: RepositoryUri = Field(
        description="Git remote of the code, e.g. https://git.example.com/ml/churn.git."
    )
    commit: Commit = Field(description="Full 40-character SHA of the commit that ran.")
    path: str | None = Field(
        default=None,
        max_length=1024,
        description="Entry point within the repository, e.g. train.py.",
    )
    dirty: bool = Field(
        default=False,
        description="True when the working tree had uncommitted changes, so the commit alone "
        "does not reproduce the run.",
    )


class DataInput(KubeModel):
    """A data set the run read, pinned by digest."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$",
        description="Role of the input within the run, e.g. train or validation; unique per run.",
    )
    uri: StoreUri = Field(description="Where the data lives: s3://, gs:// or file://.")
    digest: Digest = Field(
        description="Content digest of the data, <algorithm>:<hex> (md5, sha1, sha256, sha512)."
    )


class Environment(KubeModel):
    """The software environment a run executed in."""

    image: PinnedImage | None = Field(
        default=None,
        description="Container image, pinned by digest: <name>@sha256:<64 hex>.",
    )
    python: str | None = Field(
        default=None,
        max_length=32,
        pattern=r"^[0-9]+[.][0-9]+([.][0-9]+)?([a-z]+[0-9]*)?$",
        description="Python version, e.g. 3.11.7.",
    )
    requirements: StoreUri | None = Field(
        default=None,
        description="Artifact URI of the lock file or requirements the run installed.",
    )


class RunSpec(KubeModel):
    """What a run is: its experiment, inputs and code. Lineage fields cannot change once set."""

    model_config = ConfigDict(
        json_schema_extra=combine(
            immutable_once_set("experiment", "parent", "evaluates", "code", "environment"),
            object_rules(
                rule(
                    "!has(oldSelf.params) || (has(self.params) && oldSelf.params.all(k, "
                    "k in self.params && self.params[k] == oldSelf.params[k]))",
                    "params are immutable once set: a param keeps its value and cannot be "
                    "removed; new params may be added",
                ),
                rule(
                    "!has(oldSelf.data) || (has(self.data) && "
                    "oldSelf.data.all(d, self.data.exists(e, e == d)))",
                    "data is immutable once set: an input cannot change or be removed; "
                    "new inputs may be added",
                ),
            ),
        )
    )

    experiment: ObjectName = Field(description="Name of the Experiment this run belongs to.")
    parent: ObjectName | None = Field(
        default=None,
        description="Name of the parent Run when this run is one trial of a sweep.",
    )
    evaluates: ObjectName | None = Field(
        default=None,
        description="Name of the ModelVersion this run evaluates, for evaluation runs; its "
        "metrics then count for that version's gates.",
    )
    params: ParamMap | None = Field(
        default=None,
        description="Hyperparameters and settings as strings, e.g. learning_rate: '0.05'. "
        "A param keeps its value once set; new params may be added.",
    )
    code: CodeRef | None = Field(
        default=None, description="The git repository and commit that ran."
    )
    data: (
        Annotated[
            list[DataInput],
            Field(
                max_length=MAX_DATA_INPUTS,
                json_schema_extra={
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                },
            ),
        ]
        | None
    ) = Field(
        default=None,
        description="Data sets the run read, each pinned by digest and keyed by name. "
        "Inputs may be added, not changed or removed.",
    )
    environment: Environment | None = Field(
        default=None, description="Container image, Python version and lock file of the run."
    )
    tags: TagMap | None = Field(
        default=None, description="Free-form labels; unlike the lineage fields, they may change."
    )


class MetricSummary(KubeModel):
    """A summary of one metric's history; the full history lives in the artifact store."""

    last: float = Field(description="The most recently logged value.")
    step: int = Field(ge=0, description="The step of the most recently logged value.")
    min: float = Field(description="Smallest value logged.")
    max: float = Field(description="Largest value logged.")
    count: int = Field(ge=0, description="Number of values logged.")


MetricMap = Annotated[dict[str, MetricSummary], Field(max_length=MAX_METRICS)]


class RunStatus(KubeModel):
    """The observed state of a Run: phase, times and metrics from the SDK, conditions."""

    observed_generation: int | None = observed_generation_field()
    conditions: list[Condition] | None = conditions_field()
    phase: RunPhase | None = Field(default=None, description="Running, Finished, Failed or Killed.")
    start_time: datetime | None = Field(default=None, description="When the run started.")
    end_time: datetime | None = Field(
        default=None, description="When the run ended; absent while it runs."
    )
    heartbeat_time: datetime | None = Field(
        default=None,
        description="When the SDK last reported the run alive; a Running run whose heartbeat "
        "stops is marked lost by the operator.",
    )
    metrics: MetricMap | None = Field(
        default=None,
        description="Summary of each logged metric by name: last, step, min, max, count.",
    )
    artifact_root: str | None = Field(
        default=None,
        max_length=1024,
        description="URI under which the run's artifacts and full metric histories are stored.",
    )


class Run(Resource):
    """One training or evaluation execution: params, code, data, environment and metrics.

    Its lineage fields (experiment, parent, evaluates, code, environment) are immutable once
    set; params and data inputs can be added to but never changed.
    """

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="runs",
        singular="run",
        short_names=("run",),
        columns=(
            PrinterColumn("Experiment", ".spec.experiment", "string", "Experiment of the run."),
            PrinterColumn("Phase", ".status.phase", "string", "Running, Finished, Failed, Killed."),
            PrinterColumn("Parent", ".spec.parent", "string", "Parent run of a sweep."),
            AGE,
            PrinterColumn(
                "Evaluates", ".spec.evaluates", "string", "ModelVersion evaluated.", priority=1
            ),
            PrinterColumn("Commit", ".spec.code.commit", "string", "Git commit.", priority=1),
        ),
    )

    model_config = ConfigDict(
        json_schema_extra=object_rules(
            rule(
                "!has(self.spec.parent) || self.spec.parent != self.metadata.name",
                "a run cannot be its own parent",
            )
        )
    )

    kind: Literal["Run"] = "Run"
    spec: RunSpec = Field(description="The run's experiment, params, code, data and environment.")
    status: RunStatus | None = Field(
        default=None,
        description="Phase, times and metric summaries (from the SDK) and conditions.",
    )
