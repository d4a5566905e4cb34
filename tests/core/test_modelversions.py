"""A ModelVersion's conditions, assembled from its lineage and artifact outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from modelplane.api import ArtifactStatus, Lineage, ModelVersion, ModelVersionStatus
from modelplane.core.artifacts import ArtifactOutcome, VerificationPolicy
from modelplane.core.conditions import ConditionType, Reason, find_condition, set_condition
from modelplane.core.lineage import LineageOutcome
from modelplane.core.modelversions import assemble_status, notices, owned, pending

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
DIGEST = "sha256:" + "ab" * 32
SNAPSHOT = Lineage(experiment="churn", run="r1", recorded_at=NOW)

RECORDED = LineageOutcome(SNAPSHOT, "True", Reason.LINEAGE_RECORDED, "recorded")
RUNNING = LineageOutcome(SNAPSHOT, "False", Reason.RUN_RUNNING, "run r1 is still Running")
MISSING = LineageOutcome(None, "False", Reason.RUN_NOT_FOUND, "run r1 not found")
NO_RUN = LineageOutcome(None, None, "", "")

VERIFIED = ArtifactOutcome(
    ArtifactStatus(verified=True, size=3, digest=DIGEST, verified_at=NOW),
    "True",
    Reason.ARTIFACT_VERIFIED,
    "verified",
)
MISMATCH = ArtifactOutcome(
    ArtifactStatus(verified=False, size=3, digest="sha256:" + "cd" * 32, verified_at=NOW),
    "False",
    Reason.DIGEST_MISMATCH,
    "digest mismatch: expected A got B",
)
VERIFYING = ArtifactOutcome(None, "Unknown", Reason.VERIFYING, "not verified yet")
UNREACHABLE = ArtifactOutcome(
    ArtifactStatus(verified=False), "Unknown", Reason.STORE_UNREACHABLE, "cannot reach"
)


def assemble(
    lineage: LineageOutcome,
    artifact: ArtifactOutcome,
    previous: ModelVersionStatus | None = None,
    now: datetime = NOW,
) -> ModelVersionStatus:
    return assemble_status(previous, generation=2, lineage=lineage, artifact=artifact, now=now)


def condition(status: ModelVersionStatus, type_: str) -> tuple[str, str] | None:
    found = find_condition(status.conditions, type_)
    return (found.status, found.reason) if found is not None else None


def test_ready_when_lineage_is_recorded_and_artifact_verified() -> None:
    status = assemble(RECORDED, VERIFIED)
    assert condition(status, ConditionType.READY) == ("True", Reason.RECONCILED)
    assert condition(status, ConditionType.LINEAGE_RECORDED) == ("True", Reason.LINEAGE_RECORDED)
    assert condition(status, ConditionType.ARTIFACT_VERIFIED) == ("True", Reason.ARTIFACT_VERIFIED)
    assert condition(status, ConditionType.RECONCILING) is None
    assert condition(status, ConditionType.STALLED) is None
    assert status.observed_generation == 2
    assert status.lineage == SNAPSHOT
    assert status.artifact == VERIFIED.artifact


def test_ready_without_a_run_needs_only_the_artifact() -> None:
    status = assemble(NO_RUN, VERIFIED)
    assert condition(status, ConditionType.READY) == ("True", Reason.RECONCILED)
    assert condition(status, ConditionType.LINEAGE_RECORDED) is None


def test_a_mismatching_artifact_is_not_ready_and_stalls() -> None:
    status = assemble(RECORDED, MISMATCH)
    ready = find_condition(status.conditions, ConditionType.READY)
    assert ready is not None
    assert (ready.status, ready.reason) == ("False", Reason.DIGEST_MISMATCH)
    assert "expected A got B" in ready.message
    assert condition(status, ConditionType.STALLED) == ("True", Reason.DIGEST_MISMATCH)
    assert condition(status, ConditionType.RECONCILING) is None


def test_an_outage_is_progress_not_a_verdict() -> None:
    status = assemble(RECORDED, UNREACHABLE)
    assert condition(status, ConditionType.READY) == ("False", Reason.STORE_UNREACHABLE)
    assert condition(status, ConditionType.ARTIFACT_VERIFIED) == (
        "Unknown",
        Reason.STORE_UNREACHABLE,
    )
    assert condition(status, ConditionType.RECONCILING) == ("True", Reason.STORE_UNREACHABLE)
    assert condition(status, ConditionType.STALLED) is None


def test_a_missing_run_outranks_work_in_progress() -> None:
    status = assemble(MISSING, VERIFYING)
    ready = find_condition(status.conditions, ConditionType.READY)
    assert ready is not None
    assert ready.reason == Reason.RUN_NOT_FOUND
    assert "run r1 not found" in ready.message
    assert "not verified yet" in ready.message
    assert condition(status, ConditionType.STALLED) == ("True", Reason.RUN_NOT_FOUND)
    assert condition(status, ConditionType.RECONCILING) == ("True", Reason.VERIFYING)


def test_a_running_run_holds_ready_back_while_reconciling() -> None:
    status = assemble(RUNNING, VERIFIED)
    assert condition(status, ConditionType.READY) == ("False", Reason.RUN_RUNNING)
    assert condition(status, ConditionType.RECONCILING) == ("True", Reason.RUN_RUNNING)
    assert condition(status, ConditionType.STALLED) is None


def test_recovery_removes_stalled_and_keeps_other_fields() -> None:
    stalled = assemble(RECORDED, MISMATCH).model_copy(update={"stages": ["Production"]})
    later = NOW + timedelta(minutes=10)
    healed = assemble(RECORDED, VERIFIED, previous=stalled, now=later)
    assert condition(healed, ConditionType.STALLED) is None
    assert healed.stages == ["Production"]
    ready = find_condition(healed.conditions, ConditionType.READY)
    assert ready is not None
    assert ready.last_transition_time == later


def test_an_unchanged_outcome_changes_no_transition_time() -> None:
    first = assemble(RECORDED, VERIFIED)
    again = assemble(RECORDED, VERIFIED, previous=first, now=NOW + timedelta(hours=1))
    assert owned(again) == owned(first)


def test_owned_fields_leave_stages_and_evaluations_out() -> None:
    status = assemble(RECORDED, VERIFIED).model_copy(update={"stages": ["Staging"]})
    assert set(owned(status)) == {"observedGeneration", "conditions", "lineage", "artifact"}
    assert owned(None) == {}


def test_notices_mark_transitions_only() -> None:
    pending_ = assemble(RECORDED, VERIFYING)
    verified = assemble(RECORDED, VERIFIED, previous=pending_)
    first = notices(None, pending_.conditions)
    assert [(n.type, n.reason) for n in first] == [("Normal", Reason.LINEAGE_RECORDED)]
    second = notices(pending_.conditions, verified.conditions)
    assert [(n.type, n.reason) for n in second] == [("Normal", Reason.ARTIFACT_VERIFIED)]
    assert notices(verified.conditions, verified.conditions) == []


def test_failures_are_warnings_and_a_new_failure_message_is_news() -> None:
    mismatch = assemble(RECORDED, MISMATCH)
    first = notices(None, mismatch.conditions)
    assert ("Warning", Reason.DIGEST_MISMATCH) in [(n.type, n.reason) for n in first]
    reworded = ArtifactOutcome(
        MISMATCH.artifact, "False", Reason.DIGEST_MISMATCH, "expected A got C"
    )
    again = assemble(RECORDED, reworded, previous=mismatch)
    assert [n.message for n in notices(mismatch.conditions, again.conditions)] == [
        "expected A got C"
    ]


def test_missing_runs_and_outages_are_warnings() -> None:
    status = assemble(MISSING, UNREACHABLE)
    kinds = {(n.type, n.reason) for n in notices(None, status.conditions)}
    assert kinds == {("Warning", Reason.RUN_NOT_FOUND), ("Warning", Reason.STORE_UNREACHABLE)}


def version(status: ModelVersionStatus | None, **meta: Any) -> ModelVersion:
    return ModelVersion.from_object(
        {
            "apiVersion": "modelplane.io/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": "churn-v1", "namespace": "ml", **meta},
            "spec": {
                "model": "churn",
                "version": 1,
                "run": "r1",
                "artifact": {"uri": "s3://models/churn/1/", "digest": DIGEST},
            },
            "status": status.to_dict() if status is not None else None,
        }
    )


def test_pending_work_is_seen_from_the_object_alone() -> None:
    policy = VerificationPolicy()
    done = assemble(RECORDED, VERIFIED)
    assert not pending(version(done), now=NOW, policy=policy)
    assert pending(version(None), now=NOW, policy=policy)
    assert pending(version(assemble(RUNNING, VERIFIED)), now=NOW, policy=policy)
    assert pending(version(assemble(RECORDED, UNREACHABLE)), now=NOW, policy=policy)
    assert pending(version(done), now=NOW + timedelta(days=2), policy=policy)
    requested = version(done, annotations={"modelplane.io/verify-requested": "now"})
    assert pending(requested, now=NOW, policy=policy)


def test_a_recorded_condition_alone_is_not_a_final_lineage() -> None:
    conditions = set_condition(
        None,
        type=ConditionType.LINEAGE_RECORDED,
        status="True",
        reason=Reason.LINEAGE_RECORDED,
        now=NOW,
    )
    done = assemble(RECORDED, VERIFIED).model_copy(
        update={"conditions": conditions, "lineage": None}
    )
    assert pending(version(done), now=NOW, policy=VerificationPolicy())
