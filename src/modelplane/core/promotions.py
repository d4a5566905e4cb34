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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from modelplane.api import (
    ConditionStatus,
    GateResult,
    HistoryEntry,
    HistoryResult,
    ModelStage,
    ModelStageStatus,
    ModelVersion,
    RolloutPhase,
    RolloutStatus,
    model_version_name,
)
from modelplane.core import history as histories
from modelplane.core.approvals import approvals_of, requested_by
from modelplane.core.conditions import (
    ConditionType,
    Reason,
    find_condition,
    is_true,
    remove_condition,
    set_condition,
)
from modelplane.core.deploymentstates import (
    DeploymentState,
    controller_uid,
    desired_hash,
    matches,
    observe,
)
from modelplane.core.gates import (
    all_passed,
    failure_message,
    gates_summary,
    hold_reason,
    version_problem,
)
from modelplane.core.rollbacks import rollback_deployment, rollback_template
from modelplane.core.rollouts import (
    ServingError,
    deployment_name,
    desired_deployment,
    owner_reference,
    replacement,
)
from modelplane.core.statuses import Note

OWNED_FIELDS = tuple(
    field_info.alias or name for name, field_info in ModelStageStatus.model_fields.items()
)
"""Every status field: the operator is the only writer of a ModelStage's status."""

PROMOTED = "Promoted"
"""Event reason on the ModelStage and the ModelVersion when a version goes live."""

_FAILED_PHASES: frozenset[RolloutPhase] = frozenset({"Failed", "RolledBack"})


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


@dataclass(frozen=True)
class _Problem:
    reason: Reason
    message: str


@dataclass
class _Draft:
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


# -- public entry points --------------------------------------------------------------------


def plan_stage(stage: ModelStage, world: World, *, now: datetime) -> Plan:
    """The plan for one reconciliation of `stage` in `world` at `now` (timezone-aware)."""
    draft = _Draft(stage, world, now)
    if stage.spec.serving is None:
        return _plan_pointer(draft)
    return _plan_serving(draft)


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
    return _held(stage) is None and not _gates_settled(stage)


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


def _plan_pointer(d: _Draft) -> Plan:
    action: Action | None = None
    deployment = d.world.deployment
    if deployment is not None and controller_uid(deployment.get("metadata") or {}) == (
        d.stage.metadata.uid
    ):
        action = Delete(d.name)
    d.status.rollout = None
    _show_gates(d)
    if d.desired != d.live:
        if _blocked(d):
            return d.finish(action)
        _went_live(d)
    message = "spec.serving is not set: the stage points at a version and serves nothing"
    d.set(ConditionType.ROLLED_OUT, "True", Reason.NO_SERVING, message)
    d.healthy(Reason.NO_SERVING, f"version {d.desired} is live")
    _forget_gates_of_other_versions(d)
    return d.finish(action)


# -- a stage with a serving Deployment ------------------------------------------------------


def _plan_serving(d: _Draft) -> Plan:
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
    _show_gates(d)
    desired, problem = _desired(d)
    held = _held(d.stage)
    if held is not None:
        return _plan_held(d, held, state, desired)
    if state is not None and desired is not None and matches(state, desired):
        return _follow(d, state, desired)
    return _change(d, state, desired, problem)


def _change(
    d: _Draft,
    state: DeploymentState | None,
    desired: dict[str, Any] | None,
    problem: _Problem | None,
) -> Plan:
    """The Deployment does not run what the stage asks: check the promotion, then roll."""
    if d.desired != d.live and _blocked(d):
        return d.finish()
    if desired is None:
        return _cannot_build(d, state, problem)
    if d.world.apply_error is not None:
        return _apply_refused(d, state)
    return _roll(d, state, desired)


def _cannot_build(d: _Draft, state: DeploymentState | None, problem: _Problem | None) -> Plan:
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


def _desired(d: _Draft) -> tuple[dict[str, Any] | None, _Problem | None]:
    target = d.world.target
    if target is None:
        return None, _Problem(Reason.VERSION_NOT_FOUND, _not_found(d))
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


def _roll(d: _Draft, state: DeploymentState | None, desired: dict[str, Any]) -> Plan:
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


def _follow(d: _Draft, state: DeploymentState, desired: dict[str, Any] | None) -> Plan:
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
        _went_live(d)
    message = f"Deployment {d.name} serves version {version}: {state.message}"
    d.rollout(state, version=version, phase="Complete", message=message)
    d.set(ConditionType.ROLLED_OUT, "True", Reason.ROLLOUT_COMPLETE, message)
    d.healthy(Reason.ROLLOUT_COMPLETE, f"version {version} is live")
    _forget_gates_of_other_versions(d)
    if state.template_hash is not None and state.good_hash != state.template_hash:
        return d.finish(MarkGood(d.name, state.template_hash))
    return d.finish()


def _failed(d: _Draft, state: DeploymentState, desired: dict[str, Any] | None) -> Plan:
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
    d: _Draft, state: DeploymentState, desired: Mapping[str, Any] | None
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
    d: _Draft,
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


def _apply_refused(d: _Draft, state: DeploymentState | None) -> Plan:
    detail = (
        f"the API server refused Deployment {d.name} for version {d.desired}: {d.world.apply_error}"
    )
    d.rollout(state, version=d.desired, phase="Failed", message=detail)
    d.set(ConditionType.ROLLED_OUT, "False", Reason.INVALID_SPEC, detail)
    d.stalled(Reason.INVALID_SPEC, detail)
    d.record("Failed", detail, event_type="Warning", event_reason=Reason.INVALID_SPEC)
    return d.finish()


