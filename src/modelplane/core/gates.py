"""Evaluation gates of a promotion: metric thresholds, a required earlier stage, approvals.

A ModelStage's `spec.gates` says what a version must meet before it goes live in the stage.
`evaluate_gates` computes one `GateResult` per configured gate, in the order metrics,
requireStage, approvals, from `GateInputs` (plain data the operator gathers; see
`build_gate_inputs` and `modelplane.operator.gateinputs`):

- **Metric** `test_auc >= 0.82`: the observed value is the version's metric: the last value of
  the run's metric in the lineage snapshot, overridden by evaluation runs of the version
  (the most recently finished evaluation wins; `merge_metrics`). A metric the version never
  recorded fails the gate.
- **Stage** (`requireStage: {name: Staging, minDuration: 10m}`): the version must have been
  live in the named stage of the same model for at least `minDuration` (any time at all when
  it is absent) in one stretch. The current stretch runs from that stage's `status.liveSince`
  to now when the version is live there. Earlier stretches come from its `status.history`:
  only a `Succeeded` entry changes what is live there (a failed or rolled-back rollout leaves
  the last good version serving), so a stretch runs from a `Succeeded` entry of the version to
  the next `Succeeded` entry of another version. The observed value is the longest stretch in
  seconds; the threshold is `minDuration` in seconds. History is bounded, so a stretch that
  fell out of it no longer counts.
- **Approvals** (`approvals: {required: 2}`): the number of distinct users who approved this
  version, not counting the user who requested it (`modelplane.core.approvals`).

A promotion may go ahead only when `all_passed`. The admission webhook refuses a change of
`spec.version` on the failures that waiting cannot cure (`blocking_failures`): a metric, or a
required stage the version is not live in. Approvals come after the request, and a version live
in the required stage for too short a time only needs time, so those only hold the promotion in
status (`hold_reason`) until they pass.

Everything here is pure: no kopf, no I/O.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelplane.api import (
    Approval,
    Evaluation,
    GateOp,
    GateResult,
    Gates,
    GateType,
    HistoryEntry,
    Lineage,
    MetricGate,
    ModelStage,
    ModelVersion,
    RequireStage,
    parse_duration,
)
from modelplane.core import approvals as approvals_
from modelplane.core.conditions import ConditionType, Reason, find_condition

# GateResult.message's bound in the CRD.
_MAX_MESSAGE = 1024

_COMPARE: dict[GateOp, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}


@dataclass(frozen=True)
class StageRecord:
    """Another ModelStage of the same model: what is live there, since when, and its history."""

    stage: str
    live_version: int | None
    live_since: datetime | None
    history: Sequence[HistoryEntry]


@dataclass(frozen=True)
class GateInputs:
    """Everything the gates of one candidate version are evaluated against."""

    version: int
    """The candidate version."""
    metrics: Mapping[str, float]
    """Lineage metric last values, overlaid by evaluation-run metrics (latest evaluation wins)."""
    other_stages: Mapping[str, StageRecord]
    """The model's other stages by name, case-sensitive as in their spec.stage."""
    approvals: Sequence[Approval]
    """Approvals recorded for this stage (any version)."""
    requested_by: str | None
    """Who set spec.version to this version, when known."""
    now: datetime


# -- evaluation ----------------------------------------------------------------------------


def evaluate_gates(gates: Gates | None, inputs: GateInputs) -> list[GateResult]:
    """One result per configured gate: metrics in spec order, then requireStage, approvals."""
    if gates is None:
        return []
    results = [_metric_gate(gate, inputs) for gate in gates.metrics or ()]
    if gates.require_stage is not None:
        results.append(_stage_gate(gates.require_stage, inputs))
    if gates.approvals is not None:
        results.append(_approvals_gate(gates.approvals.required, inputs))
    return results


def gates_summary(results: Sequence[GateResult]) -> str:
    """`passed/total` for kubectl get's GATES column: "2/3", "0/0" when there are no gates."""
    return f"{sum(result.passed for result in results)}/{len(results)}"


def all_passed(results: Sequence[GateResult]) -> bool:
    """Whether every gate passed (True when there are none)."""
    return all(result.passed for result in results)


def blocking_failures(results: Sequence[GateResult], inputs: GateInputs) -> list[GateResult]:
    """Failed gates that waiting cannot cure, which admission refuses.

    A missing approval is cured by people approving, and a required stage where the version
    is live right now but not yet for minDuration is cured by time: the operator holds those
    promotions in status and goes ahead once they pass. Every other failure blocks.
    """
    return [
        result
        for result in results
        if not result.passed and not _curable_by_waiting(result, inputs)
    ]


