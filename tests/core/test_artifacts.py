"""When an artifact is verified, and what a check or an outage means for the status."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from modelplane.api import ArtifactStatus, ModelVersionStatus
from modelplane.core.artifacts import (
    ArtifactCheck,
    DueReason,
    StoreOutage,
    VerificationPolicy,
    outcome_of,
    retry_delay,
    unchanged,
    verification_due,
)
from modelplane.core.conditions import ConditionType, Reason, set_condition

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
POLICY = VerificationPolicy(
    reverify_after=timedelta(hours=24), retry_failed_after=timedelta(minutes=5)
)
DIGEST = "sha256:" + "ab" * 32


def status_with(
    condition: str, reason: str, *, verified: bool, checked: datetime | None = NOW
) -> ModelVersionStatus:
    conditions = set_condition(
        None,
        type=ConditionType.ARTIFACT_VERIFIED,
        status=condition,  # type: ignore[arg-type]
        reason=reason,
        now=NOW,
    )
    artifact = ArtifactStatus(verified=verified, size=3, digest=DIGEST, verified_at=checked)
    return ModelVersionStatus(conditions=conditions, artifact=artifact)


def due(status: ModelVersionStatus | None, *, at: datetime = NOW, **kw: str) -> DueReason | None:
    return verification_due(status, now=at, policy=POLICY, **kw)


def test_a_new_version_is_due() -> None:
    assert due(None) is DueReason.FIRST
    assert due(ModelVersionStatus(conditions=None)) is DueReason.FIRST
    verifying = status_with("Unknown", Reason.VERIFYING, verified=False, checked=None)
    assert due(verifying) is DueReason.FIRST


def test_a_fresh_verdict_is_not_due() -> None:
    assert due(status_with("True", Reason.ARTIFACT_VERIFIED, verified=True)) is None
    assert due(status_with("False", Reason.DIGEST_MISMATCH, verified=False)) is None


def test_a_failed_verdict_is_retried_after_the_retry_interval() -> None:
    failed = status_with("False", Reason.ARTIFACT_NOT_FOUND, verified=False)
    assert due(failed, at=NOW + timedelta(minutes=4)) is None
    assert due(failed, at=NOW + timedelta(minutes=5)) is DueReason.RETRY_FAILED


def test_a_success_is_checked_again_after_the_reverify_interval() -> None:
    verified = status_with("True", Reason.ARTIFACT_VERIFIED, verified=True)
    assert due(verified, at=NOW + timedelta(hours=23)) is None
    assert due(verified, at=NOW + timedelta(hours=24)) is DueReason.PERIODIC


def test_an_outage_is_always_due_and_the_caller_backs_off() -> None:
    unreachable = status_with("Unknown", Reason.STORE_UNREACHABLE, verified=False)
    assert due(unreachable) is DueReason.STORE_UNREACHABLE


def test_a_new_request_value_is_due_until_handled() -> None:
    verified = status_with("True", Reason.ARTIFACT_VERIFIED, verified=True)
    assert due(verified, requested="1") is DueReason.REQUESTED
    assert due(verified, requested="2", handled="1") is DueReason.REQUESTED
    assert due(verified, requested="2", handled="2") is None


def test_a_verdict_of_success_is_written_with_size_digest_and_time() -> None:
    check = ArtifactCheck(True, "Verified", "artifact verified", size=3, digest=DIGEST)
    outcome = outcome_of(check, None, now=NOW + timedelta(microseconds=5))
    assert outcome.status == "True"
    assert outcome.reason == Reason.ARTIFACT_VERIFIED
    assert outcome.artifact == ArtifactStatus(verified=True, size=3, digest=DIGEST, verified_at=NOW)


def test_a_mismatch_keeps_the_stores_reason_and_message() -> None:
    message = f"digest mismatch at s3://m/a: expected {DIGEST} got sha256:{'cd' * 32}"
    check = ArtifactCheck(False, "DigestMismatch", message, size=3, digest="sha256:" + "cd" * 32)
    outcome = outcome_of(check, None, now=NOW)
    assert outcome.status == "False"
    assert outcome.reason == "DigestMismatch"
    assert outcome.message == message
    assert outcome.artifact is not None
    assert outcome.artifact.verified is False
    assert outcome.artifact.digest == "sha256:" + "cd" * 32


def test_an_outage_is_never_reported_as_verified() -> None:
    earlier = ArtifactStatus(verified=True, size=3, digest=DIGEST, verified_at=NOW)
    outcome = outcome_of(StoreOutage("connection refused"), earlier, now=NOW + timedelta(days=1))
    assert outcome.status == "Unknown"
    assert outcome.reason == Reason.STORE_UNREACHABLE
    assert "connection refused" in outcome.message
    assert outcome.artifact is not None
    assert outcome.artifact.verified is False
    # The record of the last real check is kept, not refreshed.
    assert outcome.artifact.verified_at == NOW


def test_an_outage_before_any_verdict_writes_an_unverified_artifact() -> None:
    outcome = outcome_of(StoreOutage("timeout"), None, now=NOW)
    assert outcome.artifact == ArtifactStatus(verified=False)
    assert outcome.status == "Unknown"


def test_without_a_check_the_last_verdict_stands() -> None:
    failed = status_with("False", Reason.DIGEST_MISMATCH, verified=False)
    outcome = unchanged(failed)
    assert (outcome.status, outcome.reason) == ("False", Reason.DIGEST_MISMATCH)
    assert outcome.artifact == failed.artifact


def test_without_any_verdict_verification_is_pending() -> None:
    outcome = unchanged(None)
    assert (outcome.status, outcome.reason) == ("Unknown", Reason.VERIFYING)
    assert outcome.artifact is None


def test_retry_delays_double_and_are_capped() -> None:
    delays = [retry_delay(retry) for retry in range(10)]
    assert delays[:4] == [5, 10, 20, 40]
    assert delays[-1] == 300
    assert all(a <= b for a, b in itertools.pairwise(delays))
    assert retry_delay(10_000) == 300


def test_policy_reads_durations_from_the_environment() -> None:
    policy = VerificationPolicy.from_env(
        {"MODELPLANE_REVERIFY_INTERVAL": "6h", "MODELPLANE_VERIFY_RETRY_INTERVAL": "90s"}
    )
    assert policy.reverify_after == timedelta(hours=6)
    assert policy.retry_failed_after == timedelta(seconds=90)
    assert VerificationPolicy.from_env({}) == VerificationPolicy()


def test_policy_rejects_a_bad_duration() -> None:
    with pytest.raises(ValueError, match="MODELPLANE_REVERIFY_INTERVAL"):
        VerificationPolicy.from_env({"MODELPLANE_REVERIFY_INTERVAL": "daily"})
