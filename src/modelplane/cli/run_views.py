"""What `modelplane runs` shows: run tables, one run in detail, and runs side by side.

Pure: parsed Runs in, rows, text and JSON-ready data out. The commands in
`modelplane.cli.tracking_commands` read the runs and print what this module builds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from modelplane.api import Condition, Objective, Run
from modelplane.cli.output import (
    NONE,
    format_age,
    format_number,
    format_time,
    format_value,
    human_duration,
    render_fields,
    render_table,
)

_SHORT_HEX = 12
_INDENT = "  "


# -- runs list ------------------------------------------------------------------------------


def metric_last(run: Run, metric: str) -> float | None:
    """The last logged value of `metric`, or None when the run has not logged it."""
    metrics = run.status.metrics if run.status is not None else None
    summary = (metrics or {}).get(metric)
    return summary.last if summary is not None else None


def default_descending(metric: str, objective: Objective | None) -> bool:
    """The order `--sort-by` uses unless told: the objective's when it ranks by this metric
    (lowest loss first when minimizing), else highest first."""
    if objective is not None and objective.metric == metric:
        return objective.goal == "maximize"
    return True


def sort_runs(runs: Sequence[Run], metric: str | None, *, descending: bool) -> list[Run]:
    """Runs by `metric`'s last value (runs without it last), else by name; ties by name."""
    by_name = sorted(runs, key=lambda run: run.metadata.name or "")
    if metric is None:
        return list(reversed(by_name)) if descending else by_name
    with_metric = [run for run in by_name if metric_last(run, metric) is not None]
    without = [run for run in by_name if metric_last(run, metric) is None]
    # sorted() is stable, so runs with equal values stay in name order either way.
    with_metric.sort(key=lambda run: metric_last(run, metric) or 0.0, reverse=descending)
    return with_metric + without


def runs_table(runs: Sequence[Run], metric: str | None, now: datetime) -> str:
    """NAME, EXPERIMENT, PHASE, PARENT, the metric's last value (with `metric`) and AGE."""
    headers = ["NAME", "EXPERIMENT", "PHASE", "PARENT"]
    if metric is not None:
        headers.append(metric.upper())
    headers.append("AGE")
    rows = []
    for run in runs:
        row = [
            run.metadata.name or "",
            run.spec.experiment,
            format_value(run.status.phase if run.status else None),
            format_value(run.spec.parent),
        ]
        if metric is not None:
            row.append(format_number(metric_last(run, metric)))
        row.append(format_age(run.metadata.creation_timestamp, now))
        rows.append(row)
    return render_table(headers, rows)


def run_record(run: Run) -> dict[str, Any]:
    """One run of `runs list -o json|yaml`: the table's columns as typed values, all metrics."""
    status = run.status
    return {
        "name": run.metadata.name,
        "namespace": run.metadata.namespace,
        "experiment": run.spec.experiment,
        "phase": status.phase if status else None,
        "parent": run.spec.parent,
        "metrics": {name: summary.last for name, summary in sorted((status.metrics or {}).items())}
        if status
        else {},
        "creationTimestamp": _time_data(run.metadata.creation_timestamp),
    }


# -- runs show ------------------------------------------------------------------------------


def run_details(run: Run, now: datetime) -> str:
    """Everything recorded about one run, in the sections of `kubectl describe`."""
    spec, status = run.spec, run.status
    start = status.start_time if status else None
    end = status.end_time if status else None
    fields = [
        ("Name", run.metadata.name or ""),
        ("Namespace", format_value(run.metadata.namespace)),
        ("Experiment", spec.experiment),
        ("Phase", format_value(status.phase if status else None)),
        ("Parent", format_value(spec.parent)),
        ("Evaluates", format_value(spec.evaluates)),
        ("Started", format_time(start)),
        ("Ended", format_time(end)),
        ("Duration", _duration(start, end, now)),
        ("Artifacts", format_value(status.artifact_root if status else None)),
        ("Tags", _pairs(spec.tags)),
    ]
    sections = [
        render_fields(fields),
        _section("Code", _code_fields(run)),
        _section("Data", _data_table(run)),
        _section("Environment", _environment_fields(run)),
        _section("Params", _params_table(spec.params)),
        _section("Metrics", _metrics_table(run)),
        _section("Conditions", conditions_table(status.conditions if status else None, now)),
    ]
    return "\n\n".join(sections)


