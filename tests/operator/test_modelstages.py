"""ModelStage promotion and serving against a real API server, Deployment controller and kwok.

kwok's fake nodes make pods Ready shortly after they are scheduled, so Deployments really roll
out; pods labelled `modelplane.io/never-ready: "true"` never become Ready, so a Deployment of
them ends in ProgressDeadlineExceeded. ModelVersions become Ready through the real ModelVersion
handler, which verifies their artifacts in MinIO.

The session's operator runs without the admission webhook (`--webhook` defaults to off), which
is the GitOps situation the status path exists for: a change of spec.version that nothing
checked at admission, or whose gate inputs changed since.

Each test prints how long the steps took (`pytest -s` shows them).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.kubeobjects import NamespacedObjects
from tests.waiting import holds_for, wait_for

from modelplane.api import GROUP, VERSION, ModelStage
from modelplane.cli.main import main as cli
from modelplane.core.conditions import ConditionType, Reason, find_condition
from modelplane.localcluster.cluster import NEVER_READY_LABEL
from modelplane.operator.modelstages import RECHECK_INTERVAL

pytestmark = pytest.mark.cluster

MODEL = "churn"
# Verification takes a timer tick; rollouts of two kwok pods take a few seconds.
TIMEOUT = 60
DEADLINE = 15
"""progressDeadlineSeconds of the serving Deployments: how long a failing rollout takes."""
SOAK = 20
"""minDuration in Staging required by a test's Production gate."""
RECHECK = RECHECK_INTERVAL
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "churn-server"}},
    "spec": {
        "containers": [
            {
                "name": "server",
                "image": "registry.example.com/churn-server:1.0",
                "env": [{"name": "LOG_LEVEL", "value": "info"}],
            }
        ]
    },
}


class Api(NamespacedObjects):
    """The test cluster's ModelStages, ModelVersions, Deployments and Events."""

    def get(self, plural: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name
        )
        return obj

    def stage(self, name: str) -> ModelStage:
        return ModelStage.from_object(self.get("modelstages", name))

    def events(self, kind: str, name: str, reason: str) -> list[Any]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name},reason={reason}"
        return list(self.core.list_namespaced_event(self.namespace, field_selector=selector).items)


@pytest.fixture
def api(cluster: Any, namespace: str, operator: Any) -> Iterator[Api]:
    yield Api(cluster, namespace)
    assert operator.alive(), f"the operator died:\n{operator.log()[-3000:]}"


# -- objects --------------------------------------------------------------------------------


def register_version(api: Api, s3: Any, bucket: str, version: int) -> str:
    """Upload an artifact, register it as a ModelVersion and wait until it is Ready (verified):
    admission refuses a promotion to an unverified version."""
    data = f"churn model {version}".encode() * 100
    key = f"{MODEL}/{version}/model.bin"
    s3.client().put_object(Bucket=bucket, Key=key, Body=data)
    name = f"{MODEL}-v{version}"
    api.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": {
                "model": MODEL,
                "version": version,
                "artifact": {
                    "uri": f"s3://{bucket}/{key}",
                    "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                },
            },
        }
    )

    def ready() -> bool:
        conditions = api.get("modelversions", name).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_for(ready, TIMEOUT, f"{name} Ready")
    return name


def stage_manifest(
    stage: str,
    version: int,
    *,
    gates: dict[str, Any] | None = None,
    template: dict[str, Any] | None = None,
    rollback: str = "automatic",
    replicas: int = 2,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": MODEL,
        "stage": stage,
        "version": version,
        "serving": {
            "replicas": replicas,
            "progressDeadlineSeconds": DEADLINE,
            "rollback": rollback,
            "template": template or TEMPLATE,
        },
    }
    if gates is not None:
        spec["gates"] = gates
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelStage",
        "metadata": {"name": f"{MODEL}-{stage.lower()}"},
        "spec": spec,
    }


def never_ready_template() -> dict[str, Any]:
    return {**TEMPLATE, "metadata": {"labels": {"app": "churn-server", NEVER_READY_LABEL: "true"}}}


