"""`modelplane approve`: the annotation it writes and what it refuses before writing."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from cli_objects import model_stage

from modelplane.api import ModelStage
from modelplane.cli.approval_commands import approval_count, plan_approval
from modelplane.cli.errors import CommandError
from modelplane.core.approvals import (
    REQUESTED_BY_ANNOTATION,
    approval_key,
    decode_approval,
    encode_approval,
)

NOW = datetime(2025, 3, 1, 12, 0, 5, 999, tzinfo=UTC)


def stage(version: int = 4, annotations: dict[str, str] | None = None) -> ModelStage:
    obj = model_stage("churn", "Production", version, approvals=2)
    obj["metadata"]["resourceVersion"] = "812"
    obj["metadata"]["annotations"] = {REQUESTED_BY_ANNOTATION: "alice", **(annotations or {})}
    return ModelStage.from_object(obj)


def test_the_patch_sets_the_users_approval_annotation_guarded_by_resource_version() -> None:
    write = plan_approval(stage(), "bob", 4, "AUC holds on the holdout", NOW)
    assert write.key == approval_key("bob")
    assert write.patch == {
        "metadata": {"resourceVersion": "812", "annotations": {write.key: write.value}}
    }
    assert json.loads(write.value) == {
        "user": "bob",
        "version": 4,
        "comment": "AUC holds on the holdout",
        "at": "2025-03-01T12:00:05+00:00",
    }
    approval = decode_approval(write.key, write.value)
    assert (approval.user, approval.version) == ("bob", 4)


def test_a_version_other_than_the_desired_one_is_refused_with_a_way_forward() -> None:
    with pytest.raises(CommandError) as refused:
        plan_approval(stage(version=4), "bob", 3, None, NOW)
    message = str(refused.value)
    assert "asks for version 4 (spec.version), not 3" in message
    assert "modelplane promote churn Production 3" in message


def test_the_requester_cannot_approve_their_own_version() -> None:
    with pytest.raises(CommandError, match="'alice' requested version 4 and cannot approve"):
        plan_approval(stage(), "alice", 4, None, NOW)


def test_approvals_count_distinct_others_for_the_desired_version() -> None:
    annotations = dict(
        [
            encode_approval("bob", 4, at=NOW),
            encode_approval("carol", 3, at=NOW),
            encode_approval("alice", 4, at=NOW),
        ]
    )
    assert approval_count(stage(annotations=annotations)) == (1, 2)
