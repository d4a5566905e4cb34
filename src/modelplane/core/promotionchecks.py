"""Whether spec.version of a ModelStage may go live, and the gate results its status shows.

`blocked` holds a promotion while the target ModelVersion is missing or not yet Ready and
verified, while its gates have not been evaluated, or when they fail (one `Rejected` history
entry per version and generation). `show_gates` writes the evaluated results and `GatesPassed`
into the status without rewriting a held promotion's status every time it is looked at.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelplane.api import GateResult, ModelStage, ModelStageStatus, model_version_name
from modelplane.core.conditions import ConditionType, Reason, find_condition, is_true
from modelplane.core.gates import (
    all_passed,
    failure_message,
    gates_summary,
    hold_reason,
    version_problem,
)
from modelplane.core.promotiondrafts import Draft


def blocked(d: Draft) -> bool:
    """Whether spec.version may not go live yet; when so, the status says why."""
    target = d.world.target
    keeps = f"; version {d.live} stays live" if d.live is not None else ""
    if target is None:
        message = not_found(d)
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
        if gates_settled(d.stage):
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


def show_gates(d: Draft) -> None:
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


def _gates_unknown(d: Draft, reason: str, message: str) -> None:
    """The gates of spec.version cannot be evaluated yet: results of another version go."""
    if d.status.gates_version != d.desired:
        d.status.gates = None
        d.status.gates_version = None
        d.status.gates_summary = None
    d.set(ConditionType.GATES_PASSED, "Unknown", reason, message)


def forget_gates_of_other_versions(d: Draft) -> None:
    """With spec.version live, results computed for another version no longer mean anything
    (a promotion that was rejected, then reverted)."""
    if d.status.gates_version is not None and d.status.gates_version != d.desired:
        d.status.gates = None
        d.status.gates_version = None
        d.status.gates_summary = None
        d.drop(ConditionType.GATES_PASSED)


def gates_settled(stage: ModelStage) -> bool:
    """Whether spec.version already passed its gates at the current generation."""
    status = stage.status or ModelStageStatus()
    passed = find_condition(status.conditions, ConditionType.GATES_PASSED)
    return (
        status.gates_version == stage.spec.version
        and passed is not None
        and passed.status == "True"
        and passed.observed_generation == stage.metadata.generation
    )


def not_found(d: Draft) -> str:
    """Why spec.version cannot be promoted when its ModelVersion is missing."""
    name = model_version_name(d.stage.spec.model, d.desired)
    return f"ModelVersion {name} does not exist"