# -- waiting --------------------------------------------------------------------------------


def condition(stage: ModelStage, type_: str) -> tuple[str, str] | None:
    found = find_condition(stage.status.conditions if stage.status else None, type_)
    return (found.status, found.reason) if found else None


def wait_live(api: Api, name: str, version: int, timeout: float = TIMEOUT) -> ModelStage:
    """Waits until `version` is live, rolled out and Ready at the current generation."""

    def check() -> ModelStage | None:
        stage = api.stage(name)
        status = stage.status
        if status is None or status.observed_generation != stage.metadata.generation:
            return None
        if status.live_version != version or condition(stage, ConditionType.READY) != (
            "True",
            Reason.ROLLOUT_COMPLETE,
        ):
            return None
        return stage

    return wait_for(check, timeout, f"version {version} live in {name}")


def wait_rollout(api: Api, name: str, phase: str, timeout: float = TIMEOUT) -> ModelStage:
    def check() -> ModelStage | None:
        stage = api.stage(name)
        rollout = stage.status.rollout if stage.status else None
        current = stage.status.observed_generation == stage.metadata.generation  # type: ignore[union-attr]
        return stage if rollout is not None and rollout.phase == phase and current else None

    return wait_for(check, timeout, f"rollout {phase} in {name}", ignore=(AttributeError,))


def history(stage: ModelStage) -> list[tuple[int, int | None, str]]:
    return [(e.version, e.from_version, e.result) for e in (stage.status.history or [])]  # type: ignore[union-attr]


def metric(text: str, name: str, **labels: str) -> float:
    """The value of the sample of `name` with exactly `labels` in Prometheus text, 0 if absent."""
    for line in text.splitlines():
        found = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if found is None or found.group(1) != name:
            continue
        pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', found.group(2) or ""))
        if pairs == labels:
            return float(found.group(3))
    return 0.0


def report(test: str, **seconds: float) -> None:
    steps = ", ".join(f"{step} {value:.1f}s" for step, value in seconds.items())
    print(f"\n[timings] {test}: {steps}")


# -- tests ----------------------------------------------------------------------------------


