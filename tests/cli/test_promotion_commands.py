"""`modelplane promote` and `modelplane rollback`: arguments and the decisions they make.

The commands against a real cluster and operator are exercised in
tests/operator/test_modelstages.py.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelplane.api import ModelStage
from modelplane.cli.main import build_parser, main
from modelplane.cli.promotion_commands import (
    Conflict,
    PromotionError,
    change_version,
    rollback_target,
    wait_outcome,
)


def stage(
    version: int,
    *,
    live: int | None = None,
    previous: int | None = None,
    generation: int = 3,
    observed: int = 3,
    conditions: list[dict[str, Any]] | None = None,
) -> ModelStage:
    status: dict[str, Any] = {"observedGeneration": observed, "conditions": conditions or []}
    if live is not None:
        status["liveVersion"] = live
    if previous is not None:
        status["previousVersion"] = previous
    return ModelStage.from_object(
        {
            "apiVersion": "modelplane.io/v1alpha1",
            "kind": "ModelStage",
            "metadata": {"name": "churn-production", "generation": generation},
            "spec": {"model": "churn", "stage": "Production", "version": version},
            "status": status,
        }
    )


def cond(type_: str, status: str, reason: str = "R", message: str = "m") -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": "2025-06-01T12:00:00Z",
    }


def test_the_commands_are_registered_with_their_arguments() -> None:
    args = build_parser().parse_args(["promote", "churn", "Production", "3", "-n", "ml"])
    assert (args.model, args.stage, args.version, args.namespace) == (
        "churn",
        "Production",
        3,
        "ml",
    )
    args = build_parser().parse_args(["rollback", "churn", "Production", "--wait", "30"])
    assert (args.model, args.stage, args.wait, args.namespace) == ("churn", "Production", 30, None)


@pytest.mark.parametrize("version", ["0", "-1", "three"])
def test_promote_refuses_a_version_that_is_not_a_positive_number(version: str) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["promote", "churn", "Production", version])


def test_rollback_goes_to_the_previous_version() -> None:
    assert rollback_target(stage(3, live=3, previous=2)) == 2


def test_rollback_of_a_pending_or_failed_promotion_goes_back_to_the_live_version() -> None:
    assert rollback_target(stage(4, live=3, previous=2)) == 3


def test_rollback_without_a_previous_version_fails_with_the_reason() -> None:
    with pytest.raises(PromotionError, match="no previous version"):
        rollback_target(stage(1, live=1))
    with pytest.raises(PromotionError, match="no previous version"):
        rollback_target(stage(1))


def test_waiting_ends_when_the_version_is_live_and_ready() -> None:
    live = stage(2, live=2, conditions=[cond("Ready", "True")])
    assert wait_outcome(live, 2, generation=3) == (True, "version 2 is live in Production")


def test_waiting_ends_when_the_stage_is_stalled_with_its_reason() -> None:
    held = stage(2, live=1, conditions=[cond("Stalled", "True", "GateFailed", "test_auc low")])
    assert wait_outcome(held, 2, generation=3) == (False, "GateFailed: test_auc low")


def test_waiting_goes_on_while_the_status_is_of_an_older_generation_or_progressing() -> None:
    old = stage(2, live=1, observed=2, conditions=[cond("Stalled", "True")])
    assert wait_outcome(old, 2, generation=3) is None
    rolling = stage(2, live=1, conditions=[cond("Reconciling", "True")])
    assert wait_outcome(rolling, 2, generation=3) is None


class FakeStages:
    """`Stages` holding one ModelStage; writes may first meet a conflict (409)."""

    def __init__(self, obj: dict[str, Any], conflicts: int = 0, bump_generation: bool = False):
        self.obj = obj
        self.conflicts = conflicts
        self.bump_generation = bump_generation
        self.writes: list[tuple[int, str | None]] = []

    def read(self, name: str) -> ModelStage:
        return ModelStage.from_object(copy.deepcopy(self.obj))

    def set_version(self, name: str, version: int, resource_version: str | None) -> int:
        self.writes.append((version, resource_version))
        metadata = self.obj["metadata"]
        if self.conflicts:
            # The operator wrote the status meanwhile (or someone changed the spec).
            self.conflicts -= 1
            metadata["resourceVersion"] += "1"
            metadata["generation"] += 1 if self.bump_generation else 0
            raise Conflict(name)
        self.obj["spec"]["version"] = version
        metadata["generation"] += 1
        return int(metadata["generation"])


def stage_object() -> dict[str, Any]:
    obj = stage(2, live=2, previous=1).to_manifest()
    obj["metadata"]["resourceVersion"] = "10"
    return obj


def test_a_status_write_meanwhile_is_retried_from_a_fresh_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stages = FakeStages(stage_object(), conflicts=2)
    code = change_version(stages, "churn-production", rollback_target, verb="rollback", wait=0)
    assert code == 0
    assert stages.obj["spec"]["version"] == 1
    assert stages.writes == [(1, "10"), (1, "101"), (1, "1011")]
    assert "spec.version 2 -> 1 (rollback)" in capsys.readouterr().out


def test_a_spec_change_meanwhile_stops_the_command() -> None:
    stages = FakeStages(stage_object(), conflicts=1, bump_generation=True)
    with pytest.raises(PromotionError, match="changed meanwhile"):
        change_version(stages, "churn-production", lambda _: 3, verb="promote", wait=0)
    assert stages.obj["spec"]["version"] == 2


def test_waiting_fails_the_command_when_the_promotion_is_held() -> None:
    obj = stage_object()
    obj["status"]["conditions"] = [cond("Stalled", "True", "GateFailed", "test_auc 0.7")]
    stages = FakeStages(obj)
    with pytest.raises(PromotionError, match=r"GateFailed: test_auc 0\.7"):
        change_version(stages, "churn-production", lambda _: 2, verb="promote", wait=5)


def test_a_command_error_is_one_line_and_its_exit_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """No kubeconfig: exit 1 with `error: ...`, not a traceback."""
    missing = str(tmp_path / "nowhere.kubeconfig")
    assert main(["rollback", "churn", "Production", "--kubeconfig", missing]) == 1
    assert capsys.readouterr().err.startswith("error: ")
