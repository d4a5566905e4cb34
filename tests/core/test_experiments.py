"""Experiment summaries: counts by phase, the best run by the objective, patches only on change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelplane.api import Experiment, Objective, Run
from modelplane.api.runs import RunPhase
from modelplane.core.experiments import (
    RunRecord,
    best_run,
    count_runs,
    desired_status,
    plan_experiment,
    run_record,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def record(name: str, phase: RunPhase | None, **metrics: float) -> RunRecord:
    return RunRecord(name=name, experiment="churn", phase=phase, metrics=metrics)


def experiment(
    goal: str | None = "maximize", status: dict[str, Any] | None = None, generation: int = 1
) -> Experiment:
    spec: dict[str, Any] = {}
    if goal is not None:
        spec["objective"] = {"metric": "val_auc", "goal": goal}
    obj: dict[str, Any] = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "churn", "namespace": "ml", "generation": generation},
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return Experiment.model_validate(obj)


def test_counts_runs_by_phase_and_runs_without_phase_only_in_total() -> None:
    records = [
        record("a", "Running"),
        record("b", "Finished"),
        record("c", "Finished"),
        record("d", "Failed"),
        record("e", "Killed"),
        record("f", None),
    ]
    counts = count_runs(records)
    assert counts.to_dict() == {
        "total": 6,
        "running": 1,
        "finished": 2,
        "failed": 1,
        "killed": 1,
    }


def test_best_run_maximizes_over_finished_runs_only() -> None:
    records = [
        record("low", "Finished", val_auc=0.7),
        record("high", "Finished", val_auc=0.9),
        record("running-higher", "Running", val_auc=0.99),
        record("failed-higher", "Failed", val_auc=0.98),
    ]
    best = best_run(records, Objective(metric="val_auc", goal="maximize"))
    assert best is not None
    assert (best.name, best.value) == ("high", 0.9)


def test_best_run_minimizes_when_lower_is_better() -> None:
    records = [record("a", "Finished", val_auc=0.3), record("b", "Finished", val_auc=0.1)]
    best = best_run(records, Objective(metric="val_auc", goal="minimize"))
    assert best is not None
    assert best.name == "b"


def test_best_run_breaks_ties_by_name_whatever_the_order() -> None:
    objective = Objective(metric="val_auc", goal="maximize")
    forward = [record("b", "Finished", val_auc=0.5), record("a", "Finished", val_auc=0.5)]
    assert best_run(forward, objective) == best_run(list(reversed(forward)), objective)
    best = best_run(forward, objective)
    assert best is not None
    assert best.name == "a"


def test_no_best_run_without_objective_or_without_the_metric() -> None:
    records = [record("a", "Finished", loss=0.3)]
    assert best_run(records, None) is None
    assert best_run(records, Objective(metric="val_auc", goal="maximize")) is None


def test_run_record_keeps_finite_metrics_of_finished_runs_only() -> None:
    def run(phase: str, last: float) -> Run:
        summary = {"last": last, "step": 1, "min": 0.0, "max": 1.0, "count": 2}
        return Run.model_validate(
            {
                "apiVersion": "modelplane.io/v1alpha1",
                "kind": "Run",
                "metadata": {"name": "r", "namespace": "ml"},
                "spec": {"experiment": "churn"},
                "status": {"phase": phase, "metrics": {"val_auc": summary}},
            }
        )

    assert run_record(run("Finished", 0.8)) == record("r", "Finished", val_auc=0.8)
    assert run_record(run("Running", 0.8)) == record("r", "Running")
    assert run_record(run("Finished", float("nan"))).metrics == {}


def test_desired_status_is_ready_with_counts_best_run_and_generation() -> None:
    status = desired_status(
        experiment(generation=3), [record("a", "Finished", val_auc=0.8)], now=NOW
    )
    assert status.observed_generation == 3
    assert status.runs is not None
    assert status.runs.total == 1
    assert status.best_run is not None
    assert status.best_run.name == "a"
    assert status.conditions is not None
    [ready] = status.conditions
    assert (ready.type, ready.status, ready.reason) == ("Ready", "True", "Reconciled")
    assert ready.observed_generation == 3
    assert "best run a (val_auc=0.8)" in ready.message


def test_plan_patches_every_owned_field_and_deletes_a_stale_best_run() -> None:
    stale = {"bestRun": {"name": "gone", "value": 0.5}, "runs": {"total": 1, "finished": 1}}
    plan = plan_experiment(experiment(goal=None, status=stale), [], now=NOW)
    assert plan.patch is not None
    assert set(plan.patch) == {"observedGeneration", "conditions", "runs", "bestRun"}
    assert plan.patch["bestRun"] is None
    assert plan.patch["runs"]["total"] == 0


def test_plan_is_empty_when_the_status_already_shows_the_summary() -> None:
    records = [record("a", "Finished", val_auc=0.8), record("b", "Running")]
    first = plan_experiment(experiment(), records, now=NOW)
    assert first.patch is not None
    # What the API server gives back: the patch applied, numbers possibly as integers.
    written = dict(first.patch)
    later = plan_experiment(experiment(status=written), records, now=NOW + timedelta(hours=1))
    assert later.patch is None
    assert later.notes == ()


def test_plan_notices_the_best_run_changing() -> None:
    records = [record("a", "Finished", val_auc=0.8)]
    written = plan_experiment(experiment(), records, now=NOW).patch
    assert written is not None
    records.append(record("b", "Finished", val_auc=0.9))
    plan = plan_experiment(experiment(status=written), records, now=NOW)
    assert plan.patch is not None
    assert plan.patch["bestRun"] == {"name": "b", "value": 0.9}
    assert [note.reason for note in plan.notes] == ["BestRunChanged"]
    # The Ready condition stays True, so its transition time does not move.
    [ready] = plan.patch["conditions"]
    assert ready["lastTransitionTime"] == written["conditions"][0]["lastTransitionTime"]


def test_plan_follows_a_changed_objective() -> None:
    records = [record("a", "Finished", val_auc=0.8), record("b", "Finished", val_auc=0.9)]
    written = plan_experiment(experiment("maximize"), records, now=NOW).patch
    assert written is not None
    assert written["bestRun"]["name"] == "b"
    plan = plan_experiment(experiment("minimize", status=written, generation=2), records, now=NOW)
    assert plan.patch is not None
    assert plan.patch["bestRun"]["name"] == "a"
    assert plan.patch["observedGeneration"] == 2


@pytest.mark.parametrize("integral", [True, False])
def test_plan_treats_integral_numbers_from_the_server_as_equal(integral: bool) -> None:
    records = [record("a", "Finished", val_auc=1.0)]
    written = plan_experiment(experiment(), records, now=NOW).patch
    assert written is not None
    if integral:
        written["bestRun"] = {"name": "a", "value": 1}
    assert plan_experiment(experiment(status=written), records, now=NOW).patch is None


def test_plan_clears_stalled_once_the_experiment_parses_again() -> None:
    stalled = {
        "conditions": [
            {
                "type": "Stalled",
                "status": "True",
                "reason": "InvalidSpec",
                "message": "bad",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
            }
        ]
    }
    plan = plan_experiment(experiment(status=stalled), [], now=NOW)
    assert plan.patch is not None
    assert [c["type"] for c in plan.patch["conditions"]] == ["Ready"]
    assert "Reconciled" in [note.reason for note in plan.notes]