def test_promotes_version_1_to_staging_then_production_and_version_2_once_it_soaked(
    api: Api, s3: Any, bucket: str, operator: Any
) -> None:
    """v1 goes live in Staging, then in Production (which requires Staging); v2, live in
    Staging, is held for Production until it has been live there for minDuration, then goes."""
    register_version(api, s3, bucket, 1)
    register_version(api, s3, bucket, 2)
    promotions = metric(
        operator.metrics(),
        "modelplane_promotions_total",
        model=MODEL,
        stage="Production",
        result="Succeeded",
    )

    started = time.monotonic()
    api.apply(stage_manifest("Staging", 1))
    wait_for(lambda: api.served_version("churn-staging") == "1", TIMEOUT, "Deployment of v1")
    created = time.monotonic() - started
    staging = wait_live(api, "churn-staging", 1)
    live = time.monotonic() - started

    deployment = api.deployment("churn-staging")
    pod = deployment.spec.template
    env = {item.name: item.value for item in pod.spec.containers[0].env}
    assert env["MODEL_NAME"] == MODEL
    assert env["MODEL_VERSION"] == "1"
    assert env["MODEL_URI"] == f"s3://{bucket}/{MODEL}/1/model.bin"
    assert env["LOG_LEVEL"] == "info"
    assert env["MODEL_DIGEST"].startswith("sha256:")
    assert pod.metadata.annotations["modelplane.io/model-version"] == "1"
    assert pod.metadata.labels["app"] == "churn-server"
    assert deployment.spec.selector.match_labels == {
        "modelplane.io/model": MODEL,
        "modelplane.io/stage": "Staging",
    }
    [owner] = deployment.metadata.owner_references
    assert (owner.kind, owner.name, owner.controller) == ("ModelStage", "churn-staging", True)
    status = staging.status
    assert status is not None
    assert status.rollout is not None
    assert status.rollout.phase == "Complete"
    assert status.rollout.deployment == "churn-staging"
    assert status.rollout.available_replicas == 2
    assert status.live_since is not None
    assert condition(staging, ConditionType.ROLLED_OUT) == ("True", Reason.ROLLOUT_COMPLETE)
    assert condition(staging, ConditionType.RECONCILING) is None
    assert history(staging) == [(1, None, "Succeeded")]
    wait_for(lambda: api.events("ModelStage", "churn-staging", "Promoted"), 10, "Event")
    wait_for(lambda: api.events("ModelVersion", "churn-v1", "Promoted"), 10, "Event")

    production_gates = {"requireStage": {"name": "Staging"}}
    api.apply(stage_manifest("Production", 1, gates=production_gates))
    production = wait_live(api, "churn-production", 1)
    assert production.status is not None
    assert production.status.gates_summary == "1/1"
    assert condition(production, ConditionType.GATES_PASSED) == ("True", Reason.GATES_PASSED)
    wait_for(
        lambda: (
            api.get("modelversions", "churn-v1").get("status", {}).get("stages")
            == ["Production", "Staging"]
        ),
        TIMEOUT,
        "churn-v1 listing both stages",
    )

    # Version 2: live in Staging, then applied to Production, which requires it to have been
    # live there for a while. Admission lets time cure that; the operator holds the promotion
    # and its timer lets it through once the time has passed.
    api.apply(stage_manifest("Staging", 2))
    wait_live(api, "churn-staging", 2)
    started = time.monotonic()
    soaked = {"requireStage": {"name": "Staging", "minDuration": f"{SOAK}s"}}
    api.apply(stage_manifest("Production", 2, gates=soaked))
    held = wait_for(
        lambda: (
            condition(api.stage("churn-production"), ConditionType.GATES_PASSED)
            == ("False", Reason.REQUIRED_STAGE_NOT_MET)
        ),
        TIMEOUT,
        "Production holding v2 until it soaked in Staging",
    )
    assert held
    assert api.served_version("churn-production") == "1"
    production = wait_live(api, "churn-production", 2, timeout=SOAK + RECHECK + TIMEOUT)
    followed = time.monotonic() - started

    assert production.status is not None
    assert production.status.previous_version == 1
    assert api.served_version("churn-production") == "2"
    assert history(production) == [(1, None, "Succeeded"), (2, 1, "Rejected"), (2, 1, "Succeeded")]
    assert condition(production, ConditionType.STALLED) is None
    after = metric(
        operator.metrics(),
        "modelplane_promotions_total",
        model=MODEL,
        stage="Production",
        result="Succeeded",
    )
    assert after == promotions + 2
    live_gauge = metric(
        operator.metrics(),
        "modelplane_live_version",
        namespace=api.namespace,
        model=MODEL,
        stage="Production",
    )
    assert live_gauge == 2
    report(
        "staging v1",
        apply_to_deployment=created,
        apply_to_live=live,
    )
    report("production v2 soaked in staging", apply_to_live=followed)


