"""What `modelplane lineage MODEL VERSION` shows: how a model version was made, as a tree.

The version leads to its run (and the run's phase), the run to its experiment (and objective),
code (repository@commit, dirty or clean), data (name, URI, digest), params, metrics and
environment; beside the run hang the artifact (URI, digest, verification) and the stages where
the version is live.

The lineage comes from the ModelVersion's `status.lineage`, the snapshot the operator took at
registration, because that is the record the registry vouches for. When there is no snapshot
yet (the operator has not seen the version), the Run is read as it is now and the output says
so. Pure: parsed objects in, a `Node` tree or JSON-ready data out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from modelplane.api import Experiment, Lineage, MetricSummary, ModelVersion, Objective, Run
from modelplane.cli.output import NONE, Node, format_number, format_time
from modelplane.core.lineage import snapshot

LineageSource = Literal["snapshot", "run", "none"]


@dataclass(frozen=True)
class LineageReport:
    """A version's lineage and where it came from, with what the run and experiment say now."""

    version: ModelVersion
    lineage: Lineage | None
    source: LineageSource
    note: str
    """One sentence on where the lineage was read from, for people."""
    run_name: str | None
    run_phase: str | None
    run_found: bool
    experiment_name: str | None
    objective: Objective | None
    experiment_found: bool


def build_report(
    version: ModelVersion, run: Run | None, experiment: Experiment | None, now: datetime
) -> LineageReport:
    """The lineage of `version`: its snapshot, else a reading of `run` (None: not found).

    `experiment` is the lineage's experiment as read now, for its objective (None: not found).
    """
    recorded = version.status.lineage if version.status else None
    run_name = version.spec.run
    if recorded is not None:
        lineage: Lineage | None = recorded
        source: LineageSource = "snapshot"
        when = format_time(recorded.recorded_at) if recorded.recorded_at else "an unknown time"
        note = f"lineage: snapshot recorded at {when} (status.lineage)"
        run_name = recorded.run or run_name
    elif run is not None:
        lineage, source = snapshot(run, now=now), "run"
        note = (
            f"lineage: no snapshot in status yet; read from Run {run.metadata.name} as it is "
            "now, which may differ from when the version was registered"
        )
    elif run_name is not None:
        lineage, source = None, "none"
        note = f"lineage: no snapshot in status, and Run {run_name} was not found"
    else:
        lineage, source = None, "none"
        note = "lineage: none; the version names no run (trained outside modelplane)"
    return LineageReport(
        version=version,
        lineage=lineage,
        source=source,
        note=note,
        run_name=run_name,
        run_phase=run.status.phase if run is not None and run.status else None,
        run_found=run is not None,
        experiment_name=lineage.experiment if lineage else None,
        objective=experiment.spec.objective if experiment is not None else None,
        experiment_found=experiment is not None,
    )


# -- the tree ---------------------------------------------------------------------------------


def lineage_tree(report: LineageReport) -> Node:
    """version -> run (phase) -> experiment, code, data, params, metrics, environment;
    then the artifact and the stages."""
    mv = report.version
    root = Node(f"{mv.spec.model} v{mv.spec.version} (ModelVersion {mv.metadata.name})")
    if report.run_name is not None:
        run = root.add(f"run {report.run_name} ({_phase(report)})")
        if report.lineage is not None:
            _add_run_lineage(run, report)
    else:
        root.add("run <none> (trained outside modelplane)")
    _add_artifact(root, mv)
    _add_evaluations(root, mv)
    stages = sorted((mv.status.stages if mv.status else None) or [], key=str.lower)
    root.add(f"stages {', '.join(stages) or NONE}")
    return root


def _phase(report: LineageReport) -> str:
    if not report.run_found:
        return "run not found"
    return report.run_phase or "no phase"


