"""set_condition behaves like Kubernetes' meta.SetStatusCondition, purely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelplane.api import Condition, ConditionStatus
from modelplane.core.conditions import (
    MAX_MESSAGE,
    ConditionType,
    Reason,
    find_condition,
    is_true,
    remove_condition,
    set_condition,
)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


def _ready(
    status: ConditionStatus, now: datetime, message: str = "", observed_generation: int = 1
) -> list[Condition]:
    return set_condition(
        None,
        type=ConditionType.READY,
        status=status,
        reason=Reason.RECONCILED,
        message=message,
        observed_generation=observed_generation,
        now=now,
    )


def test_adds_a_new_condition_stamped_now() -> None:
    """Adds a missing condition with lastTransitionTime = now and every given field."""
    [condition] = set_condition(
        [],
        type=ConditionType.ARTIFACT_VERIFIED,
        status="False",
        reason=Reason.DIGEST_MISMATCH,
        message="expected sha256:ab.., found sha256:cd..",
        observed_generation=3,
        now=T0,
    )
    assert condition == Condition(
        type="ArtifactVerified",
        status="False",
        reason="DigestMismatch",
        message="expected sha256:ab.., found sha256:cd..",
        observed_generation=3,
        last_transition_time=T0,
    )


def test_keeps_transition_time_while_status_is_unchanged() -> None:
    """Keeps lastTransitionTime when the status stays the same, but takes the new reason,
    message and observedGeneration."""
    before = _ready("True", T0, message="old", observed_generation=1)
    [after] = set_condition(
        before,
        type="Ready",
        status="True",
        reason=Reason.ROLLOUT_COMPLETE,
        message="new",
        observed_generation=2,
        now=T1,
    )
    assert after.last_transition_time == T0
    assert (after.reason, after.message, after.observed_generation) == ("RolloutComplete", "new", 2)


def test_moves_transition_time_when_status_changes() -> None:
    """Moves lastTransitionTime to now when the status changes."""
    before = _ready("True", T0)
    [after] = set_condition(before, type="Ready", status="False", reason="GateFailed", now=T1)
    assert (after.status, after.last_transition_time) == ("False", T1)


def test_leaves_other_conditions_and_the_input_alone() -> None:
    """Leaves other conditions in place and in order, and does not modify its input."""
    conditions = set_condition(
        _ready("False", T0), type="Reconciling", status="True", reason="Progressing", now=T0
    )
    snapshot = [c.model_copy(deep=True) for c in conditions]
    updated = set_condition(conditions, type="Ready", status="True", reason="Reconciled", now=T1)
    assert conditions == snapshot
    assert [c.type for c in updated] == ["Ready", "Reconciling"]
    assert updated[1] == snapshot[1]
    assert updated[0].last_transition_time == T1


def test_truncates_now_to_whole_seconds() -> None:
    """Stores whole seconds, as the API server does, so a read-back condition compares equal."""
    [condition] = _ready("True", T0.replace(microsecond=654321))
    assert condition.last_transition_time == T0
    assert condition.to_dict()["lastTransitionTime"] == "2025-03-01T12:00:00Z"


def test_refuses_a_naive_now() -> None:
    """Refuses a timezone-naive `now`, which would be written without an offset."""
    with pytest.raises(ValueError, match="timezone-aware"):
        _ready("True", datetime(2025, 3, 1, 12, 0, 0))


def test_cuts_messages_longer_than_the_api_allows() -> None:
    """Cuts a message longer than the CRD's maxLength instead of having the patch rejected."""
    [condition] = _ready("False", T0, message="x" * (MAX_MESSAGE + 10))
    assert len(condition.message) == MAX_MESSAGE
    assert condition.message.endswith("...")


def test_writes_constants_as_plain_strings() -> None:
    """Writes StrEnum types and reasons as plain strings on the wire."""
    [condition] = set_condition(
        None, type=ConditionType.GATES_PASSED, status="True", reason=Reason.GATES_PASSED, now=T0
    )
    wire = condition.to_dict()
    assert (wire["type"], wire["reason"]) == ("GatesPassed", "AllGatesPassed")
    assert type(wire["type"]) is str


def test_finds_removes_and_tests_conditions() -> None:
    """Finds a condition by type, tells whether it is True, and removes it."""
    conditions = set_condition(
        _ready("True", T0), type="Stalled", status="True", reason="ReconcileError", now=T0
    )
    assert find_condition(conditions, "Stalled") is conditions[1]
    assert find_condition(conditions, "RolledOut") is None
    assert is_true(conditions, "Ready")
    assert not is_true(conditions, "RolledOut")
    assert not is_true(
        set_condition(conditions, type="Ready", status="Unknown", reason="X", now=T1), "Ready"
    )
    assert [c.type for c in remove_condition(conditions, "Stalled")] == ["Ready"]
    assert remove_condition(None, "Stalled") == []


@given(st.lists(st.sampled_from(["True", "False", "Unknown"]), min_size=1, max_size=20))
def test_transition_time_is_the_time_of_the_last_status_change(
    statuses: list[ConditionStatus],
) -> None:
    """After any sequence of updates, lastTransitionTime is when the status last changed."""
    conditions: list[Condition] = []
    last_change = T0
    for minute, status in enumerate(statuses):
        now = T0 + timedelta(minutes=minute)
        if minute == 0 or status != statuses[minute - 1]:
            last_change = now
        conditions = set_condition(
            conditions, type="Ready", status=status, reason="Reconciled", now=now
        )
    [condition] = conditions
    assert condition.status == statuses[-1]
    assert condition.last_transition_time == last_change
