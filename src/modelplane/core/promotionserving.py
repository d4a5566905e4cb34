"""Planning a ModelStage that serves: build its Deployment, roll it, follow it, roll it back.

The Deployment is built for spec.version and written when it does not run what the stage asks
for (after the promotion checks of `modelplane.core.promotionchecks`); its rollout is followed
from its status. When it completes, spec.version goes live. When it misses its progress
deadline, with `rollback: automatic` and a version to go back to, the Deployment gets that
version's last good pod template back (`modelplane.core.rollbacks`); either way the failure is
remembered in `status.rollout` for this generation (`held`), so the failed version is not tried
again until the spec changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelplane.api import ModelStage, ModelStageStatus, RolloutPhase, RolloutStatus
from modelplane.core.conditions import ConditionType, Reason
from modelplane.core.deploymentstates import DeploymentState, desired_hash, matches, observe
from modelplane.core.promotionchecks import (
    blocked,
    forget_gates_of_other_versions,
    not_found,
    show_gates,
)
from modelplane.core.promotiondrafts import Draft
from modelplane.core.promotionplans import Action, Apply, MarkGood, Plan
from modelplane.core.rollbacks import rollback_deployment, rollback_template
from modelplane.core.rollouts import (
    ServingError,
    desired_deployment,
    owner_reference,
    replacement,
)
from modelplane.core.statuses import Note

_FAILED_PHASES: frozenset[RolloutPhase] = frozenset({"Failed", "RolledBack"})


@dataclass(frozen=True)
class _Problem:
    reason: Reason
    message: str


def plan_serving(d: Draft) -> Plan:
    """The plan for a stage with `spec.serving`, made on `d`."""
    raw = d.world.deployment
    state = observe(raw) if raw is not None else None
    if state is not None and state.controller_uid != d.stage.metadata.uid:
        d.stalled(
            Reason.RECONCILE_ERROR,
            f"Deployment {d.name} exists and is not controlled by this ModelStage: delete or "
            "rename it so that the stage can serve",
            warn=True,
        )
        return d.finish()
    show_gates(d)
    desired, problem = _desired(d)
    held = held_rollout(d.stage)
    if held is not None:
        return _plan_held(d, held, state, desired)
    if state is not None and desired is not None and matches(state, desired):
        return _follow(d, state, desired)
    return _change(d, state, desired, problem)


def held_rollout(stage: ModelStage) -> RolloutPhase | None:
    """Failed or RolledBack when spec.version already failed to roll out at this generation."""
    status = stage.status or ModelStageStatus()
    rollout = status.rollout
    if rollout is None or rollout.phase not in _FAILED_PHASES:
        return None
    if rollout.version != stage.spec.version:
        return None
    if status.observed_generation != stage.metadata.generation:
        return None
    return rollout.phase


def _change(
    d: Draft,
    state: DeploymentState | None,
    desired: dict[str, Any] | None,
    problem: _Problem | None,
) -> Plan:
    """The Deployment does not run what the stage asks: check the promotion, then roll."""
    if d.desired != d.live and blocked(d):
        return d.finish()
    if desired is None:
        return _cannot_build(d, state, problem)
    if d.world.apply_error is not None:
        return _apply_refused(d, state)
    return _roll(d, state, desired)


def _cannot_build(d: Draft, state: DeploymentState | None, problem: _Problem | None) -> Plan:
    """No Deployment can be built for spec.version (a bad template, a missing ModelVersion)."""
    assert problem is not None  # noqa: S101 - _desired returns one or the other
    live = state is not None and state.version == d.desired == d.live
    if state is not None and live and problem.reason == Reason.VERSION_NOT_FOUND:
        # The live version's ModelVersion went away: keep serving it as it is, and report
        # what the Deployment does.
        return _follow(d, state, None)
    keeps = f"; Deployment {d.name} is left as it is" if state is not None else ""
    d.stalled(problem.reason, problem.message + keeps, warn=True)
    return d.finish()


def _desired(d: Draft) -> tuple[dict[str, Any] | None, _Problem | None]:
    target = d.world.target
    if target is None:
        return None, _Problem(Reason.VERSION_NOT_FOUND, not_found(d))
    try:
        owner = owner_reference(d.stage)
        body = desired_deployment(
            d.stage,
            d.desired,
            target.spec.artifact.uri,
            owner,
            artifact_digest=target.spec.artifact.digest,
            fetch_image=d.world.fetch_image,
        )
    except ServingError as error:
        return None, _Problem(Reason.INVALID_SPEC, str(error))
    return body, None


def _roll(d: Draft, state: DeploymentState | None, desired: dict[str, Any]) -> Plan:
    raw = d.world.deployment
    body = replacement(desired, raw) if raw is not None else desired
    if d.desired == d.live:
        message = f"updating Deployment {d.name} (version {d.desired})"
    elif d.live is None:
        message = f"rolling out version {d.desired}"
    else:
        message = f"rolling out version {d.desired} (version {d.live} is live)"
    old = d.old.rollout
    repeated = (
        old is not None
        and old.version == d.desired
        and old.phase == "Progressing"
        and d.old.observed_generation == d.generation
    )
    d.rollout(state, version=d.desired, phase="Progressing", message=message)
    d.set(ConditionType.ROLLED_OUT, "False", Reason.ROLLOUT_PROGRESSING, message)
    d.progressing(Reason.ROLLOUT_PROGRESSING, message)
    if not repeated:
        d.notes.append(Note("Normal", Reason.ROLLOUT_PROGRESSING, message))
    return d.finish(Apply(body, create=raw is None))


def _follow(d: Draft, state: DeploymentState, desired: dict[str, Any] | None) -> Plan:
    """The Deployment runs what the stage asks for: report its rollout and act on its end."""
    version = d.desired
    if state.phase in ("Pending", "Progressing"):
        message = f"rolling out version {version}: {state.message}"
        d.rollout(state, version=version, phase="Progressing", message=message)
        d.set(ConditionType.ROLLED_OUT, "False", Reason.ROLLOUT_PROGRESSING, message)
        d.progressing(Reason.ROLLOUT_PROGRESSING, message)
        return d.finish()
    if state.phase == "Failed":
        return _failed(d, state, desired)
    if version != d.live:
        d.went_live()
    message = f"Deployment {d.name} serves version {version}: {state.message}"
    d.rollout(state, version=version, phase="Complete", message=message)
    d.set(ConditionType.ROLLED_OUT, "True", Reason.ROLLOUT_COMPLETE, message)
    d.healthy(Reason.ROLLOUT_COMPLETE, f"version {version} is live")
    forget_gates_of_other_versions(d)
    if state.template_hash is not None and state.good_hash != state.template_hash:
        return d.finish(MarkGood(d.name, state.template_hash))
    return d.finish()


def _failed(d: Draft, state: DeploymentState, desired: dict[str, Any] | None) -> Plan:
    """The rollout of spec.version missed its progress deadline."""
    serving = d.stage.spec.serving
    assert serving is not None  # noqa: S101 - only stages with serving have a Deployment
    failure = f"the rollout of version {d.desired} failed ({state.message})"
    if serving.rollback == "automatic" and d.live is not None:
        body = _rollback_body(d, state, desired)
        if body is not None:
            detail = f"{failure}; Deployment {d.name} rolled back to version {d.live}"
            d.rollout(state, version=d.desired, phase="RolledBack", message=detail)
            d.set(ConditionType.ROLLED_OUT, "False", Reason.ROLLED_BACK, detail)
            d.stalled(Reason.ROLLED_BACK, f"{detail}; change spec.version to roll again")
            d.record("RolledBack", detail, event_type="Warning", event_reason=Reason.ROLLED_BACK)
            return d.finish(Apply(body, create=False), status_first=True)
        why = f"no earlier pod template of version {d.live} is left to roll back to"
    elif serving.rollback == "automatic":
        why = "no version was live before, so there is nothing to roll back to"
    else:
        why = "spec.serving.rollback is manual: the Deployment is left as it is"
    detail = f"{failure}; {why}"
    d.rollout(state, version=d.desired, phase="Failed", message=detail)
    d.set(ConditionType.ROLLED_OUT, "False", Reason.PROGRESS_DEADLINE_EXCEEDED, detail)
    d.stalled(Reason.PROGRESS_DEADLINE_EXCEEDED, detail)
    d.record("Failed", detail, event_type="Warning", event_reason=Reason.PROGRESS_DEADLINE_EXCEEDED)
    return d.finish()


def _rollback_body(
    d: Draft, state: DeploymentState, desired: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The Deployment with the live version's last good template back, or None if none is left."""
    raw = d.world.deployment
    uid = ((raw or {}).get("metadata") or {}).get("uid")
    if raw is None or not uid or d.live is None:
        return None
    template = rollback_template(
        d.world.replicasets, state, deployment_uid=str(uid), live_version=d.live
    )
    if template is None:
        return None
    base = desired if desired is not None else _without_status(raw)
    return replacement(rollback_deployment(base, template), raw)


