"""Experiment summaries: how many runs are in each phase, and which finished run is best.

The operator keeps one small `RunRecord` per run in memory (a kopf index keyed by namespace and
experiment) and recomputes an experiment's summary from its records whenever one of its runs or
the experiment itself changes. Everything here is a function of those records and the
experiment, never of the events that led to them, so an operator that restarts and rebuilds its
index reaches the same status; and `plan_experiment` returns no patch when the status already
shows that summary, so nothing is rewritten when nothing changed.

The best run is the Finished run with the best last value of the objective's metric; ties go to
the run whose name sorts first, so the choice does not depend on the order runs were seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from modelplane.api import BestRun, Experiment, ExperimentStatus, Objective, Run, RunCounts
from modelplane.api.runs import RunPhase
from modelplane.core.conditions import (
    ConditionType,
    Reason,
    find_condition,
    remove_condition,
    set_condition,
)
from modelplane.core.statuses import Note, StatusPlan, owned_patch

# The status fields the operator writes on an Experiment; it owns all of them.
OWNED_FIELDS = ("observedGeneration", "conditions", "runs", "bestRun")


@dataclass(frozen=True)
class RunRecord:
    """What an experiment needs to know about one of its runs."""

    name: str
    experiment: str
    phase: RunPhase | None = None
    # Last value of each metric, for Finished runs only: nothing else can be the best run, and
    # leaving them out keeps the in-memory index small while runs log metrics.
    metrics: Mapping[str, float] = field(default_factory=dict)


def run_record(run: Run) -> RunRecord:
    """The record of a parsed Run."""
    status = run.status
    phase = status.phase if status is not None else None
    metrics: dict[str, float] = {}
    if phase == "Finished" and status is not None and status.metrics:
        metrics = {
            name: summary.last
            for name, summary in status.metrics.items()
            if math.isfinite(summary.last)
        }
    return RunRecord(
        name=run.metadata.name or "",
        experiment=run.spec.experiment,
        phase=phase,
        metrics=metrics,
    )


def count_runs(records: Iterable[RunRecord]) -> RunCounts:
    """Run counts by phase; runs without a phase yet count only in the total."""
    total = 0
    by_phase: dict[str, int] = {}
    for record in records:
        total += 1
        if record.phase is not None:
            by_phase[record.phase] = by_phase.get(record.phase, 0) + 1
    return RunCounts(
        total=total,
        running=by_phase.get("Running", 0),
        finished=by_phase.get("Finished", 0),
        failed=by_phase.get("Failed", 0),
        killed=by_phase.get("Killed", 0),
    )


def best_run(records: Iterable[RunRecord], objective: Objective | None) -> BestRun | None:
    """The Finished run with the best value of the objective's metric, or None."""
    if objective is None:
        return None
    sign = -1.0 if objective.goal == "maximize" else 1.0
    candidates = [
        (sign * record.metrics[objective.metric], record.name, record.metrics[objective.metric])
        for record in records
        if record.phase == "Finished" and objective.metric in record.metrics
    ]
    if not candidates:
        return None
    _, name, value = min(candidates)
    return BestRun(name=name, value=value)


def summary_message(counts: RunCounts, best: BestRun | None, objective: Objective | None) -> str:
    """The Ready condition's message: the counts, and the best run when there is one."""
    message = (
        f"{counts.total} runs: {counts.running} running, {counts.finished} finished, "
        f"{counts.failed} failed, {counts.killed} killed"
    )
    if best is not None and objective is not None:
        message += f"; best run {best.name} ({objective.metric}={best.value:g})"
    return message


def desired_status(
    experiment: Experiment, records: Iterable[RunRecord], *, now: datetime
) -> ExperimentStatus:
    """The status the operator wants the experiment to show, given its runs' records."""
    records = list(records)
    objective = experiment.spec.objective
    counts = count_runs(records)
    best = best_run(records, objective)
    generation = experiment.metadata.generation
    current = experiment.status.conditions if experiment.status is not None else None
    conditions = set_condition(
        current,
        type=ConditionType.READY,
        status="True",
        reason=Reason.RECONCILED,
        message=summary_message(counts, best, objective),
        observed_generation=generation,
        now=now,
    )
    conditions = remove_condition(conditions, ConditionType.STALLED)
    conditions = remove_condition(conditions, ConditionType.RECONCILING)
    return ExperimentStatus(
        observed_generation=generation, conditions=conditions, runs=counts, best_run=best
    )


def plan_experiment(
    experiment: Experiment,
    records: Iterable[RunRecord],
    *,
    now: datetime,
) -> StatusPlan:
    """The status patch (None when already current) and Events for an experiment and its runs."""
    desired = desired_status(experiment, records, now=now)
    current = experiment.status
    patch = owned_patch(current.to_dict() if current is not None else None, desired, OWNED_FIELDS)
    notes: list[Note] = []
    before = current.best_run if current is not None else None
    after = desired.best_run
    objective = experiment.spec.objective
    if after is not None and objective is not None and (before is None or before != after):
        notes.append(
            Note(
                "Normal",
                "BestRunChanged",
                f"best run is {after.name}: {objective.metric}={after.value:g} ({objective.goal})",
            )
        )
    was_stalled = find_condition(
        current.conditions if current is not None else None, ConditionType.STALLED
    )
    if was_stalled is not None and was_stalled.status == "True":
        notes.append(Note("Normal", Reason.RECONCILED, "the experiment is valid again"))
    return StatusPlan(patch, tuple(notes) if patch is not None else ())
