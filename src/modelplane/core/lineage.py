"""The lineage of a ModelVersion: a snapshot of the run that produced it, and when it is final.

When a version names a run (`spec.run`), the operator copies the run's experiment, code, data
digests, params, metric summaries and environment into `status.lineage`, so the registry keeps
the record even if the run later changes or goes away. The rules:

- The snapshot is **final** once it is taken from a run that is no longer Running: Finished,
  Failed or Killed, or a run without a phase (recorded by hand, so nothing will ever finish it).
  `LineageRecorded` is then True, and the snapshot is never taken again.
- While the run is still **Running**, its metrics are not final. The snapshot taken so far is
  written (so people can see the experiment, commit and data at once) but `LineageRecorded` is
  False with reason `Running`, and the snapshot is taken again when the run finishes. A version
  whose lineage is not recorded is not Ready, so it cannot be promoted on half-trained metrics.
- A **missing** run gives `LineageRecorded` False with reason `RunNotFound`; any snapshot
  already taken is kept, and the operator looks again when the run appears.
- A version without `spec.run` (trained outside modelplane) has no lineage and no
  `LineageRecorded` condition; it is not held back for it.

Everything here is pure: the operator reads the run and passes it in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel

from modelplane.api import (
    ConditionStatus,
    Lineage,
    ModelVersionStatus,
    Run,
)
from modelplane.core.conditions import ConditionType, Reason, find_condition

_M = TypeVar("_M", bound=BaseModel)


@dataclass(frozen=True)
class LineageOutcome:
    """What the lineage part of a ModelVersion's status should be.

    `status` is None when the condition does not apply (no run named); `lineage` is the snapshot
    to write, or None to write none.
    """

    lineage: Lineage | None
    status: ConditionStatus | None
    reason: str
    message: str

    @property
    def satisfied(self) -> bool:
        """Whether the lineage does not hold the version back from Ready."""
        return self.status is None or self.status == "True"


def snapshot(run: Run, *, now: datetime) -> Lineage:
    """The lineage of `run` as of `now` (truncated to seconds, as Kubernetes stores it)."""
    status = run.status
    return Lineage(
        experiment=run.spec.experiment,
        run=run.metadata.name,
        code=_copy(run.spec.code),
        data=[item.model_copy(deep=True) for item in run.spec.data] if run.spec.data else None,
        params=dict(run.spec.params) if run.spec.params else None,
        metrics=(
            {name: summary.model_copy() for name, summary in status.metrics.items()}
            if status is not None and status.metrics
            else None
        ),
        environment=_copy(run.spec.environment),
        recorded_at=now.replace(microsecond=0),
    )


def is_final(status: ModelVersionStatus | None, run_name: str | None) -> bool:
    """Whether `status` holds a final snapshot of `run_name` that must not be taken again."""
    if status is None or status.lineage is None or run_name is None:
        return False
    recorded = find_condition(status.conditions, ConditionType.LINEAGE_RECORDED)
    return recorded is not None and recorded.status == "True" and status.lineage.run == run_name


def decide(
    *,
    namespace: str,
    run_name: str | None,
    run: Run | None,
    previous: ModelVersionStatus | None,
    now: datetime,
    run_error: str | None = None,
) -> LineageOutcome:
    """The lineage outcome for a version naming `run_name`, given the run as it is now.

    `run` is None when the run does not exist; `run_error` says why a run that exists could
    not be read (it is then treated as unusable, not as missing).
    """
    if run_name is None:
        return LineageOutcome(None, None, "", "")
    kept = previous.lineage if previous is not None else None
    recorded = find_condition(
        previous.conditions if previous is not None else None, ConditionType.LINEAGE_RECORDED
    )
    if recorded is not None and is_final(previous, run_name):
        return LineageOutcome(kept, "True", recorded.reason, recorded.message)
    if run_error is not None:
        return LineageOutcome(
            kept,
            "False",
            Reason.INVALID_SPEC,
            f"run {run_name} cannot be read: {run_error}",
        )
    if run is None:
        return LineageOutcome(
            kept,
            "False",
            Reason.RUN_NOT_FOUND,
            f"run {run_name} not found in namespace {namespace}; the lineage is recorded "
            "when it appears",
        )
    taken = _stable(snapshot(run, now=now), kept)
    phase = run.status.phase if run.status is not None else None
    if phase == "Running":
        return LineageOutcome(
            taken,
            "False",
            Reason.RUN_RUNNING,
            f"run {run_name} is still Running; the lineage is recorded when it finishes",
        )
    return LineageOutcome(taken, "True", Reason.LINEAGE_RECORDED, _recorded_message(taken, phase))


def needs_refresh(
    recorded: tuple[ConditionStatus, str] | None, *, run_exists: bool, run_phase: str | None
) -> bool:
    """Whether a change to the run should make a version re-take its lineage now.

    `recorded` is the version's LineageRecorded (status, reason), None before its first
    reconciliation. A Running run's metric updates do not count: the snapshot is re-taken once,
    when the run finishes, rather than on every logged metric.
    """
    if recorded is None:
        return True
    status, reason = recorded
    if status == "True":
        return False
    if not run_exists:
        return reason != Reason.RUN_NOT_FOUND
    return reason != Reason.RUN_RUNNING or run_phase != "Running"


def _stable(taken: Lineage, kept: Lineage | None) -> Lineage:
    """`taken`, keeping the earlier recordedAt when nothing else changed (no needless patch)."""
    if kept is None or kept.recorded_at is None:
        return taken
    if taken.model_copy(update={"recorded_at": None}) == kept.model_copy(
        update={"recorded_at": None}
    ):
        return kept
    return taken


def _recorded_message(lineage: Lineage, phase: str | None) -> str:
    metrics = len(lineage.metrics or {})
    params = len(lineage.params or {})
    state = f"a {phase} run" if phase else "a run without a phase"
    return (
        f"lineage of run {lineage.run} recorded from {state}: experiment "
        f"{lineage.experiment}, {params} params, {metrics} metrics"
    )


def _copy(value: _M | None) -> _M | None:
    """A deep copy, so the snapshot shares no objects with the run it was taken from."""
    return value.model_copy(deep=True) if value is not None else None