def _curable_by_waiting(result: GateResult, inputs: GateInputs) -> bool:
    if result.type == "Approvals":
        return True
    if result.type == "Stage":
        record = _find_stage(inputs.other_stages, result.name)
        return record is not None and record.live_version == inputs.version
    return False


def failure_message(results: Sequence[GateResult]) -> str:
    """Every failed gate, e.g. `gate test_auc >= 0.82 failed: observed 0.79`, joined by "; "."""
    return "; ".join(
        f"gate {_label(result)} failed: {_detail(result)}"
        for result in results
        if not result.passed
    )


def hold_reason(results: Sequence[GateResult]) -> Reason | None:
    """The GatesPassed condition's reason while gates hold the promotion; None when all pass.

    A failed metric is the most serious (GateFailed), then the required stage
    (RequiredStageNotMet); approvals alone mean AwaitingApproval.
    """
    failed = {result.type for result in results if not result.passed}
    if "Metric" in failed:
        return Reason.GATE_FAILED
    if "Stage" in failed:
        return Reason.REQUIRED_STAGE_NOT_MET
    if "Approvals" in failed:
        return Reason.AWAITING_APPROVAL
    return None


def _metric_gate(gate: MetricGate, inputs: GateInputs) -> GateResult:
    raw = inputs.metrics.get(gate.name)
    if raw is None:
        return _result(
            gate.name,
            "Metric",
            gate.op,
            gate.value,
            None,
            passed=False,
            message=f"metric {gate.name} not recorded for version {inputs.version}",
        )
    observed = float(raw)
    passed = not math.isnan(observed) and _COMPARE[gate.op](observed, gate.value)
    verdict = "meets" if passed else "does not meet"
    return _result(
        gate.name,
        "Metric",
        gate.op,
        gate.value,
        observed,
        passed=passed,
        message=f"{gate.name} of version {inputs.version} is {_number(observed)}, which "
        f"{verdict} {gate.op} {_number(gate.value)}",
    )


def _stage_gate(gate: RequireStage, inputs: GateInputs) -> GateResult:
    needed = parse_duration(gate.min_duration) if gate.min_duration else timedelta(0)
    threshold = needed.total_seconds()
    record = _find_stage(inputs.other_stages, gate.name)
    if record is None:
        return _result(
            gate.name,
            "Stage",
            ">=",
            threshold,
            None,
            passed=False,
            message=f"stage {gate.name} does not exist for this model",
        )
    stretches = live_stretches(record, inputs.version, inputs.now)
    if not stretches:
        return _result(
            gate.name,
            "Stage",
            ">=",
            threshold,
            None,
            passed=False,
            message=f"version {inputs.version} has not been live in {record.stage}",
        )
    longest = max(stretches)
    passed = longest >= needed
    message = f"version {inputs.version} was live in {record.stage} for {_duration(longest)}"
    if needed:
        message += f" ({'at least' if passed else 'needs'} {_duration(needed)})"
    return _result(
        gate.name,
        "Stage",
        ">=",
        threshold,
        longest.total_seconds(),
        passed=passed,
        message=message,
    )


def _approvals_gate(required: int, inputs: GateInputs) -> GateResult:
    approvers = {
        approval.user
        for approval in inputs.approvals
        if approval.version == inputs.version and approval.user != inputs.requested_by
    }
    count = len(approvers)
    passed = count >= required
    if approvers:
        message = f"approved by {', '.join(sorted(approvers))}"
    else:
        message = f"no approvals of version {inputs.version}"
    if inputs.requested_by is not None:
        message += f"; {inputs.requested_by} requested it and cannot approve it"
    return _result("approvals", "Approvals", ">=", required, count, passed=passed, message=message)


def _result(
    name: str,
    type_: GateType,
    op: GateOp,
    value: float,
    observed: float | None,
    *,
    passed: bool,
    message: str,
) -> GateResult:
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    return GateResult(
        name=name,
        type=type_,
        op=op,
        value=float(value),
        observed=None if observed is None else float(observed),
        passed=passed,
        message=message,
    )


def _find_stage(stages: Mapping[str, StageRecord], name: str) -> StageRecord | None:
    """The stage by exact name, else case-insensitively (stage names are unique that way)."""
    if name in stages:
        return stages[name]
    folded = name.lower()
    return next((record for key, record in stages.items() if key.lower() == folded), None)


