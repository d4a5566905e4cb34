"""The gates webhook's answer to a write that sets a ModelStage's spec.version (pure).

A write is refused when the version does not exist, cannot be promoted whatever its gates say
(`modelplane.core.gates.version_problem`), or fails a gate that waiting cannot cure. Gates that
only need time or approvals admit the write with a warning: the promotion waits in status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from modelplane.api import ModelStage, ModelVersion, model_version_name
from modelplane.core.gates import (
    blocking_failures,
    build_gate_inputs,
    evaluate_gates,
    failure_message,
    version_problem,
)


@dataclass(frozen=True)
class GateVerdict:
    """``refusal`` is the message of a refused write; None admits it, with ``warnings``."""

    refusal: str | None = None
    warnings: tuple[str, ...] = ()

    @property
    def admitted(self) -> bool:
        return self.refusal is None


def reads_other_stages(stage: ModelStage) -> bool:
    """Whether the stage's gates look at the model's other stages (a requireStage gate)."""
    gates = stage.spec.gates
    return gates is not None and gates.require_stage is not None


def judge_version_change(
    stage: ModelStage,
    model_version: ModelVersion | None,
    model_stages: Iterable[ModelStage],
    *,
    now: datetime,
) -> GateVerdict:
    """Admit or refuse `stage` as written, with `model_version` the version it names (None:
    there is no such ModelVersion) and `model_stages` the stages its gates may read."""
    model, version = stage.spec.model, stage.spec.version
    if model_version is None:
        return GateVerdict(
            f"version {version} of {model} does not exist: no ModelVersion "
            f"{model_version_name(model, version)} in namespace {stage.metadata.namespace or ''}"
        )
    problem = version_problem(model_version)
    if problem is not None:
        return GateVerdict(f"version {version} of {model} cannot be promoted: {problem}")
    inputs = build_gate_inputs(stage, model_version, model_stages, now=now)
    results = evaluate_gates(stage.spec.gates, inputs)
    blocking = blocking_failures(results, inputs)
    if blocking:
        return GateVerdict(f"{failure_message(blocking)} (version {version})")
    waiting = [result for result in results if not result.passed]
    if not waiting:
        return GateVerdict()
    return GateVerdict(
        warnings=(
            f"{failure_message(waiting)}: version {version} waits for these gates before it "
            "rolls out",
        )
    )
