"""Run reconciliation against a real control plane and the real operator process.

The operator checks that a run's experiment, parent run and evaluated ModelVersion exist, keeps
LineageValid and Ready current, never overwrites what the SDK writes into status, and ends a
Running run whose heartbeat stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client as k8s
from tests.waiting import wait_for

from modelplane.core.runs import heartbeat_timeout

pytestmark = pytest.mark.cluster

GROUP, VERSION = "modelplane.io", "v1alpha1"
COMMIT = "392bc3103b9fd91a9297077266a0a1ece4592d88"
# The session operator inherits this process's environment, so it uses the same timeout.
HEARTBEAT_TIMEOUT = heartbeat_timeout().total_seconds()


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Objects:
    """Create, read and patch modelplane objects in one namespace, as users and the SDK do."""

    def __init__(self, cluster: Any, namespace: str) -> None:
        api_client = cluster.api_client()
        self.custom = k8s.CustomObjectsApi(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.namespace = namespace

    def create(self, plural: str, manifest: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, manifest
        )
        return obj

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name
        )
        return obj

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, patch
        )
        return obj

    def patch_status(self, plural: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """What the SDK does: a merge patch of the fields it owns."""
        obj: dict[str, Any] = self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, plural, name, {"status": status}
        )
        return obj

    def condition(self, plural: str, name: str, type: str) -> dict[str, Any] | None:
        status = self.get(plural, name).get("status") or {}
        return next((c for c in status.get("conditions", []) if c["type"] == type), None)

    def events(self, name: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the Events about the object `name`."""
        found = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        )
        return [(e.type, e.reason, e.message) for e in found.items]


def experiment_manifest(
    name: str, metric: str = "val_auc", goal: str = "maximize"
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": name},
        "spec": {"objective": {"metric": metric, "goal": goal}},
    }


def run_manifest(name: str, experiment: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Run",
        "metadata": {"name": name},
        "spec": {
            "experiment": experiment,
            "params": {"learning_rate": "0.05"},
            "code": {"repository": "https://git.example.com/ml/churn.git", "commit": COMMIT},
            **spec,
        },
    }


def version_manifest(model: str, version: int, run: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{version}"},
        "spec": {
            "model": model,
            "version": version,
            "run": run,
            "artifact": {"uri": f"s3://models/{model}/{version}/", "digest": "sha256:" + "0" * 64},
        },
    }


@pytest.fixture
def objects(cluster: Any, namespace: str) -> Objects:
    return Objects(cluster, namespace)


def condition_is(
    objects: Objects, name: str, type: str, status: str, reason: str | None = None
) -> Callable[[], dict[str, Any] | None]:
    """A poller: the run's condition once it has this status (and reason), else None."""

    def check() -> dict[str, Any] | None:
        found = objects.condition("runs", name, type)
        if found is None or found["status"] != status:
            return None
        if reason is not None and found["reason"] != reason:
            return None
        return found

    return check


def has_event(
    objects: Objects, name: str, type: str, reason: str
) -> Callable[[], list[tuple[str, str, str]]]:
    """A poller: the object's Events of this type and reason (empty until posted)."""
    return lambda: [e for e in objects.events(name) if e[0] == type and e[1] == reason]


def test_a_missing_experiment_is_reported_and_resolved_when_it_appears(
    operator: Any, objects: Objects
) -> None:
    """LineageValid and Ready are False with an Event; both turn True when the experiment exists."""
    objects.create("runs", run_manifest("trial", "churn"))
    lineage = wait_for(
        condition_is(objects, "trial", "LineageValid", "False", "ExperimentNotFound"),
        timeout=30,
        message="LineageValid=False/ExperimentNotFound",
    )
    assert 'experiment "churn" not found' in lineage["message"]
    ready = objects.condition("runs", "trial", "Ready")
    assert ready is not None
    assert (ready["status"], ready["reason"]) == ("False", "ExperimentNotFound")
    [(_, _, message)] = wait_for(
        has_event(objects, "trial", "Warning", "ExperimentNotFound"), 30, "a Warning Event"
    )
    assert "churn" in message

    objects.create("experiments", experiment_manifest("churn"))
    # Well within the 30 s recheck timer: the experiment's appearance itself triggers the check.
    wait_for(
        condition_is(objects, "trial", "LineageValid", "True"), timeout=15, message="lineage valid"
    )
    wait_for(condition_is(objects, "trial", "Ready", "True"), timeout=15, message="Ready=True")
    wait_for(has_event(objects, "trial", "Normal", "LineageValid"), 30, "a Normal Event")
    # The warning was posted once, not on every reconciliation.
    assert len([e for e in objects.events("trial") if e[1] == "ExperimentNotFound"]) == 1


