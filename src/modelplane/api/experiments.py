"""The Experiment kind: a named group of runs with an objective.

Users and GitOps write the spec; the operator writes run counts, the best run by the objective,
and conditions into status. `kubectl get exp` shows OBJECTIVE (spec.objective.metric), RUNS
(status.runs.total) and BEST RUN (status.bestRun.name); `-o wide` adds the goal and best value.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

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
from modelplane.api.fields import Description, Goal, MetricName, StoreUri, TagMap


class Objective(KubeModel):
    """The metric that ranks the experiment's runs, and whether higher or lower is better."""

    metric: MetricName = Field(description="Name of the metric the runs log, e.g. val_auc.")
    goal: Goal = Field(
        description="maximize when a higher value is better (AUC, accuracy), "
        "minimize when a lower one is (loss, RMSE).",
    )


class ExperimentSpec(KubeModel):
    """The desired state of an Experiment."""

    description: Description | None = Field(
        default=None, description="What the experiment is for, for people browsing it."
    )
    objective: Objective | None = Field(
        default=None,
        description="How runs are ranked; without it the experiment groups runs but names "
        "no best run.",
    )
    artifact_root: StoreUri | None = Field(
        default=None,
        description="Where runs of this experiment store artifacts by default "
        "(<artifactRoot>/<run name>/); s3://, gs:// or file://.",
    )
    tags: TagMap | None = Field(default=None, description="Free-form labels, e.g. team: growth.")


class RunCounts(KubeModel):
    """How many of the experiment's runs are in each phase."""

    total: int = Field(default=0, ge=0, description="All runs of the experiment.")
    running: int = Field(default=0, ge=0, description="Runs in phase Running.")
    finished: int = Field(default=0, ge=0, description="Runs in phase Finished.")
    failed: int = Field(default=0, ge=0, description="Runs in phase Failed.")
    killed: int = Field(default=0, ge=0, description="Runs in phase Killed.")


class BestRun(KubeModel):
    """The finished run with the best value of the objective's metric."""

    name: str = Field(max_length=253, description="Name of the Run.")
    value: float = Field(description="Its last value of the objective's metric.")


class ExperimentStatus(KubeModel):
    """The observed state of an Experiment, written by the operator."""

    observed_generation: int | None = observed_generation_field()
    conditions: list[Condition] | None = conditions_field()
    runs: RunCounts | None = Field(default=None, description="Run counts by phase.")
    best_run: BestRun | None = Field(
        default=None,
        description="The finished run with the best objective value; absent until one finishes "
        "or when the experiment has no objective.",
    )


class Experiment(Resource):
    """A named group of runs with an objective (a metric to maximize or minimize).

    Runs name their experiment in spec.experiment. The operator counts them by phase and
    picks the best finished run by the objective.
    """

    crd: ClassVar[CrdInfo] = CrdInfo(
        plural="experiments",
        singular="experiment",
        short_names=("exp",),
        columns=(
            PrinterColumn(
                "Objective", ".spec.objective.metric", "string", "Metric that ranks runs."
            ),
            PrinterColumn("Runs", ".status.runs.total", "integer", "Number of runs."),
            PrinterColumn(
                "Best Run", ".status.bestRun.name", "string", "Best finished run by the objective."
            ),
            AGE,
            PrinterColumn(
                "Goal", ".spec.objective.goal", "string", "maximize or minimize.", priority=1
            ),
            PrinterColumn(
                "Best Value",
                ".status.bestRun.value",
                "number",
                "Objective value of the best run.",
                priority=1,
            ),
        ),
    )

    kind: Literal["Experiment"] = "Experiment"
    spec: ExperimentSpec = Field(description="What the experiment is and how runs are ranked.")
    status: ExperimentStatus | None = Field(
        default=None, description="Run counts, best run and conditions, written by the operator."
    )
