"""Run handlers: lineage checks, the Ready condition, and ending runs whose heartbeat is lost.

Reconciliation is level-based. Every watch event of a Run (including the initial listing after a
restart) recomputes the status the operator owns from the run itself and from in-memory indexes
of the objects it names (`modelplane.core.runs.plan_run`), and writes it only when it differs.
The SDK writes the rest of the status (phase, times, metrics) at the same time, so every write
is a merge patch of the operator's own fields with a resourceVersion precondition: a write that
races with another one fails with 409 and is dropped, because the newer version arrives as a
watch event and is reconciled in turn.

What can change without an event on the run itself:

* An object it names appears or disappears: the ADDED and DELETED events of experiments, runs
  and model versions re-reconcile the runs that name them (found through `runs_by_reference`).
* Time passes: a timer looks at every Running run, and at every run whose lineage is not valid,
  a few times per heartbeat timeout, so a dead training process ends Failed with reason
  HeartbeatLost and a missed event cannot leave a reference missing for good.

Indexes defined here, for any handler of the operator (kopf passes them as keyword arguments):

* `runs_by_name`: (namespace, name) -> RunRecord, or None for a run that does not parse.
* `runs_by_experiment`: (namespace, experiment) -> RunRecord of each of its runs.
* `runs_by_reference`: (namespace, kind, name) -> names of the runs that name that object,
  kind being "Experiment", "Run" (the parent) or "ModelVersion" (the evaluated version).

Whether a ModelVersion exists is read from the versions of its model
(`modelplane.operator.versionindexes.VERSIONS`): a version's name says its model. Until a
namespace's versions are all listed after a start, one not found there is looked up on the API
server (`missing_references`), as for any object the indexes do not know yet. The ADDED and
DELETED events of ModelVersions reach `refresh_referrers` from the ModelVersion handler
(`modelplane.operator.modelversions`) rather than from a handler of their own here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from modelplane.api import GROUP, Experiment, ModelVersion, Run
from modelplane.core.experiments import RunRecord, run_record
from modelplane.core.runs import (
    Reference,
    RefKind,
    heartbeat_timeout,
    needs_recheck,
    plan_run,
    recheck_interval,
    references,
    run_heartbeat_timeout,
)
from modelplane.core.statuses import StatusPlan, describe_error, plan_invalid
from modelplane.operator import kube
from modelplane.operator.instrumentation import reconciling
from modelplane.operator.versionindexes import Indexes, VersionsIndex, version_indexed

log = logging.getLogger(__name__)

RUNS = f"{Run.crd.plural}.{GROUP}"
EXPERIMENTS = f"{Experiment.crd.plural}.{GROUP}"

PLURALS = {
    RefKind.EXPERIMENT: Experiment.crd.plural,
    RefKind.RUN: Run.crd.plural,
    RefKind.MODEL_VERSION: ModelVersion.crd.plural,
}

# Read once at import: the timer's interval is fixed when its handler is registered. A bad value
# stops the operator at start with the reason, rather than running with a surprise.
HEARTBEAT_TIMEOUT = heartbeat_timeout()

NameKey = tuple[str, str]
RefKey = tuple[str, str, str]


# -- Writing status -------------------------------------------------------------------------


async def apply_plan(plural: str, obj: Mapping[str, Any], plan: StatusPlan) -> bool:
    """Write a plan's patch to `obj` (as of its resourceVersion) and post its Events if written.

    Returns whether a patch was written. A lost race writes and posts nothing: the newer
    version of the object is reconciled when its event arrives.
    """
    if plan.patch is None:
        return False
    metadata = obj["metadata"]
    written = await asyncio.to_thread(
        kube.patch_status_at,
        plural,
        metadata["namespace"],
        metadata["name"],
        metadata["resourceVersion"],
        plan.patch,
    )
    if written:
        body = obj if isinstance(obj, kopf.Body) else kopf.Body(cast(kopf.RawBody, dict(obj)))
        for note in plan.notes:
            kopf.event(body, type=note.type, reason=note.reason, message=note.message)
    else:
        log.debug(
            "%s %s/%s changed meanwhile; its next event reconciles it",
            plural,
            metadata["namespace"],
            metadata["name"],
        )
    return written


# -- Indexes --------------------------------------------------------------------------------


def parse_run(body: Mapping[str, Any]) -> Run | None:
    """The run, or None when it does not parse (its status then says why)."""
    try:
        return Run.from_object(body)
    except ValidationError:
        return None


@kopf.index(RUNS)
async def runs_by_name(
    *, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[NameKey, RunRecord | None]:
    run = parse_run(body)
    return {(namespace or "", name): run_record(run) if run is not None else None}


@kopf.index(RUNS)
async def runs_by_experiment(
    *, body: kopf.Body, namespace: str | None, **_: Any
) -> dict[NameKey, RunRecord]:
    run = parse_run(body)
    return {} if run is None else {(namespace or "", run.spec.experiment): run_record(run)}


@kopf.index(RUNS)
async def runs_by_reference(
    *, body: kopf.Body, namespace: str | None, name: str, **_: Any
) -> dict[RefKey, str]:
    run = parse_run(body)
    if run is None:
        return {}
    return {(namespace or "", ref.kind.value, ref.name): name for ref in references(run.spec)}


# -- Reconciling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Lookups:
    """The indexes that say which objects exist, by kind."""

    experiments: Mapping[NameKey, Any]
    runs: Mapping[NameKey, Any]
    modelversions: VersionsIndex
    """ModelVersions by (namespace, model)."""

    def indexed(self, namespace: str, ref: Reference) -> bool:
        if ref.kind is RefKind.MODEL_VERSION:
            return version_indexed(self.modelversions, namespace, ref.name)
        index = self.experiments if ref.kind is RefKind.EXPERIMENT else self.runs
        return (namespace, ref.name) in index


async def missing_references(
    namespace: str, refs: tuple[Reference, ...], lookups: Lookups
) -> list[Reference]:
    """The references whose object does not exist, in the order given.

    The indexes answer at once for objects that exist. An object missing from them may just not
    have reached this operator's watch yet (an experiment applied a moment before its run), so
    the API server has the last word before a reference is reported missing.
    """
    missing = []
    for ref in refs:
        if lookups.indexed(namespace, ref):
            continue
        found = await asyncio.to_thread(kube.get, PLURALS[ref.kind], namespace, ref.name)
        if found is None:
            missing.append(ref)
    return missing


async def reconcile_run(obj: Mapping[str, Any], lookups: Lookups) -> bool:
    """Bring the operator's part of one run's status up to date; True if it wrote a patch."""
    # A timer's body is live: kopf swaps in newer versions while we wait on the API. Work from
    # one version throughout, so the precondition is the version the plan was made from.
    obj = dict(obj)
    now = datetime.now(UTC)
    try:
        run = Run.from_object(obj)
    except ValidationError as error:
        plan = plan_invalid(obj, describe_error(error), now=now)
    else:
        namespace = run.metadata.namespace or ""
        missing = await missing_references(namespace, references(run.spec), lookups)
        plan = plan_run(
            run, missing, now=now, timeout=run_heartbeat_timeout(run, HEARTBEAT_TIMEOUT)
        )
    return await apply_plan(Run.crd.plural, obj, plan)


async def refresh_dependents(
    namespace: str, ref: Reference, lookups: Lookups, by_reference: Mapping[RefKey, Any]
) -> None:
    """Reconcile the runs that name `ref`, after it appeared or disappeared."""
    names = sorted(set(by_reference.get((namespace, ref.kind.value, ref.name), ())))
    for name in names:
        # One run the API server refuses to read or patch must not keep the others stale.
        try:
            with reconciling("Run"):
                obj = await asyncio.to_thread(kube.get, Run.crd.plural, namespace, name)
                if obj is not None:
                    await reconcile_run(obj, lookups)
        except ApiException as exc:
            log.warning("could not re-check run %s/%s: %s", namespace, name, exc.reason)


def _index(indexes: Mapping[str, Any], name: str) -> Mapping[Any, Any]:
    """One of the operator's indexes, from a handler's keyword arguments."""
    index: Mapping[Any, Any] = indexes[name]
    return index


def _lookups(indexes: Mapping[str, Any]) -> Lookups:
    return Lookups(
        experiments=_index(indexes, "experiments_by_name"),
        runs=_index(indexes, "runs_by_name"),
        modelversions=Indexes.from_kwargs(indexes).versions,
    )


async def refresh_referrers(namespace: str, ref: Reference, indexes: Mapping[str, Any]) -> None:
    """Reconcile the runs that name `ref` after it appeared or went, from a handler of its own
    kind (`indexes`: the handler's keyword arguments)."""
    by_reference = _index(indexes, "runs_by_reference")
    await refresh_dependents(namespace, ref, _lookups(indexes), by_reference)


# kopf passes the indexes as keyword arguments named after them; its callback protocols admit
# them only through **kwargs, hence `_index(kwargs, ...)` rather than named parameters.


@kopf.on.event(RUNS)
async def run_changed(
    *, type: str | None, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
) -> None:
    """Reconcile a run on each of its events; when one appears or goes, so may a parent."""
    lookups = _lookups(kwargs)
    if type != "DELETED":
        with reconciling("Run"):
            await reconcile_run(body, lookups)
    if type in ("ADDED", "DELETED"):
        parent = Reference(RefKind.RUN, name)
        await refresh_dependents(
            namespace or "", parent, lookups, _index(kwargs, "runs_by_reference")
        )


@kopf.on.event(EXPERIMENTS)
async def experiment_added_or_deleted(
    *, type: str | None, namespace: str | None, name: str, **kwargs: Any
) -> None:
    """The runs of an experiment that appeared or went re-check their lineage."""
    if type in ("ADDED", "DELETED"):
        ref = Reference(RefKind.EXPERIMENT, name)
        await refresh_dependents(
            namespace or "", ref, _lookups(kwargs), _index(kwargs, "runs_by_reference")
        )


def _needs_recheck(*, body: kopf.Body, **_: Any) -> bool:
    run = parse_run(body)
    return run is not None and needs_recheck(run)


@kopf.timer(RUNS, interval=recheck_interval(HEARTBEAT_TIMEOUT), when=_needs_recheck)
async def recheck_run(*, body: kopf.Body, **kwargs: Any) -> None:
    """Look again at a Running run (its heartbeat) or one with a missing reference."""
    with reconciling("Run"):
        await reconcile_run(body, _lookups(kwargs))