def test_missing_parent_and_evaluated_version_are_reported_until_they_exist(
    operator: Any, objects: Objects
) -> None:
    objects.create("experiments", experiment_manifest("churn"))
    objects.create(
        "runs", run_manifest("eval", "churn", parent="sweep", evaluates="churn-model-v1")
    )
    lineage = wait_for(
        condition_is(objects, "eval", "LineageValid", "False", "ParentNotFound"),
        timeout=30,
        message="LineageValid=False/ParentNotFound",
    )
    assert 'parent run "sweep"' in lineage["message"]
    assert 'model version "churn-model-v1"' in lineage["message"]

    objects.create("runs", run_manifest("sweep", "churn"))
    wait_for(
        condition_is(objects, "eval", "LineageValid", "False", "VersionNotFound"),
        timeout=15,
        message="only the version missing",
    )
    objects.create("modelversions", version_manifest("churn-model", 1, "sweep"))
    wait_for(condition_is(objects, "eval", "LineageValid", "True"), 15, "lineage valid")
    wait_for(condition_is(objects, "eval", "Ready", "True"), 15, "Ready=True")


def test_a_deleted_experiment_invalidates_its_runs(operator: Any, objects: Objects) -> None:
    objects.create("experiments", experiment_manifest("churn"))
    objects.create("runs", run_manifest("trial", "churn"))
    wait_for(condition_is(objects, "trial", "LineageValid", "True"), 30, "lineage valid")
    objects.custom.delete_namespaced_custom_object(
        GROUP, VERSION, objects.namespace, "experiments", "churn"
    )
    wait_for(
        condition_is(objects, "trial", "LineageValid", "False", "ExperimentNotFound"),
        timeout=15,
        message="lineage invalid after the experiment is deleted",
    )


def test_sdk_status_fields_survive_reconciliation(operator: Any, objects: Objects) -> None:
    """Phase, times, metrics and artifactRoot written by the SDK are never lost or changed."""
    objects.create("experiments", experiment_manifest("churn"))
    objects.create("runs", run_manifest("trial", "churn"))
    wait_for(condition_is(objects, "trial", "Ready", "True", "Reconciled"), 30, "Ready")

    start = datetime.now(UTC)
    sdk: dict[str, Any] = {
        "phase": "Running",
        "startTime": stamp(start),
        "heartbeatTime": stamp(start),
        "metrics": {"loss": {"last": 0.5, "step": 1, "min": 0.5, "max": 0.9, "count": 2}},
        "artifactRoot": "s3://artifacts/churn/trial/",
    }
    objects.patch_status("runs", "trial", sdk)
    wait_for(condition_is(objects, "trial", "Ready", "True", "Running"), 30, "Ready/Running")

    # A spec change (a new param) makes the operator write observedGeneration and conditions.
    objects.patch("runs", "trial", {"spec": {"params": {"n_estimators": "300"}}})
    wait_for(
        lambda: objects.get("runs", "trial")["status"].get("observedGeneration") == 2,
        timeout=30,
        message="observedGeneration 2",
    )
    status = objects.get("runs", "trial")["status"]
    assert {key: status.get(key) for key in sdk} == sdk

    finish = {
        "phase": "Finished",
        "endTime": stamp(datetime.now(UTC)),
        "heartbeatTime": stamp(datetime.now(UTC)),
        "metrics": {"loss": {"last": 0.2, "step": 9, "min": 0.2, "max": 0.9, "count": 10}},
    }
    objects.patch_status("runs", "trial", finish)
    wait_for(condition_is(objects, "trial", "Ready", "True", "Finished"), 30, "Ready/Finished")
    status = objects.get("runs", "trial")["status"]
    expected = {**sdk, **finish}
    assert {key: status.get(key) for key in expected} == expected
    assert status["observedGeneration"] == 2