def conditions_table(conditions: Sequence[Condition] | None, now: datetime) -> str:
    """TYPE, STATUS, REASON, AGE (since the last transition) and MESSAGE; empty without any."""
    if not conditions:
        return ""
    rows = [
        [
            c.type,
            c.status,
            c.reason,
            format_age(c.last_transition_time, now),
            c.message,
        ]
        for c in conditions
    ]
    return render_table(["TYPE", "STATUS", "REASON", "AGE", "MESSAGE"], rows)


def _section(title: str, body: str) -> str:
    if not body:
        return f"{title}:  {NONE}"
    indented = "\n".join(f"{_INDENT}{line}".rstrip() for line in body.splitlines())
    return f"{title}:\n{indented}"


def _code_fields(run: Run) -> str:
    code = run.spec.code
    if code is None:
        return ""
    return render_fields(
        [
            ("Repository", code.repository),
            ("Commit", code.commit),
            ("Path", format_value(code.path)),
            ("Dirty", "true (uncommitted changes)" if code.dirty else "false"),
        ]
    )


def _data_table(run: Run) -> str:
    data = run.spec.data
    if not data:
        return ""
    return render_table(["NAME", "URI", "DIGEST"], [[d.name, d.uri, d.digest] for d in data])


def _environment_fields(run: Run) -> str:
    env = run.spec.environment
    if env is None:
        return ""
    return render_fields(
        [
            ("Image", format_value(env.image)),
            ("Python", format_value(env.python)),
            ("Requirements", format_value(env.requirements)),
        ]
    )


def _params_table(params: Mapping[str, str] | None) -> str:
    if not params:
        return ""
    return render_table(["NAME", "VALUE"], [[k, v] for k, v in sorted(params.items())])


def _metrics_table(run: Run) -> str:
    metrics = run.status.metrics if run.status else None
    if not metrics:
        return ""
    rows = [
        [
            name,
            format_number(m.last),
            str(m.step),
            format_number(m.min),
            format_number(m.max),
            str(m.count),
        ]
        for name, m in sorted(metrics.items())
    ]
    return render_table(["NAME", "LAST", "STEP", "MIN", "MAX", "COUNT"], rows)


def _duration(start: datetime | None, end: datetime | None, now: datetime) -> str:
    if start is None:
        return NONE
    text = human_duration(((end or now) - start).total_seconds())
    return text if end is not None else f"{text} (running)"


def _pairs(values: Mapping[str, str] | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((values or {}).items())) or NONE


