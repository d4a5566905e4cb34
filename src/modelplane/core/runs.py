"""Run reconciliation: the references a run names, its lineage and Ready conditions, and whether
its training process is gone (a lost heartbeat).

A Run's status has two writers. The SDK owns phase, startTime, endTime, heartbeatTime, metrics
and artifactRoot; the operator owns conditions and observedGeneration. `plan_run` returns a
merge patch of the operator's fields only, and only when they change. The one exception is a
lost heartbeat: a Running run whose training process stopped reporting is marked Failed (and
given an endTime, its last sign of life), since nothing else would ever end it. The operator
sends that patch only if the run is unchanged since it was read (a resourceVersion
precondition), so it never overwrites a heartbeat or a phase the SDK wrote meanwhile.

Conditions:

* `LineageValid`: True when the experiment, the parent run and the evaluated ModelVersion all
  exist in the run's namespace; False with ExperimentNotFound, ParentNotFound or VersionNotFound.
* `Ready`: False with the same reason while lineage is not valid. Otherwise True: the run's
  record is complete and consistent. Ready says nothing about whether training succeeded (that is
  the phase), but its reason follows the phase (Running, Finished, Failed, Killed; Reconciled
  before the SDK sets one) so `kubectl get run -o yaml` reads naturally; a run the operator ended
  keeps the reason HeartbeatLost.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from modelplane.api import Condition, Run, RunSpec, RunStatus, parse_duration
from modelplane.core.conditions import (
    ConditionType,
    Reason,
    find_condition,
    remove_condition,
    set_condition,
)
from modelplane.core.statuses import CONDITION_FIELDS, Note, StatusPlan, owned_patch

HEARTBEAT_TIMEOUT_ENV = "MODELPLANE_RUN_HEARTBEAT_TIMEOUT"
HEARTBEAT_TIMEOUT_ANNOTATION = "modelplane.io/heartbeat-timeout"
DEFAULT_HEARTBEAT_TIMEOUT = timedelta(seconds=300)

# How often Running runs and runs with missing references are looked at again, at most.
MAX_RECHECK_INTERVAL = 30.0
MIN_RECHECK_INTERVAL = 1.0

# Written only when the operator ends a run whose heartbeat is lost.
LOST_RUN_FIELDS = ("phase", "endTime")


class RefKind(StrEnum):
    """The kinds of object a Run refers to by name."""

    EXPERIMENT = "Experiment"
    RUN = "Run"
    MODEL_VERSION = "ModelVersion"


@dataclass(frozen=True)
class Reference:
    """One object a run names: its experiment, its parent run, or the version it evaluates."""

    kind: RefKind
    name: str

    def describe(self) -> str:
        """How the reference reads in a message: `experiment "churn"`."""
        return f'{_LABELS[self.kind]} "{self.name}"'


_LABELS = {
    RefKind.EXPERIMENT: "experiment",
    RefKind.RUN: "parent run",
    RefKind.MODEL_VERSION: "model version",
}

MISSING_REASONS = {
    RefKind.EXPERIMENT: Reason.EXPERIMENT_NOT_FOUND,
    RefKind.RUN: Reason.PARENT_NOT_FOUND,
    RefKind.MODEL_VERSION: Reason.VERSION_NOT_FOUND,
}

PHASE_REASONS = {
    "Running": Reason.RUN_RUNNING,
    "Finished": Reason.RUN_FINISHED,
    "Failed": Reason.RUN_FAILED,
    "Killed": Reason.RUN_KILLED,
}


def references(spec: RunSpec) -> tuple[Reference, ...]:
    """The objects a run's spec names, in the order problems are reported."""
    found = [Reference(RefKind.EXPERIMENT, spec.experiment)]
    if spec.parent is not None:
        found.append(Reference(RefKind.RUN, spec.parent))
    if spec.evaluates is not None:
        found.append(Reference(RefKind.MODEL_VERSION, spec.evaluates))
    return tuple(found)


def _parse_timeout(text: str, what: str) -> timedelta:
    """Seconds (`300`) or a duration (`5m`); a value that is not positive raises ValueError."""
    try:
        timeout = timedelta(seconds=float(text))
    except ValueError:
        timeout = parse_duration(text)
    if timeout <= timedelta(0):
        raise ValueError(f"{what} must be positive, not {text!r}")
    return timeout