def test_a_stale_heartbeat_ends_the_run_failed(operator: Any, objects: Objects) -> None:
    """A Running run last heard of an hour ago is Failed with HeartbeatLost, ended at that time."""
    objects.create("experiments", experiment_manifest("churn"))
    objects.create("runs", run_manifest("lost", "churn"))
    beat = datetime.now(UTC) - timedelta(hours=1)
    objects.patch_status(
        "runs",
        "lost",
        {
            "phase": "Running",
            "startTime": stamp(beat - timedelta(hours=1)),
            "heartbeatTime": stamp(beat),
        },
    )
    wait_for(
        lambda: objects.get("runs", "lost")["status"].get("phase") == "Failed",
        timeout=30,
        message="phase Failed",
    )
    status = objects.get("runs", "lost")["status"]
    assert status["endTime"] == stamp(beat)
    assert status["heartbeatTime"] == stamp(beat)
    ready = objects.condition("runs", "lost", "Ready")
    assert ready is not None
    assert ready["reason"] == "HeartbeatLost"
    wait_for(has_event(objects, "lost", "Warning", "HeartbeatLost"), 30, "a HeartbeatLost Event")


def test_a_heartbeat_that_stops_is_noticed_by_the_timer(operator: Any, objects: Objects) -> None:
    """A run that was alive when last seen is failed once its timeout passes, with no new event;
    a run that keeps beating stays Running."""
    objects.create("experiments", experiment_manifest("churn"))
    objects.create("runs", run_manifest("dying", "churn"))
    objects.create("runs", run_manifest("alive", "churn"))
    now = datetime.now(UTC)
    # Five seconds of heartbeat left; the timer looks every 30 s (a tenth of the timeout).
    last_beat = now - timedelta(seconds=HEARTBEAT_TIMEOUT - 5)
    objects.patch_status("runs", "dying", {"phase": "Running", "heartbeatTime": stamp(last_beat)})
    objects.patch_status("runs", "alive", {"phase": "Running", "heartbeatTime": stamp(now)})
    wait_for(condition_is(objects, "dying", "Ready", "True", "Running"), 15, "dying is Running")
    wait_for(
        lambda: objects.get("runs", "dying")["status"].get("phase") == "Failed",
        timeout=50,
        message="the timer to fail the run",
    )
    assert objects.get("runs", "alive")["status"]["phase"] == "Running"


def test_objects_pointing_at_missing_things_never_stop_the_operator(
    operator: Any, objects: Objects, cluster: Any, namespace: str
) -> None:
    """Schema-valid but dangling or half-formed objects end in conditions; others are served."""
    log_start = len(operator.log())
    objects.create(
        "runs", run_manifest("dangling", "nowhere", parent="nobody", evaluates="no-model-v9")
    )
    objects.create("runs", run_manifest("bare", "nowhere"))
    # Half-formed status: a phase and nothing else, an empty metric name, no objective metric.
    objects.patch_status("runs", "bare", {"phase": "Finished"})
    objects.create("experiments", experiment_manifest("unmeasured", metric="never_logged"))
    objects.create("runs", run_manifest("odd", "unmeasured"))
    objects.patch_status(
        "runs",
        "odd",
        {
            "phase": "Finished",
            "metrics": {"": {"last": 1e300, "step": 0, "min": -1e300, "max": 1e300, "count": 1}},
        },
    )
    objects.create("modelversions", version_manifest("orphan", 1, "no-such-run"))

    wait_for(
        condition_is(objects, "dangling", "LineageValid", "False", "ExperimentNotFound"),
        30,
        "dangling reported",
    )
    wait_for(condition_is(objects, "odd", "Ready", "True", "Finished"), 30, "odd served")

    # The run is created, then finished: the summary may show it Running before Finished.
    def finished_summary() -> dict[str, Any] | None:
        runs: dict[str, Any] = (
            objects.get("experiments", "unmeasured").get("status", {}).get("runs", {})
        )
        return runs if runs.get("finished") == 1 else None

    unmeasured = wait_for(finished_summary, 30, "the experiment summarized with its finished run")
    assert unmeasured["total"] == 1
    assert "bestRun" not in objects.get("experiments", "unmeasured")["status"]

    # Other objects, in another namespace, are still served.
    other = f"{namespace}-other"
    objects.core.create_namespace({"metadata": {"name": other}})
    try:
        elsewhere = Objects(cluster, other)
        elsewhere.create("experiments", experiment_manifest("fine"))
        elsewhere.create("runs", run_manifest("fine-run", "fine"))
        wait_for(condition_is(elsewhere, "fine-run", "Ready", "True"), 30, "another run served")
    finally:
        objects.core.delete_namespace(other)
    assert operator.alive()
    mine = ("run_changed", "recheck_run", "experiment_changed", "run_changed_for_experiment")
    failures = [
        line
        for line in operator.log()[log_start:].splitlines()
        if "failed" in line and any(f"'{handler}'" in line for handler in mine)
    ]
    assert failures == []
