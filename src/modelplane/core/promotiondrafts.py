"""The plan of one ModelStage reconciliation while it is made: its status, Events and history.

A `Draft` starts from the stage's current status and is changed step by step by the planning
code (`modelplane.core.promotions` and the modules it uses): conditions set the kstatus way
(`healthy`, `progressing`, `stalled`), history entries recorded once (`record`), the rollout
reported (`rollout`), a version made live (`went_live`); `finish` turns it into the `Plan`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from modelplane.api import (
    ConditionStatus,
    HistoryEntry,
    HistoryResult,
    ModelStage,
    ModelStageStatus,
    RolloutPhase,
    RolloutStatus,
)
from modelplane.core import history as histories
from modelplane.core.approvals import approvals_of, requested_by
from modelplane.core.conditions import (
    ConditionType,
    find_condition,
    remove_condition,
    set_condition,
)
from modelplane.core.deploymentstates import DeploymentState
from modelplane.core.promotionplans import Action, Plan, World
from modelplane.core.rollouts import deployment_name
from modelplane.core.statuses import Note

PROMOTED = "Promoted"
"""Event reason on the ModelStage and the ModelVersion when a version goes live."""


@dataclass
class Draft:
    """The plan being made: the new status, Events and entries, built up step by step."""

    stage: ModelStage
    world: World
    now: datetime
    status: ModelStageStatus = field(init=False)
    old: ModelStageStatus = field(init=False)
    notes: list[Note] = field(default_factory=list)
    version_notes: list[Note] = field(default_factory=list)
    entries: list[HistoryEntry] = field(default_factory=list)
    failed_gates: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.now = self.now.replace(microsecond=0)
        self.old = self.stage.status or ModelStageStatus()
        approvals = approvals_of(self.stage.metadata.annotations, version=self.desired)
        self.status = self.old.model_copy(
            deep=True,
            update={"observed_generation": self.generation, "approvals": approvals or None},
        )

    @property
    def generation(self) -> int | None:
        return self.stage.metadata.generation

    @property
    def desired(self) -> int:
        """N: the version spec.version asks for."""
        return self.stage.spec.version

    @property
    def live(self) -> int | None:
        """L: the version live when this reconciliation began."""
        return self.old.live_version

    @property
    def name(self) -> str:
        return deployment_name(self.stage)

    def set(self, type_: str, status: ConditionStatus, reason: str, message: str) -> None:
        self.status.conditions = set_condition(
            self.status.conditions,
            type=type_,
            status=status,
            reason=reason,
            message=message,
            observed_generation=self.generation,
            now=self.now,
        )

    def drop(self, type_: str) -> None:
        self.status.conditions = remove_condition(self.status.conditions, type_)

    def healthy(self, reason: str, message: str) -> None:
        """Ready; neither Reconciling nor Stalled."""
        self.set(ConditionType.READY, "True", reason, message)
        self.drop(ConditionType.RECONCILING)
        self.drop(ConditionType.STALLED)

    def progressing(self, reason: str, message: str) -> None:
        """Not Ready yet, work under way: Reconciling."""
        self.set(ConditionType.READY, "False", reason, message)
        self.set(ConditionType.RECONCILING, "True", reason, message)
        self.drop(ConditionType.STALLED)

    def stalled(self, reason: str, message: str, *, warn: bool = False) -> None:
        """Not Ready and stuck until something changes: Stalled. With `warn`, a Warning Event
        when this is a new reason."""
        before = find_condition(self.old.conditions, ConditionType.STALLED)
        self.set(ConditionType.READY, "False", reason, message)
        self.set(ConditionType.STALLED, "True", reason, message)
        self.drop(ConditionType.RECONCILING)
        if warn and (before is None or before.reason != reason or before.status != "True"):
            self.notes.append(Note("Warning", reason, message))

    def record(
        self,
        result: HistoryResult,
        detail: str,
        *,
        event_type: Literal["Normal", "Warning"],
        event_reason: str,
    ) -> None:
        """Append a history entry (and post an Event) unless it is already the last entry."""
        entry = histories.transition(
            version=self.desired,
            from_version=self.live,
            result=result,
            generation=self.generation,
            at=self.now,
            requested_by=requested_by(self.stage.metadata.annotations),
            detail=detail,
        )
        history = self.status.history or []
        if history and histories.same_transition(history[-1], entry):
            return
        self.status.history = histories.append(history, entry)
        self.entries.append(entry)
        self.notes.append(Note(event_type, event_reason, detail))

    def rollout(
        self, state: DeploymentState | None, *, version: int, phase: RolloutPhase, message: str
    ) -> None:
        serving = self.stage.spec.serving
        self.status.rollout = RolloutStatus(
            deployment=self.name,
            version=version,
            revision=state.revision if state else None,
            replicas=serving.replicas if serving else None,
            updated_replicas=state.updated_replicas if state else 0,
            available_replicas=state.available_replicas if state else 0,
            phase=phase,
            message=_clip(message),
        )

    def went_live(self) -> None:
        """spec.version is live now: record it, with an Event on the stage and the version."""
        before = self.live
        if before is not None:
            self.status.previous_version = before
        self.status.live_version = self.desired
        self.status.live_since = self.now
        stage = self.stage.spec.stage
        detail = f"version {self.desired} is live in {stage}"
        if before is not None:
            detail += f", replacing version {before}"
        self.record("Succeeded", detail, event_type="Normal", event_reason=PROMOTED)
        if self.entries and self.entries[-1].result == "Succeeded":
            self.version_notes.append(
                Note("Normal", PROMOTED, f"live in stage {stage} (ModelStage {self.name})")
            )

    def finish(self, action: Action | None = None, *, status_first: bool = False) -> Plan:
        return Plan(
            status=self.status,
            action=action,
            status_first=status_first,
            notes=tuple(self.notes),
            version_notes=tuple(self.version_notes),
            entries=tuple(self.entries),
            failed_gates=self.failed_gates,
        )


def _clip(message: str, limit: int = 1024) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
