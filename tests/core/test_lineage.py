"""The lineage snapshot of a ModelVersion and when it is final."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelplane.api import Lineage, ModelVersionStatus, Run
from modelplane.core import lineage
from modelplane.core.conditions import ConditionType, Reason, set_condition

NOW = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
COMMIT = "392bc3103b9fd91a9297077266a0a1ece4592d88"
DIGEST = "md5:" + "0" * 32
IMAGE = "registry.example.com/churn@sha256:" + "a" * 64


def make_run(phase: str | None = "Finished", **status: Any) -> Run:
    obj: dict[str, Any] = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "Run",
        "metadata": {"name": "xgb-config-002", "namespace": "ml"},
        "spec": {
            "experiment": "churn-prediction",
            "params": {"learning_rate": "0.05", "max_depth": "6"},
            "code": {"repository": "https://git.example.com/ml/churn.git", "commit": COMMIT},
            "data": [
                {"name": "train", "uri": "s3://datasets/churn/train.parquet", "digest": DIGEST}
            ],
            "environment": {"image": IMAGE, "python": "3.11.7"},
            "tags": {"team": "growth"},
        },
    }
    metrics = {"val_auc": {"last": 0.87, "step": 99, "min": 0.61, "max": 0.88, "count": 100}}
    if phase is not None or status:
        obj["status"] = {"metrics": metrics, **status}
        if phase is not None:
            obj["status"]["phase"] = phase
    return Run.from_object(obj)


def recorded_status(
    status: str, reason: str, snapshot: Lineage | None, message: str = "m"
) -> ModelVersionStatus:
    conditions = set_condition(
        None,
        type=ConditionType.LINEAGE_RECORDED,
        status=status,  # type: ignore[arg-type]
        reason=reason,
        message=message,
        now=NOW,
    )
    return ModelVersionStatus(conditions=conditions, lineage=snapshot)


def decide(run: Run | None, previous: ModelVersionStatus | None = None, **kw: Any) -> Any:
    return lineage.decide(
        namespace="ml",
        run_name=kw.pop("run_name", "xgb-config-002"),
        run=run,
        previous=previous,
        now=kw.pop("now", NOW),
        **kw,
    )


def test_snapshot_copies_the_runs_lineage_and_final_metrics() -> None:
    run = make_run()
    taken = lineage.snapshot(run, now=NOW)
    assert taken.experiment == "churn-prediction"
    assert taken.run == "xgb-config-002"
    assert taken.code == run.spec.code
    assert taken.data == run.spec.data
    assert taken.params == {"learning_rate": "0.05", "max_depth": "6"}
    assert run.status is not None
    assert taken.metrics == run.status.metrics
    assert taken.environment == run.spec.environment
    assert taken.recorded_at == NOW.replace(microsecond=0)


def test_snapshot_shares_no_objects_with_the_run() -> None:
    run = make_run()
    taken = lineage.snapshot(run, now=NOW)
    assert run.spec.code is not None
    assert taken.code is not None
    assert taken.code is not run.spec.code
    assert taken.params is not run.spec.params


def test_snapshot_of_a_run_without_status_has_no_metrics() -> None:
    taken = lineage.snapshot(make_run(phase=None), now=NOW)
    assert taken.metrics is None
    assert taken.experiment == "churn-prediction"


def test_a_finished_run_is_recorded() -> None:
    outcome = decide(make_run("Finished"))
    assert outcome.status == "True"
    assert outcome.reason == Reason.LINEAGE_RECORDED
    assert "Finished" in outcome.message
    assert outcome.lineage.metrics["val_auc"].last == 0.87
    assert outcome.satisfied


def test_failed_and_killed_runs_are_recorded_as_they_ended() -> None:
    for phase in ("Failed", "Killed"):
        outcome = decide(make_run(phase))
        assert outcome.status == "True", phase
        assert phase in outcome.message


def test_a_run_without_phase_is_recorded_since_nothing_will_finish_it() -> None:
    outcome = decide(make_run(phase=None))
    assert outcome.status == "True"
    assert "without a phase" in outcome.message


def test_a_running_run_gives_a_provisional_snapshot_that_is_not_recorded() -> None:
    outcome = decide(make_run("Running"))
    assert outcome.status == "False"
    assert outcome.reason == Reason.RUN_RUNNING
    assert "still Running" in outcome.message
    assert outcome.lineage is not None
    assert outcome.lineage.experiment == "churn-prediction"
    assert not outcome.satisfied


def test_a_missing_run_is_reported_and_keeps_an_earlier_snapshot() -> None:
    provisional = lineage.snapshot(make_run("Running"), now=NOW)
    previous = recorded_status("False", Reason.RUN_RUNNING, provisional)
    outcome = decide(None, previous)
    assert outcome.status == "False"
    assert outcome.reason == Reason.RUN_NOT_FOUND
    assert "xgb-config-002 not found in namespace ml" in outcome.message
    assert outcome.lineage == provisional


def test_a_run_that_cannot_be_read_is_reported_as_invalid() -> None:
    outcome = decide(None, run_error="spec.experiment: Field required")
    assert outcome.status == "False"
    assert outcome.reason == Reason.INVALID_SPEC
    assert "Field required" in outcome.message


def test_a_final_snapshot_is_never_taken_again() -> None:
    final = lineage.snapshot(make_run("Finished"), now=NOW)
    previous = recorded_status("True", Reason.LINEAGE_RECORDED, final, message="recorded")
    later = NOW + timedelta(days=3)
    changed = make_run(
        "Finished",
        metrics={"val_auc": {"last": 0.1, "step": 1, "min": 0.1, "max": 0.1, "count": 1}},
    )
    for run in (changed, None):
        outcome = decide(run, previous, now=later)
        assert outcome.status == "True"
        assert outcome.lineage == final
        assert outcome.message == "recorded"


def test_a_snapshot_of_another_run_is_not_final() -> None:
    final = lineage.snapshot(make_run("Finished"), now=NOW)
    previous = recorded_status("True", Reason.LINEAGE_RECORDED, final)
    assert not lineage.is_final(previous, "another-run")
    assert lineage.is_final(previous, "xgb-config-002")


def test_an_unchanged_provisional_snapshot_keeps_its_time() -> None:
    first = decide(make_run("Running"))
    previous = recorded_status("False", Reason.RUN_RUNNING, first.lineage)
    again = decide(make_run("Running"), previous, now=NOW + timedelta(minutes=5))
    assert again.lineage == first.lineage


def test_a_changed_provisional_snapshot_is_retaken() -> None:
    first = decide(make_run("Running"))
    previous = recorded_status("False", Reason.RUN_RUNNING, first.lineage)
    progressed = make_run(
        "Running",
        metrics={"val_auc": {"last": 0.9, "step": 200, "min": 0.6, "max": 0.9, "count": 200}},
    )
    later = NOW + timedelta(minutes=5)
    again = decide(progressed, previous, now=later)
    assert again.lineage.metrics["val_auc"].last == 0.9
    assert again.lineage.recorded_at == later.replace(microsecond=0)


def test_no_run_means_no_lineage_and_no_condition() -> None:
    outcome = decide(None, run_name=None)
    assert outcome.status is None
    assert outcome.lineage is None
    assert outcome.satisfied


def test_run_changes_refresh_only_versions_that_can_progress() -> None:
    refresh = lineage.needs_refresh
    assert refresh(None, run_exists=True, run_phase="Running")
    assert not refresh(("True", Reason.LINEAGE_RECORDED), run_exists=True, run_phase="Finished")
    assert not refresh(("True", Reason.LINEAGE_RECORDED), run_exists=False, run_phase=None)
    # A run that appears, or finishes, or disappears.
    assert refresh(("False", Reason.RUN_NOT_FOUND), run_exists=True, run_phase="Running")
    assert refresh(("False", Reason.RUN_RUNNING), run_exists=True, run_phase="Finished")
    assert refresh(("False", Reason.RUN_RUNNING), run_exists=False, run_phase=None)
    # Metric updates of a run still running, and a run still missing, change nothing.
    assert not refresh(("False", Reason.RUN_RUNNING), run_exists=True, run_phase="Running")
    assert not refresh(("False", Reason.RUN_NOT_FOUND), run_exists=False, run_phase=None)
