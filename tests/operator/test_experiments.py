"""Experiment summaries against a real control plane and the real operator process.

The operator counts an experiment's runs by phase and names the best finished run by the
objective, keeps both current as runs change, and after a restart reaches the same status
without rewriting it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from test_runs import GROUP, VERSION, Objects, experiment_manifest, run_manifest, stamp
from tests.waiting import holds_for, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture
def objects(cluster: Any, namespace: str) -> Objects:
    return Objects(cluster, namespace)


def status(objects: Objects, name: str) -> dict[str, Any]:
    found: dict[str, Any] = objects.get("experiments", name).get("status") or {}
    return found


def runs_are(objects: Objects, name: str, **expected: int) -> Any:
    """A poller: the experiment's run counts once they equal `expected` (others 0)."""
    want = {"total": 0, "running": 0, "finished": 0, "failed": 0, "killed": 0, **expected}
    return lambda: status(objects, name).get("runs") == want


def best_is(objects: Objects, name: str, run: str | None, value: float | None = None) -> Any:
    """A poller: the experiment's best run once it is `run` (with `value`); None: no best run."""

    def check() -> bool:
        best = status(objects, name).get("bestRun")
        if run is None:
            return best is None and "runs" in status(objects, name)
        return (
            best is not None and best["name"] == run and (value is None or best["value"] == value)
        )

    return check


def metric(value: float, step: int = 1) -> dict[str, Any]:
    return {"last": value, "step": step, "min": value, "max": value, "count": step}


def finish(objects: Objects, run: str, **metrics: float) -> None:
    """What the SDK does at the end of a run."""
    objects.patch_status(
        "runs",
        run,
        {
            "phase": "Finished",
            "endTime": stamp(datetime.now(UTC)),
            "metrics": {key: metric(value) for key, value in metrics.items()},
        },
    )


def start(objects: Objects, run: str, **metrics: float) -> None:
    now = stamp(datetime.now(UTC))
    objects.patch_status(
        "runs",
        run,
        {
            "phase": "Running",
            "startTime": now,
            "heartbeatTime": now,
            "metrics": {key: metric(value) for key, value in metrics.items()},
        },
    )


