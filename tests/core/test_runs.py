"""Run reconciliation: references, LineageValid and Ready, lost heartbeats, SDK fields untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelplane.api import Run
from modelplane.core.runs import (
    DEFAULT_HEARTBEAT_TIMEOUT,
    HEARTBEAT_TIMEOUT_ANNOTATION,
    Reference,
    RefKind,
    heartbeat_lost,
    heartbeat_timeout,
    needs_recheck,
    plan_run,
    recheck_interval,
    references,
    run_heartbeat_timeout,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
TIMEOUT = timedelta(seconds=300)
EXPERIMENT = Reference(RefKind.EXPERIMENT, "churn")
PARENT = Reference(RefKind.RUN, "sweep")
VERSION = Reference(RefKind.MODEL_VERSION, "churn-model-v3")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def run(status: dict[str, Any] | None = None, **spec: str) -> Run:
    obj: dict[str, Any] = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "Run",
        "metadata": {
            "name": "trial",
            "namespace": "ml",
            "generation": 2,
            "creationTimestamp": stamp(NOW - timedelta(hours=2)),
        },
        "spec": {"experiment": "churn", **spec},
    }
    if status is not None:
        obj["status"] = status
    return Run.model_validate(obj)


def conditions(patch: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    assert patch is not None
    return {c["type"]: c for c in patch["conditions"]}


def applied(status: dict[str, Any] | None, patch: dict[str, Any] | None) -> dict[str, Any]:
    """The status after the API server applies a merge patch of top-level status fields."""
    result = dict(status or {})
    for key, value in (patch or {}).items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def test_references_lists_experiment_parent_and_evaluated_version_in_order() -> None:
    spec = run(parent="sweep", evaluates="churn-model-v3").spec
    assert references(spec) == (EXPERIMENT, PARENT, VERSION)
    assert references(run().spec) == (EXPERIMENT,)


def test_a_run_with_all_references_is_lineage_valid_and_ready() -> None:
    plan = plan_run(run(), [], now=NOW, timeout=TIMEOUT)
    found = conditions(plan.patch)
    assert found["LineageValid"]["status"] == "True"
    assert found["Ready"]["status"] == "True"
    assert found["Ready"]["reason"] == "Reconciled"
    assert plan.patch is not None
    assert plan.patch["observedGeneration"] == 2
    assert plan.notes == ()


def test_a_missing_experiment_makes_lineage_and_ready_false_with_a_warning() -> None:
    plan = plan_run(run(parent="sweep"), [EXPERIMENT, PARENT], now=NOW, timeout=TIMEOUT)
    found = conditions(plan.patch)
    lineage = found["LineageValid"]
    assert (lineage["status"], lineage["reason"]) == ("False", "ExperimentNotFound")
    assert 'experiment "churn" not found' in lineage["message"]
    assert 'parent run "sweep" not found' in lineage["message"]
    assert (found["Ready"]["status"], found["Ready"]["reason"]) == ("False", "ExperimentNotFound")
    [note] = plan.notes
    assert (note.type, note.reason) == ("Warning", "ExperimentNotFound")


@pytest.mark.parametrize(
    ("missing", "reason"),
    [(PARENT, "ParentNotFound"), (VERSION, "VersionNotFound")],
)
def test_each_kind_of_missing_reference_has_its_reason(missing: Reference, reason: str) -> None:
    plan = plan_run(
        run(parent="sweep", evaluates="churn-model-v3"), [missing], now=NOW, timeout=TIMEOUT
    )
    assert conditions(plan.patch)["LineageValid"]["reason"] == reason


def test_the_warning_is_posted_once_and_recovery_is_announced() -> None:
    first = plan_run(run(), [EXPERIMENT], now=NOW, timeout=TIMEOUT)
    status = applied(None, first.patch)
    again = plan_run(run(status), [EXPERIMENT], now=NOW + timedelta(minutes=1), timeout=TIMEOUT)
    assert again.patch is None
    assert again.notes == ()
    fixed = plan_run(run(status), [], now=NOW + timedelta(minutes=2), timeout=TIMEOUT)
    found = conditions(fixed.patch)
    assert found["LineageValid"]["status"] == "True"
    assert found["LineageValid"]["lastTransitionTime"] == stamp(NOW + timedelta(minutes=2))
    assert [(n.type, n.reason) for n in fixed.notes] == [("Normal", "LineageValid")]


def test_the_patch_never_holds_fields_the_sdk_owns() -> None:
    sdk = {
        "phase": "Finished",
        "startTime": stamp(NOW - timedelta(hours=1)),
        "endTime": stamp(NOW),
        "heartbeatTime": stamp(NOW),
        "metrics": {"val_auc": {"last": 0.9, "step": 10, "min": 0.5, "max": 0.9, "count": 11}},
        "artifactRoot": "s3://artifacts/churn/trial/",
    }
    plan = plan_run(run(sdk), [], now=NOW, timeout=TIMEOUT)
    assert plan.patch is not None
    assert set(plan.patch) == {"observedGeneration", "conditions"}
    assert conditions(plan.patch)["Ready"]["reason"] == "Finished"


def test_ready_follows_the_phase_without_moving_its_transition_time() -> None:
    status = applied(
        {"phase": "Running"},
        plan_run(run({"phase": "Running"}), [], now=NOW, timeout=TIMEOUT).patch,
    )
    status["heartbeatTime"] = stamp(NOW)
    status["phase"] = "Finished"
    plan = plan_run(run(status), [], now=NOW + timedelta(minutes=5), timeout=TIMEOUT)
    ready = conditions(plan.patch)["Ready"]
    assert ready["reason"] == "Finished"
    assert ready["lastTransitionTime"] == stamp(NOW)


def test_an_unchanged_run_needs_no_patch() -> None:
    status = applied({"phase": "Running", "heartbeatTime": stamp(NOW)}, None)
    status = applied(status, plan_run(run(status), [], now=NOW, timeout=TIMEOUT).patch)
    later = NOW + timedelta(seconds=100)
    assert plan_run(run(status), [], now=later, timeout=TIMEOUT).patch is None


def test_a_stale_heartbeat_fails_the_run_at_its_last_sign_of_life() -> None:
    beat = NOW - timedelta(seconds=301)
    status = {
        "phase": "Running",
        "startTime": stamp(NOW - timedelta(hours=1)),
        "heartbeatTime": stamp(beat),
    }
    plan = plan_run(run(status), [], now=NOW, timeout=TIMEOUT)
    assert plan.patch is not None
    assert plan.patch["phase"] == "Failed"
    assert plan.patch["endTime"] == stamp(beat)
    ready = conditions(plan.patch)["Ready"]
    assert (ready["status"], ready["reason"]) == ("True", "HeartbeatLost")
    assert [(n.type, n.reason) for n in plan.notes] == [("Warning", "HeartbeatLost")]
    # Afterwards the run is Failed; the reason stays, and nothing more is written.
    after = applied(status, plan.patch)
    later = plan_run(run(after), [], now=NOW + timedelta(minutes=1), timeout=TIMEOUT)
    assert later.patch is None


def test_a_fresh_heartbeat_keeps_the_run_running() -> None:
    status = {"phase": "Running", "heartbeatTime": stamp(NOW - timedelta(seconds=299))}
    plan = plan_run(run(status), [], now=NOW, timeout=TIMEOUT)
    assert plan.patch is not None
    assert "phase" not in plan.patch
    assert not heartbeat_lost(run(status), now=NOW, timeout=TIMEOUT)


def test_without_heartbeats_the_start_time_then_the_creation_time_count() -> None:
    started = {"phase": "Running", "startTime": stamp(NOW - timedelta(seconds=10))}
    assert not heartbeat_lost(run(started), now=NOW, timeout=TIMEOUT)
    # Created two hours ago, never reported a start or a heartbeat.
    assert heartbeat_lost(run({"phase": "Running"}), now=NOW, timeout=TIMEOUT)


@pytest.mark.parametrize("phase", ["Finished", "Failed", "Killed"])
def test_only_running_runs_can_lose_their_heartbeat(phase: str) -> None:
    status = {"phase": phase, "heartbeatTime": stamp(NOW - timedelta(days=1))}
    assert not heartbeat_lost(run(status), now=NOW, timeout=TIMEOUT)


def test_needs_recheck_while_running_or_invalid() -> None:
    valid = applied(None, plan_run(run(), [], now=NOW, timeout=TIMEOUT).patch)
    assert not needs_recheck(run(valid))
    assert needs_recheck(run({**valid, "phase": "Running"}))
    invalid = applied(None, plan_run(run(), [EXPERIMENT], now=NOW, timeout=TIMEOUT).patch)
    assert needs_recheck(run(invalid))
    assert needs_recheck(run())


def test_a_previous_invalid_spec_is_cleared() -> None:
    stalled = {
        "conditions": [
            {
                "type": "Stalled",
                "status": "True",
                "reason": "InvalidSpec",
                "message": "bad",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
            }
        ]
    }
    assert "Stalled" not in conditions(plan_run(run(stalled), [], now=NOW, timeout=TIMEOUT).patch)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, DEFAULT_HEARTBEAT_TIMEOUT),
        ("", DEFAULT_HEARTBEAT_TIMEOUT),
        ("90", timedelta(seconds=90)),
        ("2m", timedelta(minutes=2)),
        ("0.5", timedelta(seconds=0.5)),
    ],
)
def test_heartbeat_timeout_reads_seconds_or_a_duration(
    value: str | None, expected: timedelta
) -> None:
    environ = {} if value is None else {"MODELPLANE_RUN_HEARTBEAT_TIMEOUT": value}
    assert heartbeat_timeout(environ) == expected


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_heartbeat_timeout_refuses_nonsense(value: str) -> None:
    with pytest.raises(ValueError, match=r"MODELPLANE_RUN_HEARTBEAT_TIMEOUT|duration"):
        heartbeat_timeout({"MODELPLANE_RUN_HEARTBEAT_TIMEOUT": value})


@pytest.mark.parametrize(
    ("annotation", "expected"),
    [
        (None, timedelta(seconds=300)),
        ("20s", timedelta(seconds=20)),
        ("45", timedelta(seconds=45)),
        ("soon", timedelta(seconds=300)),
        ("0", timedelta(seconds=300)),
    ],
)
def test_a_run_may_ask_for_its_own_heartbeat_timeout(
    annotation: str | None, expected: timedelta
) -> None:
    """The annotation overrides the default; a malformed one is ignored, not fatal."""
    trial = run()
    if annotation is not None:
        trial.metadata.annotations = {HEARTBEAT_TIMEOUT_ANNOTATION: annotation}
    assert run_heartbeat_timeout(trial, timedelta(seconds=300)) == expected


def test_recheck_interval_is_a_tenth_of_the_timeout_within_bounds() -> None:
    assert recheck_interval(timedelta(seconds=300)) == 30
    assert recheck_interval(timedelta(seconds=60)) == 6
    assert recheck_interval(timedelta(seconds=2)) == 1
    assert recheck_interval(timedelta(hours=1)) == 30
