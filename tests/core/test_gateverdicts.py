"""The gates webhook's verdict on a version change: refuse, admit, or admit with a warning."""

from __future__ import annotations

from typing import Any

from modelplane.api import ModelStage, ModelVersion
from modelplane.core.conditions import ConditionType, Reason
from modelplane.core.gateverdicts import GateVerdict, judge_version_change, reads_other_stages
from tests.core.test_gates import NOW, minutes_ago, model_stage, model_version, summary
from tests.core.test_gates import with_conditions as version_with_conditions

READY = (
    (ConditionType.ARTIFACT_VERIFIED, "True", Reason.ARTIFACT_VERIFIED),
    (ConditionType.READY, "True", Reason.RECONCILED),
)


def ready_version(test_auc: float = 0.9) -> ModelVersion:
    conditions = version_with_conditions(*READY).status
    assert conditions is not None
    return model_version(
        status={
            "conditions": [condition.to_dict() for condition in conditions.conditions or []],
            "lineage": {"metrics": {"test_auc": summary(test_auc).to_dict()}},
        }
    )


def production(**gates: Any) -> ModelStage:
    stage = model_stage("Production")
    return ModelStage.model_validate(
        {**stage.to_dict(), "spec": {**stage.spec.to_dict(), "gates": gates or None}}
    )


def staging_live(version: int, minutes: float) -> ModelStage:
    return model_stage(
        "Staging",
        status={
            "liveVersion": version,
            "liveSince": minutes_ago(minutes).isoformat(),
            "history": [
                {"version": version, "at": minutes_ago(minutes).isoformat(), "result": "Succeeded"}
            ],
        },
    )


def test_a_missing_version_is_refused_by_name() -> None:
    verdict = judge_version_change(production(), None, [], now=NOW)
    assert verdict == GateVerdict(
        "version 3 of churn-model does not exist: no ModelVersion churn-model-v3 in namespace "
    )
    assert not verdict.admitted


def test_an_unverified_version_is_refused_with_the_reason() -> None:
    verdict = judge_version_change(production(), version_with_conditions(), [], now=NOW)
    assert verdict.refusal == (
        "version 3 of churn-model cannot be promoted: the artifact of ModelVersion "
        "churn-model-v3 has not been verified yet"
    )


def test_a_ready_version_without_gates_is_admitted_without_warnings() -> None:
    assert judge_version_change(production(), ready_version(), [], now=NOW) == GateVerdict()


def test_a_failed_metric_gate_is_refused_with_the_observed_value() -> None:
    stage = production(metrics=[{"name": "test_auc", "op": ">=", "value": 0.95}])
    verdict = judge_version_change(stage, ready_version(0.9), [], now=NOW)
    assert verdict.refusal is not None
    assert "test_auc" in verdict.refusal
    assert "0.9" in verdict.refusal
    assert verdict.refusal.endswith("(version 3)")


def test_a_stage_gate_that_only_needs_time_admits_with_a_warning() -> None:
    stage = production(requireStage={"name": "Staging", "minDuration": "1h"})
    verdict = judge_version_change(stage, ready_version(), [staging_live(3, 10)], now=NOW)
    assert verdict.admitted
    assert len(verdict.warnings) == 1
    assert "Staging" in verdict.warnings[0]
    assert verdict.warnings[0].endswith("version 3 waits for these gates before it rolls out")


def test_a_required_stage_that_never_served_the_version_is_refused() -> None:
    stage = production(requireStage={"name": "Staging"})
    verdict = judge_version_change(stage, ready_version(), [staging_live(2, 90)], now=NOW)
    assert not verdict.admitted


def test_only_a_require_stage_gate_reads_the_other_stages() -> None:
    assert reads_other_stages(production(requireStage={"name": "Staging"}))
    metric = {"name": "test_auc", "op": ">=", "value": 0.5}
    assert not reads_other_stages(production(metrics=[metric]))
    assert not reads_other_stages(production())