def test_counts_runs_by_phase_as_they_change(operator: Any, objects: Objects) -> None:
    objects.create("experiments", experiment_manifest("churn"))
    for name in ("running", "finished", "failed", "killed", "new"):
        objects.create("runs", run_manifest(name, "churn"))
    start(objects, "running")
    finish(objects, "finished", val_auc=0.8)
    objects.patch_status("runs", "failed", {"phase": "Failed"})
    objects.patch_status("runs", "killed", {"phase": "Killed"})
    wait_for(
        runs_are(objects, "churn", total=5, running=1, finished=1, failed=1, killed=1),
        timeout=30,
        message="counts by phase",
    )
    ready = next(c for c in status(objects, "churn")["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("True", "Reconciled")
    assert status(objects, "churn")["observedGeneration"] == 1

    finish(objects, "running", val_auc=0.7)
    wait_for(
        runs_are(objects, "churn", total=5, finished=2, failed=1, killed=1),
        timeout=30,
        message="the running run counted as finished",
    )
    objects.custom.delete_namespaced_custom_object(
        GROUP, VERSION, objects.namespace, "runs", "failed"
    )
    wait_for(
        runs_are(objects, "churn", total=4, finished=2, killed=1),
        timeout=30,
        message="the deleted run no longer counted",
    )


def test_best_run_follows_metric_updates_when_maximizing(operator: Any, objects: Objects) -> None:
    objects.create("experiments", experiment_manifest("churn", "val_auc", "maximize"))
    for name in ("a", "b", "c"):
        objects.create("runs", run_manifest(name, "churn"))
    finish(objects, "a", val_auc=0.8)
    finish(objects, "b", val_auc=0.7)
    start(objects, "c", val_auc=0.95)
    # A running run does not count, however good its metric.
    wait_for(best_is(objects, "churn", "a", 0.8), 30, "best run a")

    finish(objects, "c", val_auc=0.95)
    wait_for(best_is(objects, "churn", "c", 0.95), 30, "best run c once it finished")
    # The SDK updates a finished run's summary (a late evaluation).
    objects.patch_status("runs", "b", {"metrics": {"val_auc": metric(0.99, step=2)}})
    wait_for(best_is(objects, "churn", "b", 0.99), 30, "best run b after its metric rose")
    wait_for(
        lambda: [
            message
            for _, reason, message in objects.events("churn")
            if reason == "BestRunChanged" and message.startswith("best run is b: val_auc=0.99")
        ],
        timeout=30,
        message="a BestRunChanged Event naming b",
    )


def test_best_run_when_minimizing_and_when_the_objective_changes(
    operator: Any, objects: Objects
) -> None:
    objects.create("experiments", experiment_manifest("churn", "loss", "minimize"))
    for name, loss in (("a", 0.3), ("b", 0.1), ("c", 0.2)):
        objects.create("runs", run_manifest(name, "churn"))
        finish(objects, name, loss=loss)
    wait_for(best_is(objects, "churn", "b", 0.1), 30, "lowest loss")

    objects.patch("experiments", "churn", {"spec": {"objective": {"goal": "maximize"}}})
    wait_for(best_is(objects, "churn", "a", 0.3), 30, "highest loss once maximizing")
    assert status(objects, "churn")["observedGeneration"] == 2

    objects.patch("experiments", "churn", {"spec": {"objective": None}})
    wait_for(best_is(objects, "churn", None), 30, "no best run without an objective")
    assert status(objects, "churn")["runs"]["finished"] == 3


def test_runs_created_before_their_experiment_are_counted(operator: Any, objects: Objects) -> None:
    for name, auc in (("a", 0.6), ("b", 0.9)):
        objects.create("runs", run_manifest(name, "churn"))
        finish(objects, name, val_auc=auc)
    objects.create("experiments", experiment_manifest("churn"))
    wait_for(runs_are(objects, "churn", total=2, finished=2), 30, "both runs counted")
    wait_for(best_is(objects, "churn", "b", 0.9), 30, "best run b")


def test_an_operator_restart_reaches_the_same_status_and_rewrites_nothing(
    operator: Any, objects: Objects
) -> None:
    objects.create("experiments", experiment_manifest("churn"))
    for name in ("a", "b"):
        objects.create("runs", run_manifest(name, "churn"))
    finish(objects, "a", val_auc=0.8)
    start(objects, "b", val_auc=0.5)
    wait_for(runs_are(objects, "churn", total=2, running=1, finished=1), 30, "summary")
    wait_for(best_is(objects, "churn", "a", 0.8), 30, "best run a")
    # Let the writes that follow the last change settle before taking the reference.
    holds_for(lambda: status(objects, "churn").get("runs", {}).get("total") == 2, duration=2)
    before = objects.get("experiments", "churn")
    runs_before = {name: objects.get("runs", name)["status"] for name in ("a", "b")}

    operator.restart(kill=True)
    holds_for(
        lambda: (
            objects.get("experiments", "churn")["metadata"]["resourceVersion"]
            == before["metadata"]["resourceVersion"]
        ),
        duration=5,
        message="the experiment is not rewritten after a restart",
    )
    assert {name: objects.get("runs", name)["status"] for name in ("a", "b")} == runs_before
    assert objects.get("experiments", "churn")["status"] == before["status"]

    # Changes made while the operator is down are picked up when it comes back.
    operator.stop(kill=True)
    finish(objects, "b", val_auc=0.95)
    objects.create("runs", run_manifest("c", "churn"))
    objects.patch_status("runs", "c", {"phase": "Failed"})
    operator.start()
    wait_for(runs_are(objects, "churn", total=3, finished=2, failed=1), 30, "summary after restart")
    wait_for(best_is(objects, "churn", "b", 0.95), 30, "best run b after restart")
    assert 'modelplane_reconciles_total{kind="Experiment",result="success"}' in operator.metrics()
