"""Gate evaluation: metric thresholds, a required earlier stage, approvals, and their inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelplane.api import (
    Approval,
    Evaluation,
    GateResult,
    Gates,
    HistoryEntry,
    Lineage,
    MetricSummary,
    ModelStage,
    ModelVersion,
)
from modelplane.core.approvals import REQUESTED_BY_ANNOTATION, encode_approval
from modelplane.core.conditions import ConditionType, Reason, set_condition
from modelplane.core.gates import (
    GateInputs,
    StageRecord,
    all_passed,
    blocking_failures,
    build_gate_inputs,
    evaluate_gates,
    failure_message,
    gates_summary,
    hold_reason,
    live_stretches,
    merge_metrics,
    version_problem,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


def minutes_ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


def inputs(
    *,
    version: int = 3,
    metrics: dict[str, float] | None = None,
    stages: Sequence[StageRecord] = (),
    approvals: Sequence[tuple[str, int]] = (),
    requested_by: str | None = "alice",
) -> GateInputs:
    return GateInputs(
        version=version,
        metrics=metrics or {},
        other_stages={record.stage: record for record in stages},
        approvals=[Approval(user=user, version=v, at=NOW) for user, v in approvals],
        requested_by=requested_by,
        now=NOW,
    )


def gates(**spec: Any) -> Gates:
    return Gates.model_validate(spec)


def entry(version: int, at: datetime, result: str = "Succeeded") -> HistoryEntry:
    return HistoryEntry.model_validate({"version": version, "at": at, "result": result})


def staging(
    live: int | None = None, since: datetime | None = None, history: Sequence[HistoryEntry] = ()
) -> StageRecord:
    return StageRecord("Staging", live, since, tuple(history))


def only(results: list[GateResult]) -> GateResult:
    assert len(results) == 1
    return results[0]


# -- metric gates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "threshold", "observed", "passed"),
    [
        (">=", 0.82, 0.82, True),
        (">=", 0.82, 0.79, False),
        (">", 0.82, 0.82, False),
        (">", 0.82, 0.83, True),
        ("<=", 0.1, 0.1, True),
        ("<=", 0.1, 0.2, False),
        ("<", 0.1, 0.05, True),
        ("<", 0.1, 0.1, False),
        ("==", 1.0, 1.0, True),
        ("==", 1.0, 0.999, False),
        (">=", 0.5, float("nan"), False),
        ("<=", 0.5, float("nan"), False),
    ],
)
def test_a_metric_gate_compares_the_observed_value_with_the_threshold(
    op: str, threshold: float, observed: float, passed: bool
) -> None:
    spec = gates(metrics=[{"name": "test_auc", "op": op, "value": threshold}])
    result = only(evaluate_gates(spec, inputs(metrics={"test_auc": observed})))
    assert result.type == "Metric"
    assert result.name == "test_auc"
    assert result.op == op
    assert result.value == threshold
    assert result.passed is passed
    assert result.observed is not None


def test_a_missing_metric_fails_its_gate_and_says_so() -> None:
    spec = gates(metrics=[{"name": "test_auc", "op": ">=", "value": 0.82}])
    result = only(evaluate_gates(spec, inputs(metrics={"val_auc": 0.9})))
    assert not result.passed
    assert result.observed is None
    assert result.message == "metric test_auc not recorded for version 3"
    assert failure_message([result]) == (
        "gate test_auc >= 0.82 failed: metric test_auc not recorded for version 3"
    )


def test_the_failure_message_names_each_failed_gate_and_its_observed_value() -> None:
    spec = gates(
        metrics=[
            {"name": "test_auc", "op": ">=", "value": 0.82},
            {"name": "latency_ms", "op": "<", "value": 50},
            {"name": "recall", "op": ">=", "value": 0.5},
        ]
    )
    results = evaluate_gates(
        spec, inputs(metrics={"test_auc": 0.79, "latency_ms": 80.0, "recall": 0.6})
    )
    assert [r.passed for r in results] == [False, False, True]
    assert failure_message(results) == (
        "gate test_auc >= 0.82 failed: observed 0.79; gate latency_ms < 50 failed: observed 80"
    )


def test_no_gates_yield_no_results_and_pass() -> None:
    for spec in (None, gates(), gates(metrics=[])):
        results = evaluate_gates(spec, inputs())
        assert results == []
        assert all_passed(results)
        assert gates_summary(results) == "0/0"
        assert failure_message(results) == ""
        assert hold_reason(results) is None


def test_results_come_in_the_order_metrics_stage_approvals() -> None:
    spec = gates(
        approvals={"required": 1},
        requireStage={"name": "Staging"},
        metrics=[
            {"name": "b", "op": ">=", "value": 0},
            {"name": "a", "op": ">=", "value": 0},
        ],
    )
    results = evaluate_gates(spec, inputs(metrics={"a": 1, "b": 1}))
    assert [(r.type, r.name) for r in results] == [
        ("Metric", "b"),
        ("Metric", "a"),
        ("Stage", "Staging"),
        ("Approvals", "approvals"),
    ]
    assert gates_summary(results) == "2/4"


# -- requireStage --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "min_duration", "passed", "observed_minutes"),
    [
        # Live there now, long enough or not.
        (staging(3, minutes_ago(15)), "10m", True, 15),
        (staging(3, minutes_ago(4)), "10m", False, 4),
        # Live there now, no minimum: any time counts.
        (staging(3, minutes_ago(0)), None, True, 0),
        # Another version is live there and this one never was.
        (staging(2, minutes_ago(60), [entry(2, minutes_ago(60))]), None, False, None),
        # Was live there for 30 minutes earlier, then replaced by version 4.
        (
            staging(4, minutes_ago(10), [entry(3, minutes_ago(40)), entry(4, minutes_ago(10))]),
            "20m",
            True,
            30,
        ),
        # ... for only 5 minutes.
        (
            staging(4, minutes_ago(10), [entry(3, minutes_ago(15)), entry(4, minutes_ago(10))]),
            "20m",
            False,
            5,
        ),
        # A failed rollout of version 4 did not end version 3's stretch.
        (
            staging(
                3,
                minutes_ago(40),
                [entry(3, minutes_ago(40)), entry(4, minutes_ago(30), "RolledBack")],
            ),
            "30m",
            True,
            40,
        ),
        # The longest of several stretches counts.
        (
            staging(
                5,
                minutes_ago(5),
                [
                    entry(3, minutes_ago(100)),
                    entry(4, minutes_ago(90)),
                    entry(3, minutes_ago(60)),
                    entry(5, minutes_ago(35)),
                ],
            ),
            "20m",
            True,
            25,
        ),
        # A rollout of version 3 that failed there never made it live.
        (staging(2, minutes_ago(60), [entry(3, minutes_ago(30), "Failed")]), None, False, None),
        # History says when it went live when liveSince is missing.
        (staging(3, None, [entry(3, minutes_ago(12))]), "10m", True, 12),
    ],
)
def test_a_required_stage_needs_the_version_live_there_long_enough(
    record: StageRecord, min_duration: str | None, passed: bool, observed_minutes: float | None
) -> None:
    spec = gates(requireStage={"name": "Staging", "minDuration": min_duration})
    result = only(evaluate_gates(spec, inputs(stages=[record])))
    assert result.type == "Stage"
    assert result.op == ">="
    assert result.passed is passed
    if observed_minutes is None:
        assert result.observed is None
    else:
        assert result.observed == observed_minutes * 60


def test_a_required_stage_that_does_not_exist_fails() -> None:
    spec = gates(requireStage={"name": "Staging", "minDuration": "10m"})
    result = only(evaluate_gates(spec, inputs(stages=[StageRecord("QA", 3, NOW, ())])))
    assert not result.passed
    assert result.message == "stage Staging does not exist for this model"
    assert failure_message([result]) == (
        "gate requireStage Staging >= 10m failed: stage Staging does not exist for this model"
    )


def test_a_required_stage_is_found_whatever_the_case_of_its_name() -> None:
    spec = gates(requireStage={"name": "staging"})
    assert only(evaluate_gates(spec, inputs(stages=[staging(3, minutes_ago(1))]))).passed


def test_a_short_stretch_reports_how_long_and_how_long_is_needed() -> None:
    spec = gates(requireStage={"name": "Staging", "minDuration": "1h"})
    result = only(evaluate_gates(spec, inputs(stages=[staging(3, minutes_ago(4.5))])))
    assert result.value == 3600
    assert result.message == "version 3 was live in Staging for 4m30s (needs 1h)"
    assert failure_message([result]) == "gate requireStage Staging >= 1h failed: observed 4m30s"


def test_a_stretch_never_counts_negative_time() -> None:
    record = staging(3, NOW + timedelta(minutes=1))
    assert live_stretches(record, 3, NOW) == [timedelta(0)]


# -- approvals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("required", "approvals", "requested_by", "observed"),
    [
        (1, [], "alice", 0),
        (1, [("bob", 3)], "alice", 1),
        # The same approver twice counts once.
        (2, [("bob", 3), ("bob", 3)], "alice", 1),
        (2, [("bob", 3), ("carol", 3)], "alice", 2),
        # The requester's own approval does not count.
        (1, [("alice", 3)], "alice", 0),
        (2, [("alice", 3), ("bob", 3)], "alice", 1),
        # Approvals of other versions do not count.
        (1, [("bob", 2), ("carol", 4)], "alice", 0),
        # An unknown requester excludes nobody.
        (1, [("alice", 3)], None, 1),
        # Zero required passes with none.
        (0, [], "alice", 0),
    ],
)
def test_approvals_count_distinct_users_of_this_version_but_the_requester(
    required: int, approvals: list[tuple[str, int]], requested_by: str | None, observed: int
) -> None:
    spec = gates(approvals={"required": required})
    result = only(evaluate_gates(spec, inputs(approvals=approvals, requested_by=requested_by)))
    assert result.type == "Approvals"
    assert result.name == "approvals"
    assert result.value == required
    assert result.observed == observed
    assert result.passed is (observed >= required)


def test_a_missing_approval_reads_well() -> None:
    spec = gates(approvals={"required": 2})
    result = only(evaluate_gates(spec, inputs(approvals=[("alice", 3), ("bob", 3)])))
    assert result.message == "approved by bob; alice requested it and cannot approve it"
    assert failure_message([result]) == "gate approvals >= 2 failed: observed 1"


# -- what holds a promotion ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("metric", "stage_live", "approved", "reason", "blocking"),
    [
        (0.9, True, True, None, []),
        (0.9, True, False, Reason.AWAITING_APPROVAL, []),
        (0.9, False, False, Reason.REQUIRED_STAGE_NOT_MET, ["Stage"]),
        (0.5, False, False, Reason.GATE_FAILED, ["Metric", "Stage"]),
        (0.5, True, True, Reason.GATE_FAILED, ["Metric"]),
    ],
)
def test_what_holds_a_promotion_and_what_admission_refuses(
    metric: float, stage_live: bool, approved: bool, reason: Reason | None, blocking: list[str]
) -> None:
    spec = gates(
        metrics=[{"name": "test_auc", "op": ">=", "value": 0.82}],
        requireStage={"name": "Staging"},
        approvals={"required": 1},
    )
    record = staging(3 if stage_live else 2, minutes_ago(1))
    given = inputs(
        metrics={"test_auc": metric},
        stages=[record],
        approvals=[("bob", 3)] if approved else [],
    )
    results = evaluate_gates(spec, given)
    assert hold_reason(results) == reason
    assert all_passed(results) is (reason is None)
    assert [r.type for r in blocking_failures(results, given)] == blocking


@pytest.mark.parametrize(
    ("record", "blocking"),
    [
        # Live there now, not yet long enough: time cures it.
        (staging(3, minutes_ago(4)), []),
        # Live there earlier, too briefly: waiting will not help.
        (
            staging(4, minutes_ago(1), [entry(3, minutes_ago(5)), entry(4, minutes_ago(1))]),
            ["Stage"],
        ),
        # Never live there.
        (staging(2, minutes_ago(60)), ["Stage"]),
        # No such stage.
        (StageRecord("QA", 3, minutes_ago(60), ()), ["Stage"]),
    ],
)
def test_a_required_stage_blocks_admission_unless_time_will_cure_it(
    record: StageRecord, blocking: list[str]
) -> None:
    spec = gates(requireStage={"name": "Staging", "minDuration": "10m"})
    given = inputs(stages=[record])
    results = evaluate_gates(spec, given)
    assert hold_reason(results) == Reason.REQUIRED_STAGE_NOT_MET
    assert [r.type for r in blocking_failures(results, given)] == blocking


# -- inputs --------------------------------------------------------------------------------


def summary(last: float) -> MetricSummary:
    return MetricSummary(last=last, step=1, min=last, max=last, count=1)


def test_evaluations_override_lineage_metrics_and_the_latest_evaluation_wins() -> None:
    lineage = Lineage(metrics={"test_auc": summary(0.70), "val_auc": summary(0.81)})
    evaluations = [
        Evaluation(run="eval-late", metrics={"test_auc": 0.85}, finished_at=minutes_ago(1)),
        Evaluation(
            run="eval-early", metrics={"test_auc": 0.80, "f1": 0.6}, finished_at=minutes_ago(9)
        ),
        Evaluation(run="eval-untimed", metrics={"test_auc": 0.10, "f1": 0.1}),
    ]
    assert merge_metrics(lineage, evaluations) == {"test_auc": 0.85, "val_auc": 0.81, "f1": 0.6}


def test_metrics_are_empty_without_lineage_or_evaluations() -> None:
    assert merge_metrics(None, None) == {}
    assert merge_metrics(Lineage(), []) == {}


def model_stage(
    stage: str,
    *,
    model: str = "churn-model",
    version: int = 3,
    annotations: dict[str, str] | None = None,
    status: dict[str, Any] | None = None,
) -> ModelStage:
    return ModelStage.model_validate(
        {
            "metadata": {"name": f"{model}-{stage.lower()}", "annotations": annotations},
            "spec": {"model": model, "stage": stage, "version": version},
            "status": status,
        }
    )


def model_version(version: int = 3, status: dict[str, Any] | None = None) -> ModelVersion:
    return ModelVersion.model_validate(
        {
            "metadata": {"name": f"churn-model-v{version}"},
            "spec": {
                "model": "churn-model",
                "version": version,
                "artifact": {"uri": "s3://models/churn/3/", "digest": "sha256:" + "a" * 64},
            },
            "status": status,
        }
    )


def test_inputs_are_built_from_the_version_the_other_stages_and_the_annotations() -> None:
    key, value = encode_approval("bob", 3, at=minutes_ago(2))
    production = model_stage(
        "Production",
        annotations={REQUESTED_BY_ANNOTATION: "alice", key: value, "unrelated": "x"},
    )
    staging_stage = model_stage(
        "Staging",
        status={
            "liveVersion": 3,
            "liveSince": minutes_ago(30).isoformat(),
            "history": [{"version": 3, "at": minutes_ago(30).isoformat(), "result": "Succeeded"}],
        },
    )
    others = [
        production,
        staging_stage,
        model_stage("Staging", model="fraud-model"),
        model_stage("champion"),
    ]
    version = model_version(
        status={
            "lineage": {"metrics": {"test_auc": summary(0.9).to_dict()}},
            "evaluations": [{"run": "e", "metrics": {"latency_ms": 12.0}}],
        }
    )
    built = build_gate_inputs(production, version, others, now=NOW)
    assert built.version == 3
    assert built.metrics == {"test_auc": 0.9, "latency_ms": 12.0}
    assert sorted(built.other_stages) == ["Staging", "champion"]
    assert built.other_stages["Staging"] == StageRecord(
        "Staging", 3, minutes_ago(30), (entry(3, minutes_ago(30)),)
    )
    assert built.other_stages["champion"] == StageRecord("champion", None, None, ())
    assert built.requested_by == "alice"
    assert [(a.user, a.version) for a in built.approvals] == [("bob", 3)]
    assert built.now == NOW


def test_inputs_of_a_stage_without_annotations_have_no_requester_or_approvals() -> None:
    built = build_gate_inputs(model_stage("Production"), model_version(), [], now=NOW)
    assert built.requested_by is None
    assert built.approvals == []
    assert built.metrics == {}
    assert replace(built, now=NOW) == built


# -- whether a version can be promoted at all ---------------------------------------------


def with_conditions(*conditions: tuple[str, str, str]) -> ModelVersion:
    listed = None
    for type_, status, reason in conditions:
        listed = set_condition(
            listed,
            type=type_,
            status=status,
            reason=reason,
            message="why",
            now=NOW,  # type: ignore[arg-type]
        )
    return model_version(status={"conditions": [c.to_dict() for c in listed or []]})


@pytest.mark.parametrize(
    ("conditions", "problem"),
    [
        (
            [
                (ConditionType.ARTIFACT_VERIFIED, "True", Reason.ARTIFACT_VERIFIED),
                (ConditionType.READY, "True", Reason.RECONCILED),
            ],
            None,
        ),
        ([], "the artifact of ModelVersion churn-model-v3 has not been verified yet"),
        (
            [(ConditionType.ARTIFACT_VERIFIED, "False", Reason.DIGEST_MISMATCH)],
            "the artifact of ModelVersion churn-model-v3 is not verified "
            "(ArtifactVerified=False, DigestMismatch: why)",
        ),
        (
            [(ConditionType.ARTIFACT_VERIFIED, "Unknown", Reason.VERIFYING)],
            "the artifact of ModelVersion churn-model-v3 is not verified "
            "(ArtifactVerified=Unknown, Verifying: why)",
        ),
        (
            [
                (ConditionType.ARTIFACT_VERIFIED, "True", Reason.ARTIFACT_VERIFIED),
                (ConditionType.READY, "False", Reason.RUN_RUNNING),
            ],
            "ModelVersion churn-model-v3 is not Ready (Running: why)",
        ),
        (
            [(ConditionType.ARTIFACT_VERIFIED, "True", Reason.ARTIFACT_VERIFIED)],
            "ModelVersion churn-model-v3 is not Ready (no Ready condition yet)",
        ),
    ],
)
def test_only_a_ready_version_with_a_verified_artifact_can_be_promoted(
    conditions: list[tuple[str, str, str]], problem: str | None
) -> None:
    assert version_problem(with_conditions(*conditions)) == problem
