"""A ModelVersion's status, assembled from its lineage and artifact outcomes.

`assemble_status` writes the conditions: `LineageRecorded` and `ArtifactVerified` from the two
outcomes, and `Ready`, which is True when the lineage is recorded (or no run is named) and the
artifact is verified. Following kstatus, `Reconciling` is present only while work is under way
(verifying, waiting for the run to finish, retrying an unreachable store) and `Stalled` only
while a person must act (the run is missing, the artifact is missing or differs). `notices` says
which changes deserve a Kubernetes Event, so that Events mark transitions rather than repeat.

The operator owns the status fields listed in `OWNED_FIELDS`; `status.stages` is kept by
`modelplane.core.stages`, and other fields (evaluations) belong to other handlers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from modelplane.api import Condition, ModelVersion, ModelVersionStatus
from modelplane.core import lineage as lineages
from modelplane.core.artifacts import (
    VERIFY_HANDLED_ANNOTATION,
    VERIFY_REQUESTED_ANNOTATION,
    ArtifactOutcome,
    VerificationPolicy,
    verification_due,
)
from modelplane.core.conditions import (
    ConditionType,
    Reason,
    find_condition,
    remove_condition,
    set_condition,
)

OWNED_FIELDS = ("observedGeneration", "conditions", "lineage", "artifact")

# Reasons that mean "in progress" rather than "needs a person".
_PROGRESSING_REASONS = frozenset({Reason.RUN_RUNNING, Reason.VERIFYING, Reason.STORE_UNREACHABLE})


@dataclass(frozen=True)
class Notice:
    """An Event to post on the object."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class _Blocker:
    reason: str
    message: str

    @property
    def progressing(self) -> bool:
        return self.reason in _PROGRESSING_REASONS


def assemble_status(
    previous: ModelVersionStatus | None,
    *,
    generation: int | None,
    lineage: lineages.LineageOutcome,
    artifact: ArtifactOutcome,
    now: datetime,
) -> ModelVersionStatus:
    """The new status: `previous` with the owned fields recomputed from the two outcomes."""
    conditions: list[Condition] = list(previous.conditions or []) if previous else []
    if lineage.status is None:
        conditions = remove_condition(conditions, ConditionType.LINEAGE_RECORDED)
    else:
        conditions = set_condition(
            conditions,
            type=ConditionType.LINEAGE_RECORDED,
            status=lineage.status,
            reason=lineage.reason,
            message=lineage.message,
            observed_generation=generation,
            now=now,
        )
    conditions = set_condition(
        conditions,
        type=ConditionType.ARTIFACT_VERIFIED,
        status=artifact.status,
        reason=artifact.reason,
        message=artifact.message,
        observed_generation=generation,
        now=now,
    )
    conditions = _summarize(conditions, _blockers(lineage, artifact), generation, now)
    base = previous if previous is not None else ModelVersionStatus()
    return base.model_copy(
        update={
            "observed_generation": generation,
            "conditions": conditions,
            "lineage": lineage.lineage,
            "artifact": artifact.artifact,
        }
    )


def owned(status: ModelVersionStatus | None) -> dict[str, Any]:
    """The fields of `status` this module writes, as on the wire."""
    if status is None:
        return {}
    dumped = status.to_dict()
    return {key: dumped[key] for key in OWNED_FIELDS if key in dumped}


def notices(before: Sequence[Condition] | None, after: Sequence[Condition] | None) -> list[Notice]:
    """Events for the transitions from `before` to `after` of LineageRecorded and ArtifactVerified.

    A change of status or reason is a transition; so is a new message on a False condition (the
    artifact now differs in another way). Starting verification is not worth an Event.
    """
    result: list[Notice] = []
    for type_ in (ConditionType.LINEAGE_RECORDED, ConditionType.ARTIFACT_VERIFIED):
        old = find_condition(before, type_)
        new = find_condition(after, type_)
        if new is None or new.reason == Reason.VERIFYING:
            continue
        changed = old is None or (old.status, old.reason) != (new.status, new.reason)
        reworded = old is not None and new.status == "False" and old.message != new.message
        if not (changed or reworded):
            continue
        healthy = new.status == "True" or new.reason == Reason.RUN_RUNNING
        result.append(Notice("Normal" if healthy else "Warning", new.reason, new.message))
    return result


def pending(
    version: ModelVersion,
    *,
    now: datetime,
    policy: VerificationPolicy,
) -> bool:
    """Whether a periodic look at `version` has anything to do (cheap: reads only the object)."""
    status = version.status
    if version.spec.run is not None and not lineages.is_final(status, version.spec.run):
        return True
    annotations = version.metadata.annotations or {}
    due = verification_due(
        status,
        now=now,
        policy=policy,
        requested=annotations.get(VERIFY_REQUESTED_ANNOTATION),
        handled=annotations.get(VERIFY_HANDLED_ANNOTATION),
    )
    return due is not None


def _blockers(lineage: lineages.LineageOutcome, artifact: ArtifactOutcome) -> list[_Blocker]:
    found = []
    if artifact.status != "True":
        found.append(_Blocker(artifact.reason, artifact.message))
    if not lineage.satisfied:
        found.append(_Blocker(lineage.reason, lineage.message))
    # Problems a person must fix come before work that is merely under way.
    return sorted(found, key=lambda blocker: blocker.progressing)


def _summarize(
    conditions: list[Condition],
    blockers: list[_Blocker],
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    """Ready, Reconciling and Stalled from what holds the version back."""
    if not blockers:
        conditions = set_condition(
            conditions,
            type=ConditionType.READY,
            status="True",
            reason=Reason.RECONCILED,
            message="the artifact is verified and the lineage recorded",
            observed_generation=generation,
            now=now,
        )
    else:
        conditions = set_condition(
            conditions,
            type=ConditionType.READY,
            status="False",
            reason=blockers[0].reason,
            message="; ".join(blocker.message for blocker in blockers),
            observed_generation=generation,
            now=now,
        )
    for type_, chosen in (
        (ConditionType.STALLED, [b for b in blockers if not b.progressing]),
        (ConditionType.RECONCILING, [b for b in blockers if b.progressing]),
    ):
        conditions = _abnormal(conditions, type_, chosen, generation, now)
    return conditions


def _abnormal(
    conditions: list[Condition],
    type_: str,
    blockers: list[_Blocker],
    generation: int | None,
    now: datetime,
) -> list[Condition]:
    if not blockers:
        return remove_condition(conditions, type_)
    return set_condition(
        conditions,
        type=type_,
        status="True",
        reason=blockers[0].reason,
        message="; ".join(blocker.message for blocker in blockers),
        observed_generation=generation,
        now=now,
    )
