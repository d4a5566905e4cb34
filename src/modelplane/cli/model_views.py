"""What `modelplane models` shows: one row per model, and the versions of one model.

A model is not an object of its own: it is the name its ModelVersions and ModelStages share
(`spec.model`). This module groups them by that name. Pure: parsed objects in, rows and
JSON-ready data out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelplane.api import ModelStage, ModelVersion
from modelplane.cli.output import NONE, format_age, format_time, render_table


@dataclass(frozen=True)
class StagePointer:
    """A stage of a model: the version it asks for and the version live there."""

    stage: str
    desired: int
    live: int | None

    def describe(self) -> str:
        """`Production=3`, or `Production=3 (desired 4)` while a change is pending or held."""
        live = str(self.live) if self.live is not None else NONE
        if self.live == self.desired:
            return f"{self.stage}={live}"
        return f"{self.stage}={live} (desired {self.desired})"


@dataclass(frozen=True)
class ModelSummary:
    """One model: its newest version, how many versions it has, and its stages."""

    model: str
    latest: int | None
    versions: int
    stages: tuple[StagePointer, ...]


def summarize_models(
    versions: Sequence[ModelVersion], stages: Sequence[ModelStage]
) -> list[ModelSummary]:
    """One summary per model named by a version or a stage, sorted by model name."""
    numbers: dict[str, list[int]] = {}
    for mv in versions:
        numbers.setdefault(mv.spec.model, []).append(mv.spec.version)
    pointers: dict[str, list[StagePointer]] = {}
    for ms in stages:
        live = ms.status.live_version if ms.status else None
        pointers.setdefault(ms.spec.model, []).append(
            StagePointer(ms.spec.stage, ms.spec.version, live)
        )
    return [
        ModelSummary(
            model=model,
            latest=max(numbers[model]) if numbers.get(model) else None,
            versions=len(numbers.get(model, ())),
            stages=tuple(sorted(pointers.get(model, ()), key=lambda p: p.stage.lower())),
        )
        for model in sorted({*numbers, *pointers})
    ]


def models_table(summaries: Sequence[ModelSummary]) -> str:
    """MODEL, LATEST (version), VERSIONS (count) and STAGES (live version per stage)."""
    rows = [
        [
            s.model,
            str(s.latest) if s.latest is not None else NONE,
            str(s.versions),
            ", ".join(p.describe() for p in s.stages) or NONE,
        ]
        for s in summaries
    ]
    return render_table(["MODEL", "LATEST", "VERSIONS", "STAGES"], rows)


def model_record(summary: ModelSummary) -> dict[str, Any]:
    """One model of `models list -o json|yaml`."""
    return {
        "model": summary.model,
        "latestVersion": summary.latest,
        "versions": summary.versions,
        "stages": [
            {"stage": p.stage, "desiredVersion": p.desired, "liveVersion": p.live}
            for p in summary.stages
        ],
    }


def versions_of(model: str, versions: Sequence[ModelVersion]) -> list[ModelVersion]:
    """The versions of `model`, newest first."""
    found = [mv for mv in versions if mv.spec.model == model]
    return sorted(found, key=lambda mv: mv.spec.version, reverse=True)


def versions_table(versions: Sequence[ModelVersion], now: datetime) -> str:
    """VERSION, NAME, RUN, VERIFIED (the artifact's digest), STAGES (live there) and AGE."""
    rows = [
        [
            str(mv.spec.version),
            mv.metadata.name or "",
            mv.spec.run or NONE,
            _verified(mv),
            ", ".join(_stages(mv)) or NONE,
            format_age(mv.metadata.creation_timestamp, now),
        ]
        for mv in versions
    ]
    return render_table(["VERSION", "NAME", "RUN", "VERIFIED", "STAGES", "AGE"], rows)


def version_record(mv: ModelVersion) -> dict[str, Any]:
    """One version of `models versions -o json|yaml`."""
    artifact = mv.status.artifact if mv.status else None
    return {
        "model": mv.spec.model,
        "version": mv.spec.version,
        "name": mv.metadata.name,
        "run": mv.spec.run,
        "artifact": {
            "uri": mv.spec.artifact.uri,
            "digest": mv.spec.artifact.digest,
            "verified": artifact.verified if artifact else None,
        },
        "stages": _stages(mv),
        "creationTimestamp": format_time(mv.metadata.creation_timestamp)
        if mv.metadata.creation_timestamp
        else None,
    }


def _verified(mv: ModelVersion) -> str:
    artifact = mv.status.artifact if mv.status else None
    if artifact is None:
        return NONE
    return "true" if artifact.verified else "false"


def _stages(mv: ModelVersion) -> list[str]:
    return sorted((mv.status.stages if mv.status else None) or [], key=str.lower)