def _plan_held(
    d: Draft,
    held: RolloutPhase,
    state: DeploymentState | None,
    desired: dict[str, Any] | None,
) -> Plan:
    """spec.version failed to roll out at this generation: keep it failed, report the
    Deployment, and finish a rollback that was recorded but not made."""
    if state is None:
        return d.finish()
    late = desired is not None and matches(state, desired) and state.phase == "Complete"
    if held == "Failed" and late:
        # A rollout left as it was (rollback: manual) completed after all.
        return _follow(d, state, desired)
    action: Action | None = None
    if (
        held == "RolledBack"
        and desired is not None
        and state.template_hash == desired_hash(desired)
    ):
        body = _rollback_body(d, state, desired)
        if body is not None:
            action = Apply(body, create=False)
    old = d.status.rollout or RolloutStatus()
    d.status.rollout = old.model_copy(
        update={
            "deployment": d.name,
            "revision": state.revision,
            "updated_replicas": state.updated_replicas,
            "available_replicas": state.available_replicas,
        }
    )
    return d.finish(action)


def _apply_refused(d: Draft, state: DeploymentState | None) -> Plan:
    detail = (
        f"the API server refused Deployment {d.name} for version {d.desired}: {d.world.apply_error}"
    )
    d.rollout(state, version=d.desired, phase="Failed", message=detail)
    d.set(ConditionType.ROLLED_OUT, "False", Reason.INVALID_SPEC, detail)
    d.stalled(Reason.INVALID_SPEC, detail)
    d.record("Failed", detail, event_type="Warning", event_reason=Reason.INVALID_SPEC)
    return d.finish()


def _without_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key != "status"}
