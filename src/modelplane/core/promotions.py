"""What one reconciliation of a ModelStage decides: hold, roll, follow or roll back, and its status.

`plan_stage` takes the ModelStage and what the operator read for it (`World`: the target
ModelVersion, the gate results, the serving Deployment and, after a failed rollout, its
ReplicaSets) and returns a `Plan`: the whole new status, at most one write to the Deployment,
the Events to post and the history entries it added. It is level-based: it looks only at the
current objects, so the same world gives the same plan, whenever the operator restarts.

The path of a change of `spec.version` (N, while L is live):

1. The ModelVersion must exist, be Ready and have its artifact verified; otherwise the change is
   held (`VersionNotFound` is Stalled, `VersionNotReady` is Reconciling while it is verified).
2. The gates are evaluated (by the caller, when `gates_needed`); a failure holds the change:
   `GatesPassed=False`, `Stalled`, one `Rejected` history entry per version and generation.
3. The Deployment is built for N and written; the rollout is followed from the Deployment's
   status (`RolledOut=False`, `Reconciling`).
4. Complete: N becomes `liveVersion`, L `previousVersion`, history `Succeeded`, `Ready=True`.
   Failed (progress deadline exceeded): with `rollback: automatic` and a version L to go back
   to, the Deployment gets L's last good pod template back and the stage reports `RolledBack`;
   otherwise it reports `Failed`. Either way `spec.version` is left alone (the operator never
   writes spec), and the failure is remembered in `status.rollout` (version N, phase Failed or
   RolledBack, for this generation), so N is not tried again until the spec changes.

A change of the serving template or replicas with the same version rolls without gates. A stage
without `spec.serving` is a pointer: the version is live as soon as its gates pass.

`status.rollout.version` is the version the Deployment is rolling to or serves; after a failure
it is the version that failed, with phase Failed or RolledBack.

Here are the entry points and the plan of a stage without serving; the parts live beside it:
`promotionplans` (World, the actions, Plan), `promotiondrafts` (the status being made),
`promotionchecks` (may spec.version go live) and `promotionserving` (the Deployment's rollout).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from modelplane.api import ModelStage, ModelStageStatus, ModelVersion
from modelplane.core.conditions import ConditionType, Reason, is_true
from modelplane.core.deploymentstates import controller_uid, observe
from modelplane.core.gates import version_problem
from modelplane.core.promotionchecks import (
    blocked,
    forget_gates_of_other_versions,
    gates_settled,
    show_gates,
)
from modelplane.core.promotiondrafts import Draft
from modelplane.core.promotionplans import Action, Apply, Delete, MarkGood, Plan, World
from modelplane.core.promotionserving import held_rollout, plan_serving

# The operator reads the plan's types from here, beside the functions that make plans.
__all__ = [
    "OWNED_FIELDS",
    "Action",
    "Apply",
    "Delete",
    "MarkGood",
    "Plan",
    "World",
    "gates_needed",
    "needs_recheck",
    "needs_replicasets",
    "plan_stage",
]

OWNED_FIELDS = tuple(
    field_info.alias or name for name, field_info in ModelStageStatus.model_fields.items()
)
"""Every status field: the operator is the only writer of a ModelStage's status."""


def plan_stage(stage: ModelStage, world: World, *, now: datetime) -> Plan:
    """The plan for one reconciliation of `stage` in `world` at `now` (timezone-aware)."""
    draft = Draft(stage, world, now)
    if stage.spec.serving is None:
        return _plan_pointer(draft)
    return plan_serving(draft)


def gates_needed(stage: ModelStage, target: ModelVersion | None) -> bool:
    """Whether the gates of spec.version must be evaluated for this reconciliation.

    Only for a pending promotion (spec.version is not live) of a version that can be promoted,
    that is neither held by a failed rollout nor already through its gates for this generation.
    """
    status = stage.status or ModelStageStatus()
    if stage.spec.version == status.live_version or target is None:
        return False
    if version_problem(target) is not None:
        return False
    return held_rollout(stage) is None and not gates_settled(stage)


def needs_replicasets(stage: ModelStage, deployment: Mapping[str, Any] | None) -> bool:
    """Whether the plan needs the Deployment's ReplicaSets: its rollout failed (a rollback may
    be due) while the stage has a version to go back to."""
    if (
        deployment is None
        or stage.spec.serving is None
        or stage.spec.serving.rollback != "automatic"
    ):
        return False
    status = stage.status or ModelStageStatus()
    return status.live_version is not None and observe(deployment).phase == "Failed"


def needs_recheck(stage: ModelStage) -> bool:
    """Whether a periodic look may change something: a promotion is pending or the stage is not
    Ready at its current generation (gates waiting for time or approvals, a version being
    verified, a Deployment to follow)."""
    status = stage.status or ModelStageStatus()
    if stage.spec.version != status.live_version:
        return True
    if status.observed_generation != stage.metadata.generation:
        return True
    return not is_true(status.conditions, ConditionType.READY)


# -- a stage without serving ----------------------------------------------------------------


def _plan_pointer(d: Draft) -> Plan:
    action: Action | None = None
    deployment = d.world.deployment
    if deployment is not None and controller_uid(deployment.get("metadata") or {}) == (
        d.stage.metadata.uid
    ):
        action = Delete(d.name)
    d.status.rollout = None
    show_gates(d)
    if d.desired != d.live:
        if blocked(d):
            return d.finish(action)
        d.went_live()
    message = "spec.serving is not set: the stage points at a version and serves nothing"
    d.set(ConditionType.ROLLED_OUT, "True", Reason.NO_SERVING, message)
    d.healthy(Reason.NO_SERVING, f"version {d.desired} is live")
    forget_gates_of_other_versions(d)
    return d.finish(action)