def _add_run_lineage(run: Node, report: LineageReport) -> None:
    lineage = report.lineage
    assert lineage is not None  # noqa: S101 - checked by the caller
    run.add(f"experiment {lineage.experiment or NONE} ({_objective(report)})")
    code = lineage.code
    if code is None:
        run.add(f"code {NONE}")
    else:
        where = f", path {code.path}" if code.path else ""
        state = "dirty: uncommitted changes" if code.dirty else "clean"
        run.add(f"code {code.repository}@{code.commit} ({state}{where})")
    data = run.add("data" if lineage.data else f"data {NONE}")
    for item in lineage.data or ():
        data.add(f"{item.name} {item.uri} {item.digest}")
    params = run.add("params" if lineage.params else f"params {NONE}")
    for name, value in sorted((lineage.params or {}).items()):
        params.add(f"{name} = {value}")
    metrics = run.add("metrics" if lineage.metrics else f"metrics {NONE}")
    for name, summary in sorted((lineage.metrics or {}).items()):
        metrics.add(f"{name} = {_summary(summary)}")
    env = lineage.environment
    environment = run.add("environment" if env else f"environment {NONE}")
    if env is not None:
        environment.add(f"image {env.image or NONE}")
        environment.add(f"python {env.python or NONE}")
        environment.add(f"requirements {env.requirements or NONE}")


def _objective(report: LineageReport) -> str:
    if not report.experiment_found:
        return "experiment not found"
    if report.objective is None:
        return "no objective"
    return f"objective: {report.objective.goal} {report.objective.metric}"


def _summary(summary: MetricSummary) -> str:
    return (
        f"{format_number(summary.last)} (step {summary.step}, min {format_number(summary.min)}, "
        f"max {format_number(summary.max)}, {summary.count} values)"
    )


def _add_artifact(root: Node, mv: ModelVersion) -> None:
    artifact = root.add(f"artifact {mv.spec.artifact.uri}")
    artifact.add(f"digest {mv.spec.artifact.digest}")
    checked = mv.status.artifact if mv.status else None
    if checked is None:
        artifact.add("verified unknown (not checked yet)")
        return
    details = []
    if checked.size is not None:
        details.append(f"{checked.size} bytes")
    if checked.digest and checked.digest != mv.spec.artifact.digest:
        details.append(f"found {checked.digest}")
    if checked.verified_at is not None:
        details.append(f"checked {format_time(checked.verified_at)}")
    suffix = f" ({', '.join(details)})" if details else ""
    artifact.add(f"verified {'true' if checked.verified else 'false'}{suffix}")


def _add_evaluations(root: Node, mv: ModelVersion) -> None:
    evaluations = (mv.status.evaluations if mv.status else None) or []
    if not evaluations:
        return
    node = root.add("evaluations")
    for evaluation in evaluations:
        metrics = ", ".join(
            f"{name} = {format_number(value)}" for name, value in sorted(evaluation.metrics.items())
        )
        node.add(f"run {evaluation.run}: {metrics or NONE}")


# -- data for scripts -------------------------------------------------------------------------


def lineage_data(report: LineageReport) -> dict[str, Any]:
    """The same information for `-o json|yaml`, with full values and nulls for what is missing."""
    mv = report.version
    lineage = report.lineage
    checked = mv.status.artifact if mv.status else None
    return {
        "model": mv.spec.model,
        "version": mv.spec.version,
        "name": mv.metadata.name,
        "namespace": mv.metadata.namespace,
        "lineageSource": report.source,
        "note": report.note,
        "run": {"name": report.run_name, "phase": report.run_phase, "found": report.run_found}
        if report.run_name is not None
        else None,
        "experiment": {
            "name": report.experiment_name,
            "objective": report.objective.to_dict() if report.objective else None,
            "found": report.experiment_found,
        }
        if report.experiment_name is not None
        else None,
        "code": _dumped(lineage.code) if lineage else None,
        "data": [item.to_dict() for item in lineage.data or ()] if lineage else [],
        "params": dict(sorted((lineage.params or {}).items())) if lineage else {},
        "metrics": {
            name: summary.to_dict() for name, summary in sorted((lineage.metrics or {}).items())
        }
        if lineage
        else {},
        "environment": _dumped(lineage.environment) if lineage else None,
        "recordedAt": format_time(lineage.recorded_at) if lineage and lineage.recorded_at else None,
        "artifact": {
            "uri": mv.spec.artifact.uri,
            "digest": mv.spec.artifact.digest,
            "verified": checked.verified if checked else None,
            "size": checked.size if checked else None,
            "foundDigest": checked.digest if checked else None,
            "verifiedAt": format_time(checked.verified_at)
            if checked and checked.verified_at
            else None,
        },
        "stages": sorted((mv.status.stages if mv.status else None) or [], key=str.lower),
        "evaluations": [e.to_dict() for e in (mv.status.evaluations if mv.status else None) or []],
    }


def _dumped(model: Any) -> Mapping[str, Any] | None:
    return model.to_dict() if model is not None else None
