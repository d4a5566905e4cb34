"""What planning one reconciliation of a ModelStage reads and returns.

`World` is what the operator read for the stage; `Plan` is the outcome: the whole new status, at
most one `Action` on the serving Deployment, the Events to post and the history entries added.
`modelplane.core.promotions.plan_stage` turns the one into the other.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelplane.api import GateResult, HistoryEntry, ModelStageStatus, ModelVersion
from modelplane.core.statuses import Note


@dataclass(frozen=True)
class World:
    """What the operator read for one reconciliation of a ModelStage."""

    target: ModelVersion | None
    """The ModelVersion that spec.version names; None when it does not exist."""
    gates: Sequence[GateResult] | None = None
    """Gate results for spec.version, when evaluated for this reconciliation (`gates_needed`)."""
    deployment: Mapping[str, Any] | None = None
    """The serving Deployment as read; None when it does not exist."""
    replicasets: Sequence[Mapping[str, Any]] = ()
    """The Deployment's ReplicaSets; needed only when its rollout failed (`needs_replicasets`)."""
    fetch_image: str | None = None
    """Image of the artifact-fetching init container (MODELPLANE_FETCH_IMAGE)."""
    apply_error: str | None = None
    """Why the API server refused the desired Deployment, when it did."""


@dataclass(frozen=True)
class Apply:
    """Create the Deployment (`create`) or replace it (the body carries its resourceVersion)."""

    body: dict[str, Any]
    create: bool


@dataclass(frozen=True)
class MarkGood:
    """Stamp the Deployment's current template as the last one that completed a rollout."""

    name: str
    template_hash: str


@dataclass(frozen=True)
class Delete:
    """Delete the serving Deployment: spec.serving was removed."""

    name: str


Action = Apply | MarkGood | Delete


@dataclass(frozen=True)
class Plan:
    """The outcome of one reconciliation."""

    status: ModelStageStatus
    action: Action | None = None
    status_first: bool = False
    """Write the status before the action: a rollback is recorded before it is made, so an
    operator stopped in between finishes the rollback instead of rolling the failed version."""
    notes: tuple[Note, ...] = ()
    """Events on the ModelStage."""
    version_notes: tuple[Note, ...] = ()
    """Events on the target ModelVersion."""
    entries: tuple[HistoryEntry, ...] = ()
    """History entries this plan added."""
    failed_gates: tuple[str, ...] = ()
    """Names of the gates that failed, when this plan recorded a rejection."""