def test_a_gitops_change_to_a_version_failing_its_gates_is_held_in_status(
    api: Api, s3: Any, bucket: str, operator: Any
) -> None:
    """A change admission let through (a required stage only needs time; a gate added later is
    not checked at admission at all) is held by the operator: it says why, records the rejection
    once per generation, keeps serving the live version, and goes ahead once the gates pass.

    Works with the admission webhook on or off: admission checks gates only when spec.version
    changes, and lets time cure a required stage."""
    register_version(api, s3, bucket, 1)
    register_version(api, s3, bucket, 2)
    api.apply(stage_manifest("Staging", 2))
    api.apply(stage_manifest("Production", 1))
    wait_live(api, "churn-staging", 2)
    wait_live(api, "churn-production", 1)
    metrics_before = operator.metrics()

    def failures(text: str, gate: str) -> float:
        return metric(
            text, "modelplane_gate_failures_total", model=MODEL, stage="Production", gate=gate
        )

    soaked = {"requireStage": {"name": "Staging", "minDuration": "1h"}}
    api.apply(stage_manifest("Production", 2, gates=soaked))

    def held(reason: str) -> ModelStage | None:
        stage = api.stage("churn-production")
        current = stage.status is not None and (
            stage.status.observed_generation == stage.metadata.generation
        )
        return (
            stage
            if current and condition(stage, ConditionType.STALLED) == ("True", reason)
            else None
        )

    stage = wait_for(lambda: held(Reason.REQUIRED_STAGE_NOT_MET), TIMEOUT, "v2 held for Staging")
    status = stage.status
    assert status is not None
    assert status.gates_version == 2
    assert status.gates_summary == "0/1"
    [result] = status.gates or []
    assert (result.type, result.name, result.passed) == ("Stage", "Staging", False)
    assert condition(stage, ConditionType.GATES_PASSED) == ("False", Reason.REQUIRED_STAGE_NOT_MET)
    assert condition(stage, ConditionType.READY) == ("False", Reason.REQUIRED_STAGE_NOT_MET)
    assert status.live_version == 1
    assert stage.spec.version == 2
    assert history(stage) == [(1, None, "Succeeded"), (2, 1, "Rejected")]
    assert api.served_version("churn-production") == "1"
    wait_for(
        lambda: api.events("ModelStage", "churn-production", Reason.REQUIRED_STAGE_NOT_MET),
        10,
        "Warning Event",
    )
    assert failures(operator.metrics(), "Staging") == failures(metrics_before, "Staging") + 1

    # Looked at again (an event, a crash and restart, time passing): nothing new is recorded,
    # and the status is not rewritten although the time in Staging grows.
    api.custom.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        api.namespace,
        "modelstages",
        "churn-production",
        {"metadata": {"annotations": {"example.com/poke": "1"}}},
    )
    operator.restart(kill=True)
    time.sleep(2)
    version = api.get("modelstages", "churn-production")["metadata"]["resourceVersion"]
    holds_for(
        lambda: (
            api.get("modelstages", "churn-production")["metadata"]["resourceVersion"] == version
        ),
        5,
        "no status rewrite while held",
    )
    assert history(api.stage("churn-production")) == [(1, None, "Succeeded"), (2, 1, "Rejected")]

    # A metric gate added later is not checked at admission; the operator finds the metric
    # missing and records a rejection for the new generation.
    gated = {**soaked, "metrics": [{"name": "test_auc", "op": ">=", "value": 0.8}]}
    api.apply(stage_manifest("Production", 2, gates=gated))
    stage = wait_for(lambda: held(Reason.GATE_FAILED), TIMEOUT, "v2 held by a metric gate")
    assert stage.status is not None
    assert stage.status.gates_summary == "0/2"
    assert history(stage) == [(1, None, "Succeeded"), (2, 1, "Rejected"), (2, 1, "Rejected")]
    assert failures(operator.metrics(), "test_auc") == failures(metrics_before, "test_auc") + 1
    assert api.served_version("churn-production") == "1"

    # The gates are relaxed (a spec change): v2 goes live.
    api.apply(stage_manifest("Production", 2, gates={"requireStage": {"name": "Staging"}}))
    stage = wait_live(api, "churn-production", 2)
    assert history(stage)[-1] == (2, 1, "Succeeded")
    assert stage.status is not None
    assert stage.status.gates_summary == "1/1"
    assert api.served_version("churn-production") == "2"