def _time_data(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


# -- runs compare ---------------------------------------------------------------------------

Section = Literal["run", "param", "metric"]


@dataclass(frozen=True)
class ComparedField:
    """One field across the compared runs: its value in each (None where absent)."""

    section: Section
    name: str
    values: tuple[str | float | None, ...]
    shown: tuple[str, ...]
    """The values as the table prints them (digests and commits shortened)."""

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


@dataclass(frozen=True)
class Comparison:
    """Runs side by side: what they ran (experiment, phase, code, data), params and metrics."""

    runs: tuple[str, ...]
    fields: tuple[ComparedField, ...]

    def of(self, section: Section) -> list[ComparedField]:
        return [f for f in self.fields if f.section == section]


def compare_runs(runs: Sequence[Run]) -> Comparison:
    """Lines up the runs' params (by name), metrics (last value) and what they ran."""
    fields = [*_run_fields(runs)]
    for name in sorted({k for run in runs for k in (run.spec.params or {})}):
        values = tuple((run.spec.params or {}).get(name) for run in runs)
        fields.append(ComparedField("param", name, values, tuple(map(format_value, values))))
    metric_names = {k for run in runs for k in ((run.status.metrics if run.status else None) or {})}
    for name in sorted(metric_names):
        numbers = tuple(metric_last(run, name) for run in runs)
        fields.append(ComparedField("metric", name, numbers, tuple(map(format_number, numbers))))
    return Comparison(tuple(run.metadata.name or "" for run in runs), tuple(fields))


def _run_fields(runs: Sequence[Run]) -> list[ComparedField]:
    def field(name: str, values: Sequence[str | None], shown: Sequence[str]) -> ComparedField:
        return ComparedField("run", name, tuple(values), tuple(shown))

    experiments = [run.spec.experiment for run in runs]
    phases = [run.status.phase if run.status else None for run in runs]
    codes = [_code_identity(run) for run in runs]
    fields = [
        field("experiment", experiments, experiments),
        field("phase", phases, [format_value(p) for p in phases]),
        field("code", codes, [_short_code(run) for run in runs]),
    ]
    inputs = sorted({d.name for run in runs for d in run.spec.data or ()})
    for name in inputs:
        digests = [_data_digest(run, name) for run in runs]
        fields.append(field(f"data {name}", digests, [_short_digest(d) for d in digests]))
    images = [run.spec.environment.image if run.spec.environment else None for run in runs]
    if any(images):
        fields.append(field("image", images, [_short_image(i) for i in images]))
    pythons = [run.spec.environment.python if run.spec.environment else None for run in runs]
    if any(pythons):
        fields.append(field("python", pythons, [format_value(p) for p in pythons]))
    return fields


def _code_identity(run: Run) -> str | None:
    code = run.spec.code
    if code is None:
        return None
    return f"{code.repository}@{code.commit}{' dirty' if code.dirty else ''}"


def _short_code(run: Run) -> str:
    code = run.spec.code
    if code is None:
        return NONE
    return f"{code.commit[:_SHORT_HEX]}{' (dirty)' if code.dirty else ''}"


def _data_digest(run: Run, name: str) -> str | None:
    return next((d.digest for d in run.spec.data or () if d.name == name), None)


def _short_digest(digest: str | None) -> str:
    if digest is None:
        return NONE
    algorithm, _, hex_ = digest.partition(":")
    return f"{algorithm}:{hex_[:_SHORT_HEX]}" if len(hex_) > _SHORT_HEX else digest


def _short_image(image: str | None) -> str:
    if image is None:
        return NONE
    # The repository's last segment and a short digest: enough to tell images apart.
    name, _, digest = image.partition("@")
    name = name.rsplit("/", 1)[-1]
    return f"{name}@{_short_digest(digest)}" if digest else name


_SECTION_HEADERS: dict[Section, str] = {"run": "RUN", "param": "PARAM", "metric": "METRIC (LAST)"}


def comparison_text(comparison: Comparison) -> str:
    """One table per section, a run per column; `*` marks fields whose values differ."""
    blocks = []
    for section, header in _SECTION_HEADERS.items():
        fields = comparison.of(section)
        if not fields:
            continue
        rows = [[f"{'*' if f.differs else ' '} {f.name}", *f.shown] for f in fields]
        blocks.append(render_table([f"  {header}", *comparison.runs], rows))
    blocks.append("* the values differ between the runs")
    return "\n\n".join(blocks)


_DATA_KEYS: tuple[tuple[Section, str], ...] = (
    ("run", "run"),
    ("param", "params"),
    ("metric", "metrics"),
)


def comparison_data(comparison: Comparison) -> dict[str, Any]:
    """The comparison for scripts: per section, each field's full values by run name."""
    data: dict[str, Any] = {"runs": list(comparison.runs)}
    for section, key in _DATA_KEYS:
        data[key] = [
            {
                "name": f.name,
                "values": dict(zip(comparison.runs, f.values, strict=True)),
                "differs": f.differs,
            }
            for f in comparison.of(section)
        ]
    return data
