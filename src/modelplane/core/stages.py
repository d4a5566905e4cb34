"""Which stages a model version is live in, computed from the model's ModelStages.

A ModelStage points one stage of a model (Staging, Production, champion) at a version; the
version it actually serves is `status.liveVersion`. A ModelVersion lists in `status.stages` the
stages whose live version is its own version, so `kubectl get mv` shows where each version runs.
The desired version (`spec.version`) does not count: a version is not "in Production" until a
rollout has made it live there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class StagePointer:
    """One ModelStage of a model, reduced to what `status.stages` needs."""

    stage: str
    live_version: int | None


def stages_of_version(version: int, pointers: Iterable[StagePointer]) -> list[str]:
    """The stages where `version` is live, sorted and without duplicates."""
    return sorted({pointer.stage for pointer in pointers if pointer.live_version == version})