def test_a_failed_rollout_rolls_back_to_the_last_good_version_without_touching_spec(
    api: Api, s3: Any, bucket: str, operator: Any
) -> None:
    """v2 ships with a template whose pods never get Ready: after the progress deadline the
    Deployment serves v1 again, spec.version stays 2, and v2 is not retried in a loop."""
    register_version(api, s3, bucket, 1)
    register_version(api, s3, bucket, 2)
    api.apply(stage_manifest("Production", 1))
    wait_live(api, "churn-production", 1)
    rollbacks = metric(
        operator.metrics(), "modelplane_rollbacks_total", model=MODEL, stage="Production"
    )

    started = time.monotonic()
    api.apply(stage_manifest("Production", 2, template=never_ready_template()))
    wait_for(lambda: api.served_version("churn-production") == "2", TIMEOUT, "v2 rolling")
    rolling = time.monotonic() - started
    stage = wait_rollout(api, "churn-production", "RolledBack", timeout=DEADLINE + TIMEOUT)
    rolled_back = time.monotonic() - started

    assert stage.spec.version == 2, "the operator never writes spec"
    status = stage.status
    assert status is not None
    assert status.live_version == 1
    assert status.rollout is not None
    assert status.rollout.version == 2
    assert "ProgressDeadlineExceeded" in (status.rollout.message or "")
    assert condition(stage, ConditionType.ROLLED_OUT) == ("False", Reason.ROLLED_BACK)
    assert condition(stage, ConditionType.READY) == ("False", Reason.ROLLED_BACK)
    assert condition(stage, ConditionType.STALLED) == ("True", Reason.ROLLED_BACK)
    assert history(stage) == [(1, None, "Succeeded"), (2, 1, "RolledBack")]
    wait_for(lambda: api.events("ModelStage", "churn-production", Reason.ROLLED_BACK), 10, "Event")
    wait_for(lambda: api.served_version("churn-production") == "1", TIMEOUT, "v1 back")
    labels = api.deployment("churn-production").spec.template.metadata.labels
    assert NEVER_READY_LABEL not in labels, "the good template is back, not v1 in the bad one"
    wait_for(
        lambda: (api.deployment("churn-production").status.available_replicas or 0) == 2,
        TIMEOUT,
        "v1 serving on every replica",
    )
    assert (
        metric(operator.metrics(), "modelplane_rollbacks_total", model=MODEL, stage="Production")
        == rollbacks + 1
    )

    # Not retried: neither by a later look nor after a crash.
    operator.restart(kill=True)
    holds_for(
        lambda: (
            api.served_version("churn-production") == "1"
            and history(api.stage("churn-production"))
            == [(1, None, "Succeeded"), (2, 1, "RolledBack")]
        ),
        DEADLINE / 2,
        "v1 kept after the rollback",
    )
    assert api.stage("churn-production").spec.version == 2
    report("failed v2", apply_to_deployment=rolling, apply_to_rolled_back=rolled_back)

    # Going back in Git (spec.version 1 with the old template) makes the stage Ready again.
    api.apply(stage_manifest("Production", 1))
    stage = wait_live(api, "churn-production", 1)
    assert condition(stage, ConditionType.STALLED) is None


def test_manual_rollback_policy_leaves_a_failed_rollout_for_a_person(
    api: Api, s3: Any, bucket: str
) -> None:
    register_version(api, s3, bucket, 1)
    register_version(api, s3, bucket, 2)
    api.apply(stage_manifest("Production", 1, rollback="manual"))
    wait_live(api, "churn-production", 1)
    api.apply(stage_manifest("Production", 2, template=never_ready_template(), rollback="manual"))
    stage = wait_rollout(api, "churn-production", "Failed", timeout=DEADLINE + TIMEOUT)
    assert condition(stage, ConditionType.STALLED) == ("True", Reason.PROGRESS_DEADLINE_EXCEEDED)
    assert history(stage)[-1] == (2, 1, "Failed")
    assert stage.status is not None
    assert stage.status.live_version == 1
    assert api.served_version("churn-production") == "2"