# -- promotion checks -----------------------------------------------------------------------


def _blocked(d: _Draft) -> bool:
    """Whether spec.version may not go live yet; when so, the status says why."""
    target = d.world.target
    keeps = f"; version {d.live} stays live" if d.live is not None else ""
    if target is None:
        message = _not_found(d)
        _gates_unknown(d, Reason.VERSION_NOT_FOUND, message)
        d.stalled(Reason.VERSION_NOT_FOUND, message + keeps, warn=True)
        return True
    problem = version_problem(target)
    if problem is not None:
        _gates_unknown(d, Reason.VERSION_NOT_READY, problem)
        conditions = target.status.conditions if target.status else None
        if is_true(conditions, ConditionType.STALLED):
            d.stalled(Reason.VERSION_NOT_READY, problem + keeps, warn=True)
        else:
            d.progressing(Reason.VERSION_NOT_READY, problem + keeps)
        return True
    results = d.world.gates
    if results is None:
        if _gates_settled(d.stage):
            return False
        message = f"the gates of version {d.desired} have not been evaluated yet"
        _gates_unknown(d, Reason.PROGRESSING, message)
        d.progressing(Reason.PROGRESSING, message)
        return True
    if all_passed(results):
        return False
    reason = hold_reason(results) or Reason.GATE_FAILED
    shown = d.status.gates or []
    message = failure_message(shown)
    d.stalled(reason, f"version {d.desired} is held: {message}{keeps}")
    old_gates = find_condition(d.old.conditions, ConditionType.GATES_PASSED)
    already = (
        d.old.gates_version == d.desired
        and old_gates is not None
        and old_gates.status == "False"
        and old_gates.observed_generation == d.generation
    )
    if not already:
        d.record("Rejected", message, event_type="Warning", event_reason=reason)
        d.failed_gates = tuple(result.name for result in results if not result.passed)
    return True


def _show_gates(d: _Draft) -> None:
    """Write freshly evaluated gate results and GatesPassed into the status.

    When every gate has the same verdict as the results already shown, only the gates whose
    observation is a time span (requireStage: seconds live) keep their old observation, so a
    held promotion does not rewrite its status (and wake itself up) every time it is looked at.
    """
    results = d.world.gates
    if results is None:
        return
    old = d.old.gates or []
    if d.old.gates_version == d.desired and _same_verdict(old, results):
        results = [
            before if after.type == "Stage" else after
            for before, after in zip(old, results, strict=True)
        ]
    d.status.gates = list(results) or None
    d.status.gates_version = d.desired
    d.status.gates_summary = gates_summary(results)
    if all_passed(results):
        message = (
            f"all {len(results)} gates passed for version {d.desired}"
            if results
            else f"no gates are configured; version {d.desired} may go live"
        )
        d.set(ConditionType.GATES_PASSED, "True", Reason.GATES_PASSED, message)
    else:
        reason = hold_reason(results) or Reason.GATE_FAILED
        d.set(ConditionType.GATES_PASSED, "False", reason, failure_message(results))


def _same_verdict(old: Sequence[GateResult], new: Sequence[GateResult]) -> bool:
    if len(old) != len(new):
        return False
    for before, after in zip(old, new, strict=True):
        ignored = {"observed", "message"} if after.type == "Stage" else set()
        if before.model_dump(exclude=ignored) != after.model_dump(exclude=ignored):
            return False
    return True


def _gates_unknown(d: _Draft, reason: str, message: str) -> None:
    """The gates of spec.version cannot be evaluated yet: results of another version go."""
    if d.status.gates_version != d.desired:
        d.status.gates = None
        d.status.gates_version = None
        d.status.gates_summary = None
    d.set(ConditionType.GATES_PASSED, "Unknown", reason, message)


def _forget_gates_of_other_versions(d: _Draft) -> None:
    """With spec.version live, results computed for another version no longer mean anything
    (a promotion that was rejected, then reverted)."""
    if d.status.gates_version is not None and d.status.gates_version != d.desired:
        d.status.gates = None
        d.status.gates_version = None
        d.status.gates_summary = None
        d.drop(ConditionType.GATES_PASSED)


def _gates_settled(stage: ModelStage) -> bool:
    """Whether spec.version already passed its gates at the current generation."""
    status = stage.status or ModelStageStatus()
    passed = find_condition(status.conditions, ConditionType.GATES_PASSED)
    return (
        status.gates_version == stage.spec.version
        and passed is not None
        and passed.status == "True"
        and passed.observed_generation == stage.metadata.generation
    )


def _held(stage: ModelStage) -> RolloutPhase | None:
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


def _went_live(d: _Draft) -> None:
    """spec.version is live now: record it, with an Event on the stage and the version."""
    before = d.live
    if before is not None:
        d.status.previous_version = before
    d.status.live_version = d.desired
    d.status.live_since = d.now
    stage = d.stage.spec.stage
    detail = f"version {d.desired} is live in {stage}"
    if before is not None:
        detail += f", replacing version {before}"
    d.record("Succeeded", detail, event_type="Normal", event_reason=PROMOTED)
    if d.entries and d.entries[-1].result == "Succeeded":
        d.version_notes.append(
            Note("Normal", PROMOTED, f"live in stage {stage} (ModelStage {d.name})")
        )


# -- helpers --------------------------------------------------------------------------------


def _not_found(d: _Draft) -> str:
    name = model_version_name(d.stage.spec.model, d.desired)
    return f"ModelVersion {name} does not exist"


def _without_status(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key != "status"}


def _clip(message: str, limit: int = 1024) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