def live_stretches(record: StageRecord, version: int, now: datetime) -> list[timedelta]:
    """How long `version` stayed live in the stage each time it went live there (see above)."""
    successes = sorted(
        (entry for entry in record.history if entry.result == "Succeeded"),
        key=lambda entry: entry.at,
    )
    stretches: list[timedelta] = []
    start: datetime | None = None
    for entry in successes:
        if entry.version == version:
            if start is None:
                start = entry.at
        elif start is not None:
            stretches.append(entry.at - start)
            start = None
    if record.live_version == version:
        since = record.live_since or start
        stretches.append(max(now - since, timedelta(0)) if since else timedelta(0))
    return stretches


def _label(result: GateResult) -> str:
    if result.type == "Metric":
        return f"{result.name} {result.op} {_number(result.value)}"
    if result.type == "Stage":
        return f"requireStage {result.name} >= {_duration(timedelta(seconds=result.value))}"
    return f"approvals >= {_number(result.value)}"


def _detail(result: GateResult) -> str:
    if result.observed is None:
        return result.message or "not observed"
    if result.type == "Stage":
        return f"observed {_duration(timedelta(seconds=result.observed))}"
    return f"observed {_number(result.observed)}"


def _number(value: float) -> str:
    """0.82 as 0.82, 2.0 as 2: the shortest text that reads back as the same float."""
    value = float(value)
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _duration(delta: timedelta) -> str:
    """A duration as Go prints it, to the second: 1h2m3s, 10m, 45s, 0s."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts) or "0s"


# -- inputs --------------------------------------------------------------------------------


def merge_metrics(
    lineage: Lineage | None, evaluations: Sequence[Evaluation] | None
) -> dict[str, float]:
    """The version's metrics: lineage last values, overlaid by its evaluation runs.

    Evaluations apply oldest first by finish time (ones without a time first, in list order),
    so the most recently finished evaluation wins.
    """
    metrics = {
        name: summary.last
        for name, summary in ((lineage.metrics if lineage else None) or {}).items()
    }
    indexed = list(enumerate(evaluations or ()))
    indexed.sort(
        key=lambda pair: (
            pair[1].finished_at is not None,
            pair[1].finished_at.timestamp() if pair[1].finished_at else 0.0,
            pair[0],
        )
    )
    for _, evaluation in indexed:
        metrics.update(evaluation.metrics)
    return metrics


def stage_record(stage: ModelStage) -> StageRecord:
    """What the gates need to know about another stage of the model."""
    status = stage.status
    return StageRecord(
        stage=stage.spec.stage,
        live_version=status.live_version if status else None,
        live_since=status.live_since if status else None,
        history=tuple(status.history or ()) if status else (),
    )


def build_gate_inputs(
    stage: ModelStage,
    model_version: ModelVersion,
    model_stages: Iterable[ModelStage],
    *,
    now: datetime,
) -> GateInputs:
    """The gate inputs of `model_version` as a candidate for `stage`.

    `model_stages` may hold any ModelStages of the namespace; those of other models, and
    `stage` itself, are left out. Approvals and the requester come from `stage`'s annotations,
    which the admission webhook guards.
    """
    status = model_version.status
    others = {
        other.spec.stage: stage_record(other)
        for other in model_stages
        if other.spec.model == stage.spec.model
        and other.spec.stage.lower() != stage.spec.stage.lower()
    }
    annotations = stage.metadata.annotations
    return GateInputs(
        version=model_version.spec.version,
        metrics=merge_metrics(
            status.lineage if status else None, status.evaluations if status else None
        ),
        other_stages=others,
        approvals=approvals_.approvals_of(annotations),
        requested_by=approvals_.requested_by(annotations),
        now=now,
    )


def version_problem(model_version: ModelVersion) -> str | None:
    """Why `model_version` cannot be promoted whatever its gates say, or None when it can.

    Its artifact must be verified (ArtifactVerified True) and the version Ready.
    """
    name = model_version.metadata.name or f"v{model_version.spec.version}"
    conditions = model_version.status.conditions if model_version.status else None
    verified = find_condition(conditions, ConditionType.ARTIFACT_VERIFIED)
    if verified is None:
        return f"the artifact of ModelVersion {name} has not been verified yet"
    if verified.status != "True":
        return (
            f"the artifact of ModelVersion {name} is not verified "
            f"(ArtifactVerified={verified.status}, {verified.reason}: {verified.message})"
        )
    ready = find_condition(conditions, ConditionType.READY)
    if ready is None or ready.status != "True":
        why = f"{ready.reason}: {ready.message}" if ready else "no Ready condition yet"
        return f"ModelVersion {name} is not Ready ({why})"
    return None
