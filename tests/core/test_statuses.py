"""Owned-field status patches, tolerant condition reading, and the status of unparseable objects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from modelplane.api import Experiment, ExperimentStatus, RunCounts
from modelplane.core.statuses import conditions_of, describe_error, owned_patch, plan_invalid

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_owned_patch_sends_all_owned_fields_with_null_for_absent_ones() -> None:
    desired = ExperimentStatus(observed_generation=2, runs=RunCounts(total=1))
    patch = owned_patch(
        {"observedGeneration": 1}, desired, ("observedGeneration", "runs", "bestRun")
    )
    assert patch == {
        "observedGeneration": 2,
        "runs": {"total": 1, "running": 0, "finished": 0, "failed": 0, "killed": 0},
        "bestRun": None,
    }


def test_owned_patch_ignores_fields_it_does_not_own() -> None:
    desired = ExperimentStatus(observed_generation=1)
    current = {"observedGeneration": 1, "somethingElse": "kept"}
    assert owned_patch(current, desired, ("observedGeneration",)) is None


def test_owned_patch_rewrites_a_status_that_does_not_parse() -> None:
    desired = ExperimentStatus(observed_generation=1)
    patch = owned_patch({"observedGeneration": "one"}, desired, ("observedGeneration",))
    assert patch == {"observedGeneration": 1}


def test_conditions_of_skips_entries_that_do_not_parse() -> None:
    status = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Reconciled",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
            },
            {"type": "Broken"},
            "not even an object",
        ]
    }
    assert [c.type for c in conditions_of(status)] == ["Ready"]
    assert conditions_of({"conditions": "nope"}) == []
    assert conditions_of(None) == []


def test_describe_error_names_the_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        Experiment.model_validate(
            {"kind": "Experiment", "spec": {"objective": {"metric": "x", "goal": "up"}}}
        )
    message = describe_error(caught.value)
    assert "spec.objective.goal" in message


def test_an_invalid_object_is_stalled_and_not_ready_and_keeps_other_status() -> None:
    obj: dict[str, Any] = {
        "metadata": {"name": "r", "generation": 4},
        "status": {"phase": "Running", "metrics": {}},
    }
    plan = plan_invalid(obj, "spec.experiment: Field required", now=NOW)
    assert plan.patch is not None
    assert set(plan.patch) == {"observedGeneration", "conditions"}
    found = {c["type"]: c for c in plan.patch["conditions"]}
    assert found["Stalled"]["status"] == "True"
    assert found["Ready"]["status"] == "False"
    assert found["Ready"]["reason"] == "InvalidSpec"
    assert "spec.experiment" in found["Ready"]["message"]
    assert [note.reason for note in plan.notes] == ["InvalidSpec"]
    # Once written, the same problem is not written or announced again.
    obj["status"].update(plan.patch)
    again = plan_invalid(obj, "spec.experiment: Field required", now=NOW)
    assert again.patch is None
    assert again.notes == ()