def test_modelplane_rollback_sets_spec_version_to_the_previous_version_and_it_rolls(
    api: Api, s3: Any, bucket: str, capsys: Any
) -> None:
    def modelplane(*args: str) -> int:
        return cli([*args, "-n", api.namespace, "--kubeconfig", str(api.cluster.kubeconfig)])

    register_version(api, s3, bucket, 1)
    register_version(api, s3, bucket, 2)
    api.apply(stage_manifest("Production", 1))
    wait_live(api, "churn-production", 1)
    assert modelplane("rollback", MODEL, "Production") == 1
    assert "has no previous version" in capsys.readouterr().err

    assert modelplane("promote", MODEL, "Production", "2", "--wait", "60") == 0
    stage = wait_live(api, "churn-production", 2)
    assert stage.status is not None
    assert stage.status.previous_version == 1

    started = time.monotonic()
    assert modelplane("rollback", MODEL, "Production") == 0
    assert "spec.version 2 -> 1 (rollback)" in capsys.readouterr().out
    assert api.stage("churn-production").spec.version == 1
    stage = wait_live(api, "churn-production", 1)
    report("modelplane rollback", command_to_live=time.monotonic() - started)
    assert api.served_version("churn-production") == "1"
    assert stage.status is not None
    assert stage.status.previous_version == 2
    assert history(stage) == [(1, None, "Succeeded"), (2, 1, "Succeeded"), (1, 2, "Succeeded")]

    # The replaced version keeps its history and can be promoted again.
    assert modelplane("promote", MODEL, "Production", "2", "--wait", "60") == 0
    assert history(wait_live(api, "churn-production", 2))[-1] == (2, 1, "Succeeded")


def test_an_operator_killed_mid_rollout_finishes_it_without_duplicate_history(
    api: Api, s3: Any, bucket: str, operator: Any
) -> None:
    register_version(api, s3, bucket, 1)
    register_version(api, s3, bucket, 2)
    api.apply(stage_manifest("Production", 1, replicas=4))
    wait_live(api, "churn-production", 1)

    api.apply(stage_manifest("Production", 2, replicas=4))
    wait_for(lambda: api.served_version("churn-production") == "2", TIMEOUT, "v2 rolling")
    operator.stop(kill=True)
    mid = api.stage("churn-production")
    assert mid.status is not None
    assert mid.status.live_version == 1, "killed before the rollout was recorded complete"
    time.sleep(2)
    operator.start()

    stage = wait_live(api, "churn-production", 2)
    assert history(stage) == [(1, None, "Succeeded"), (2, 1, "Succeeded")]
    # Events are posted once the status is written; let them go out before the next crash.
    wait_for(lambda: api.events("ModelVersion", "churn-v2", "Promoted"), 10, "Event")
    operator.restart(kill=True)
    holds_for(
        lambda: (
            history(api.stage("churn-production")) == [(1, None, "Succeeded"), (2, 1, "Succeeded")]
        ),
        3,
        "history unchanged after another restart",
    )
    assert len(api.events("ModelVersion", "churn-v2", "Promoted")) == 1


def test_serving_that_cannot_be_built_or_is_refused_is_reported_not_retried(
    api: Api, s3: Any, bucket: str, operator: Any
) -> None:
    """A pod template the API server refuses (a container without an image) ends as a Failed
    rollout with the API server's words; fixing the template rolls it. An artifact fetch the
    operator has no image for is reported as Stalled. The operator lives on."""
    register_version(api, s3, bucket, 1)
    broken = {"spec": {"containers": [{"name": "server"}]}}
    api.apply(stage_manifest("Production", 1, template=broken))
    stage = wait_rollout(api, "churn-production", "Failed")
    assert condition(stage, ConditionType.STALLED) == ("True", Reason.INVALID_SPEC)
    assert stage.status is not None
    assert stage.status.rollout is not None
    assert "image" in (stage.status.rollout.message or "")
    assert history(stage) == [(1, None, "Failed")]
    assert api.deployment("churn-production") is None

    api.apply(stage_manifest("Production", 1))
    wait_live(api, "churn-production", 1)

    fetching = stage_manifest("Production", 1)
    fetching["metadata"]["annotations"] = {"modelplane.io/fetch-artifact": "true"}
    api.apply(fetching)

    def stalled() -> bool:
        stage = api.stage("churn-production")
        found = find_condition(stage.status.conditions if stage.status else None, "Stalled")
        return found is not None and "MODELPLANE_FETCH_IMAGE" in found.message

    wait_for(stalled, TIMEOUT, "Stalled naming MODELPLANE_FETCH_IMAGE")
    assert api.served_version("churn-production") == "1", "the live version serves on"
    assert operator.alive()