def heartbeat_timeout(environ: Mapping[str, str] | None = None) -> timedelta:
    """The heartbeat timeout from MODELPLANE_RUN_HEARTBEAT_TIMEOUT: seconds (`300`) or a
    duration (`5m`); the default is 300 s. A value that is not positive raises ValueError."""
    text = (os.environ if environ is None else environ).get(HEARTBEAT_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_HEARTBEAT_TIMEOUT
    return _parse_timeout(text, HEARTBEAT_TIMEOUT_ENV)


def run_heartbeat_timeout(run: Run, default: timedelta) -> timedelta:
    """The run's own timeout when its annotation asks for one, else `default`.

    Training code that knows how often it beats (the SDK beats every few seconds) may ask to be
    declared dead sooner than the operator-wide default; a malformed value is ignored rather
    than letting one object's annotation break its reconciliation.
    """
    text = (run.metadata.annotations or {}).get(HEARTBEAT_TIMEOUT_ANNOTATION, "").strip()
    if not text:
        return default
    try:
        return _parse_timeout(text, HEARTBEAT_TIMEOUT_ANNOTATION)
    except ValueError:
        return default


def recheck_interval(timeout: timedelta) -> float:
    """Seconds between looks at a Running run: a tenth of the timeout, within 1 to 30 s."""
    return min(MAX_RECHECK_INTERVAL, max(MIN_RECHECK_INTERVAL, timeout.total_seconds() / 10))


def last_sign_of_life(run: Run) -> datetime | None:
    """The last heartbeat, else the start time, else the object's creation time."""
    status = run.status
    if status is not None and status.heartbeat_time is not None:
        return status.heartbeat_time
    if status is not None and status.start_time is not None:
        return status.start_time
    return run.metadata.creation_timestamp


def heartbeat_lost(run: Run, *, now: datetime, timeout: timedelta) -> bool:
    """Whether the run is Running but has not been heard of for longer than `timeout`."""
    if run.status is None or run.status.phase != "Running":
        return False
    seen = last_sign_of_life(run)
    if seen is None:
        return False
    if seen.tzinfo is None:  # RFC 3339 times carry an offset; read a bare one as UTC
        seen = seen.replace(tzinfo=UTC)
    return now - seen > timeout


def needs_recheck(run: Run) -> bool:
    """Whether time alone can change the run's status: it runs, or a reference is missing."""
    status = run.status
    if status is None:
        return True
    lineage = find_condition(status.conditions, ConditionType.LINEAGE_VALID)
    return status.phase == "Running" or lineage is None or lineage.status != "True"


def _lineage_condition(
    current: list[Condition], missing: Collection[Reference], generation: int | None, now: datetime
) -> tuple[list[Condition], str, str]:
    """Sets LineageValid; returns the conditions, and the reason and message it carries."""
    if missing:
        reason: str = MISSING_REASONS[next(iter(missing)).kind]
        message = "; ".join(f"{ref.describe()} not found in the namespace" for ref in missing)
    else:
        reason, message = Reason.RECONCILED, "all referenced objects exist"
    conditions = set_condition(
        current,
        type=ConditionType.LINEAGE_VALID,
        status="False" if missing else "True",
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    return conditions, reason, message


def _ready_reason(status: RunStatus | None, current: list[Condition]) -> tuple[str, str]:
    """Ready's reason and message for a run whose lineage is valid."""
    phase = status.phase if status is not None else None
    if phase is None:
        return Reason.RECONCILED, "the run is recorded; it has not reported a phase yet"
    ready = find_condition(current, ConditionType.READY)
    if phase == "Failed" and ready is not None and ready.reason == Reason.HEARTBEAT_LOST:
        return Reason.HEARTBEAT_LOST, ready.message
    return PHASE_REASONS[phase], f"the run is recorded; phase {phase}"


def plan_run(
    run: Run, missing: Collection[Reference], *, now: datetime, timeout: timedelta
) -> StatusPlan:
    """The operator's status patch and Events for a run, given which references are missing.

    `missing` is in the order of `references(run.spec)`. The patch holds conditions and
    observedGeneration, plus phase and endTime when the heartbeat is lost; it is None when the
    status already shows all of it.
    """
    generation = run.metadata.generation
    status = run.status
    current = list(status.conditions or ()) if status is not None else []
    before = find_condition(current, ConditionType.LINEAGE_VALID)
    conditions, reason, message = _lineage_condition(current, missing, generation, now)
    lineage_reason, lineage_message = reason, message
    notes: list[Note] = []
    if missing and (before is None or before.status != "False" or before.message != message):
        notes.append(Note("Warning", reason, message))
    if not missing and before is not None and before.status == "False":
        notes.append(Note("Normal", ConditionType.LINEAGE_VALID, message))

    lost = heartbeat_lost(run, now=now, timeout=timeout)
    fields: tuple[str, ...] = CONDITION_FIELDS
    phase, end_time = None, None
    if lost:
        seen = last_sign_of_life(run)
        reason = Reason.HEARTBEAT_LOST
        message = (
            f"no heartbeat since {seen.isoformat() if seen else 'the start'}; the run was "
            f"marked Failed after {timeout.total_seconds():g}s without one"
        )
        notes.append(Note("Warning", reason, message))
        fields = CONDITION_FIELDS + LOST_RUN_FIELDS
        phase = "Failed"
        end_time = (status.end_time if status is not None else None) or seen or now
    elif not missing:
        reason, message = _ready_reason(status, current)

    conditions = set_condition(
        conditions,
        type=ConditionType.READY,
        status="False" if missing else "True",
        reason=reason,
        message=message,
        observed_generation=generation,
        now=now,
    )
    if missing:
        # kstatus (Flux) reads Stalled, not Ready: a dangling reference will not fix itself.
        conditions = set_condition(
            conditions,
            type=ConditionType.STALLED,
            status="True",
            reason=lineage_reason,
            message=lineage_message,
            observed_generation=generation,
            now=now,
        )
    else:
        conditions = remove_condition(conditions, ConditionType.STALLED)
    conditions = remove_condition(conditions, ConditionType.RECONCILING)
    desired = RunStatus(
        observed_generation=generation, conditions=conditions, phase=phase, end_time=end_time
    )
    patch = owned_patch(status.to_dict() if status is not None else None, desired, fields)
    return StatusPlan(patch, tuple(notes) if patch is not None else ())
