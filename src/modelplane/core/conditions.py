"""Status conditions: the one helper that sets them, and the condition types and reasons.

`set_condition` behaves like Kubernetes' `meta.SetStatusCondition`: it adds a condition or
updates the one of the same type, and moves `lastTransitionTime` only when the status changes,
so `kubectl wait`, kstatus, Flux and Argo CD see when a state began rather than when it was last
checked. It is pure: it takes the current list and the time, and returns a new list.

Types and reasons are constants (StrEnum members are plain strings on the wire). Following
kstatus, `Reconciling` and `Stalled` are present only while abnormal: remove them with
`remove_condition` once the object is healthy again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from modelplane.api import Condition, ConditionStatus

# The API server's bound on condition messages; longer text is cut rather than rejected.
MAX_MESSAGE = 32768
_ELLIPSIS = "..."


class ConditionType(StrEnum):
    """Condition types written by modelplane."""

    # kstatus' standard types, on every kind.
    READY = "Ready"
    RECONCILING = "Reconciling"
    STALLED = "Stalled"
    # Run
    LINEAGE_VALID = "LineageValid"
    # ModelVersion
    ARTIFACT_VERIFIED = "ArtifactVerified"
    LINEAGE_RECORDED = "LineageRecorded"
    # ModelStage
    GATES_PASSED = "GatesPassed"
    ROLLED_OUT = "RolledOut"


class Reason(StrEnum):
    """Reasons for condition transitions: CamelCase, machine-readable."""

    # Shared
    RECONCILED = "Reconciled"
    PROGRESSING = "Progressing"
    INVALID_SPEC = "InvalidSpec"
    RECONCILE_ERROR = "ReconcileError"
    # Experiment and Run
    EXPERIMENT_NOT_FOUND = "ExperimentNotFound"
    PARENT_NOT_FOUND = "ParentNotFound"
    RUN_RUNNING = "Running"
    RUN_FINISHED = "Finished"
    RUN_FAILED = "Failed"
    RUN_KILLED = "Killed"
    HEARTBEAT_LOST = "HeartbeatLost"
    # ModelVersion
    RUN_NOT_FOUND = "RunNotFound"
    LINEAGE_RECORDED = "LineageRecorded"
    VERIFYING = "Verifying"
    ARTIFACT_VERIFIED = "Verified"
    ARTIFACT_NOT_FOUND = "ArtifactNotFound"
    DIGEST_MISMATCH = "DigestMismatch"
    STORE_UNREACHABLE = "StoreUnreachable"
    # ModelStage
    VERSION_NOT_FOUND = "VersionNotFound"
    VERSION_NOT_READY = "VersionNotReady"
    GATES_PASSED = "AllGatesPassed"
    GATE_FAILED = "GateFailed"
    AWAITING_APPROVAL = "AwaitingApproval"
    REQUIRED_STAGE_NOT_MET = "RequiredStageNotMet"
    ROLLOUT_PROGRESSING = "RolloutProgressing"
    ROLLOUT_COMPLETE = "RolloutComplete"
    PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
    ROLLED_BACK = "RolledBack"
    NO_SERVING = "NoServing"


def set_condition(
    conditions: Sequence[Condition] | None,
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str = "",
    observed_generation: int | None = None,
    now: datetime,
) -> list[Condition]:
    """Returns `conditions` with the condition of `type` added or updated.

    `lastTransitionTime` becomes `now` for a new condition or a changed status and is kept
    otherwise; reason, message and observedGeneration always take the new values. The input is
    not modified. `now` must be timezone-aware; it is truncated to whole seconds, the precision
    Kubernetes stores, so a condition read back from the API server compares equal.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - len(_ELLIPSIS)] + _ELLIPSIS
    now = now.replace(microsecond=0)
    result: list[Condition] = []
    found = False
    for existing in conditions or ():
        if existing.type != type:
            result.append(existing.model_copy())
            continue
        found = True
        changed = existing.status != status
        result.append(
            Condition(
                type=str(type),
                status=status,
                reason=str(reason),
                message=message,
                observed_generation=observed_generation,
                last_transition_time=now if changed else existing.last_transition_time,
            )
        )
    if not found:
        result.append(
            Condition(
                type=str(type),
                status=status,
                reason=str(reason),
                message=message,
                observed_generation=observed_generation,
                last_transition_time=now,
            )
        )
    return result


def remove_condition(conditions: Sequence[Condition] | None, type: str) -> list[Condition]:
    """Returns `conditions` without the condition of `type` (e.g. Reconciling once healthy)."""
    return [c.model_copy() for c in conditions or () if c.type != type]


def find_condition(conditions: Sequence[Condition] | None, type: str) -> Condition | None:
    """The condition of `type`, or None."""
    return next((c for c in conditions or () if c.type == type), None)


def is_true(conditions: Sequence[Condition] | None, type: str) -> bool:
    """Whether the condition of `type` is present with status True."""
    found = find_condition(conditions, type)
    return found is not None and found.status == "True"
