"""Experiment handlers: run counts by phase, the best run by the objective, the Ready condition.

The summary is computed from memory, never from a list of runs read from the API server: the
`runs_by_experiment` index (modelplane.operator.runs) holds one small record per run, keyed by
namespace and experiment, and kopf keeps it current from its watch. Each change of a run
recomputes only its own experiment's summary (`modelplane.core.experiments.plan_experiment`),
and only when the run's record changed (a Running run logging metrics does not count); each
event of the experiment itself (created, changed objective, the initial listing after a restart)
recomputes it too. The status is patched only when the summary differs from what the experiment
shows, so a restart rewrites nothing.

Writes carry a resourceVersion precondition. A run's event may see the experiment a moment
before the operator's own previous write comes back through the watch; the write then fails with
409 and is dropped, and the experiment's next event, which carries the newer status, recomputes
the summary from the index, which by then holds every change. A slow timer recomputes each
experiment as well, so a write lost to an API error is not lost for good.

Index defined here:

* `experiments_by_name`: (namespace, name) -> the parsed Experiment, or None if it does not
  parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from modelplane.api import GROUP, Experiment
from modelplane.core.experiments import RunRecord, plan_experiment, run_record
from modelplane.core.statuses import describe_error, plan_invalid
from modelplane.operator.instrumentation import reconciling
from modelplane.operator.runs import RUNS, apply_plan, parse_run

EXPERIMENTS = f"{Experiment.crd.plural}.{GROUP}"

# A safety net only: events keep experiments current; this catches a write lost to an API error.
RESYNC_INTERVAL = 300.0

# Where a run's handler remembers the record it last summarized (kopf's per-object memo).
_MEMO_KEY = "modelplane_experiment_record"

NameKey = tuple[str, str]


@kopf.index(EXPERIMENTS)
async def experiments_by_name(
    *, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[NameKey, Experiment | None]:
    try:
        experiment: Experiment | None = Experiment.from_object(body)
    except ValidationError:
        experiment = None
    return {(namespace or "", name): experiment}


def _records(index: Mapping[NameKey, Any], namespace: str, name: str) -> list[RunRecord]:
    """The records of the experiment's runs, copied out of the index."""
    return list(index.get((namespace, name), ()))


async def reconcile_experiment(obj: Mapping[str, Any], runs: Mapping[NameKey, Any]) -> bool:
    """Bring an experiment's status up to date from its runs' records; True if it wrote."""
    obj = dict(obj)  # one version throughout: a timer's body is live (see reconcile_run)
    now = datetime.now(UTC)
    try:
        experiment = Experiment.from_object(obj)
    except ValidationError as error:
        return await apply_plan(
            Experiment.crd.plural, obj, plan_invalid(obj, describe_error(error), now=now)
        )
    namespace = experiment.metadata.namespace or ""
    records = _records(runs, namespace, experiment.metadata.name or "")
    plan = plan_experiment(experiment, records, now=now)
    return await apply_plan(Experiment.crd.plural, obj, plan)


@kopf.on.event(EXPERIMENTS)
async def experiment_changed(*, type: str | None, body: kopf.Body, **kwargs: Any) -> None:
    """Recompute the summary on every event of the experiment (not its deletion)."""
    if type == "DELETED":
        return
    with reconciling("Experiment"):
        await reconcile_experiment(body, kwargs["runs_by_experiment"])


@kopf.timer(EXPERIMENTS, interval=RESYNC_INTERVAL, initial_delay=RESYNC_INTERVAL)
async def resync_experiment(*, body: kopf.Body, **kwargs: Any) -> None:
    """Recompute the summary now and then, in case a write was lost."""
    with reconciling("Experiment"):
        await reconcile_experiment(body, kwargs["runs_by_experiment"])


@kopf.on.event(RUNS)
async def run_changed_for_experiment(
    *, type: str | None, body: kopf.Body, namespace: str | None, memo: Any, **kwargs: Any
) -> None:
    """Recompute the summary of a run's experiment when the run's record changed.

    The initial listing is left to the experiments' own listing events: by then every index is
    complete, so each experiment is summarized once rather than once per run.
    """
    if type is None:
        return
    run = parse_run(body)
    if run is None:
        return
    record = run_record(run)
    if type != "DELETED" and memo.get(_MEMO_KEY) == record:
        return
    entries = kwargs["experiments_by_name"].get((namespace or "", record.experiment), ())
    experiment: Experiment | None = next(iter(entries), None)
    if experiment is None:
        # Missing (the run's conditions say so) or invalid (the experiment's status says so).
        memo[_MEMO_KEY] = record
        return
    with reconciling("Experiment"):
        records = _records(kwargs["runs_by_experiment"], namespace or "", record.experiment)
        plan = plan_experiment(experiment, records, now=datetime.now(UTC))
        await apply_plan(Experiment.crd.plural, experiment.to_manifest(), plan)
    # Remembered once handled: after an error, the run's next event tries again.
    memo[_MEMO_KEY] = record
