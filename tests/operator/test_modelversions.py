"""ModelVersion reconciliation against a real API server, MinIO and the operator process.

Each test works in a fresh namespace and bucket. The operator is shared by the session, so
metric checks compare values before and after rather than absolute numbers. The last tests
drive a scheduled look in-process with an unreachable store: the shared MinIO is never
stopped.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from tests.kubeobjects import NamespacedObjects
from tests.waiting import holds_for, wait_for

from modelplane.api import GROUP, VERSION, ArtifactRef, ModelVersion
from modelplane.core.artifacts import StoreOutage
from modelplane.core.conditions import ConditionType, Reason, set_condition
from modelplane.core.modelversions import Notice
from modelplane.core.rechecks import Rechecks
from modelplane.operator import artifactchecks, versionlooks, versionreconciling
from modelplane.store import Manifest, ManifestEntry

pytestmark = pytest.mark.cluster

COMMIT = "392bc3103b9fd91a9297077266a0a1ece4592d88"
DATA_DIGEST = "md5:" + "1" * 32
IMAGE = "registry.example.com/churn@sha256:" + "e" * 64
FINALIZER = "modelplane.io/referenced-by-model-version"
METRICS = {
    "val_auc": {"last": 0.87, "step": 99, "min": 0.61, "max": 0.88, "count": 100},
    "loss": {"last": 0.21, "step": 99, "min": 0.2, "max": 0.9, "count": 100},
}
# Verification happens on the first scheduled look (within a second of the first event);
# everything else on watch events.
TIMEOUT = 45


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Api(NamespacedObjects):
    """Typed-enough access to the test cluster's objects and Events."""

    def create(self, plural: str, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)

    def patch_status(self, plural: str, name: str, status: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, self.namespace, plural, name, {"status": status}
        )

    def events(self, kind: str, name: str) -> list[Any]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        return list(self.core.list_namespaced_event(self.namespace, field_selector=selector).items)

    def event(self, kind: str, name: str, reason: str) -> Any:
        """The first Event of `reason` on the object, or None."""
        return next((e for e in self.events(kind, name) if e.reason == reason), None)

    def version(self, name: str) -> ModelVersion:
        obj = self.get("modelversions", name)
        assert obj is not None, f"ModelVersion {name} is gone"
        return ModelVersion.from_object(obj)


@pytest.fixture
def api(cluster: Any, namespace: str, operator: Any) -> Iterator[Api]:
    yield Api(cluster, namespace)
    assert operator.alive(), f"the operator died:\n{operator.log()[-3000:]}"


def run_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Run",
        "metadata": {"name": name},
        "spec": {
            "experiment": "churn-prediction",
            "params": {"learning_rate": "0.05", "max_depth": "6"},
            "code": {
                "repository": "https://git.example.com/ml/churn.git",
                "commit": COMMIT,
                "path": "train.py",
            },
            "data": [
                {"name": "train", "uri": "s3://datasets/churn/train.pq", "digest": DATA_DIGEST}
            ],
            "environment": {"image": IMAGE, "python": "3.11.7"},
        },
    }


def make_run(api: Api, name: str, phase: str | None = "Finished") -> None:
    api.create("runs", run_manifest(name))
    if phase is not None:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status: dict[str, Any] = {"phase": phase, "metrics": METRICS, "startTime": now}
        status["heartbeatTime" if phase == "Running" else "endTime"] = now
        api.patch_status("runs", name, status)


def make_version(
    api: Api, model: str, version: int, uri: str, digest: str, *, run: str | None = None
) -> str:
    name = f"{model}-v{version}"
    spec: dict[str, Any] = {
        "model": model,
        "version": version,
        "artifact": {"uri": uri, "digest": digest},
    }
    if run is not None:
        spec["run"] = run
    api.create(
        "modelversions",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": spec,
        },
    )
    return name


def condition(api: Api, name: str, type_: str) -> tuple[str, str, str] | None:
    """(status, reason, message) of a condition of a ModelVersion, or None."""
    version = api.version(name)
    for found in (version.status.conditions or []) if version.status else []:
        if found.type == type_:
            return found.status, found.reason, found.message
    return None


def wait_condition(api: Api, name: str, type_: str, status: str, reason: str | None = None) -> str:
    """Waits for the condition and returns its message."""

    def check() -> str | None:
        found = condition(api, name, type_)
        if found is None or found[0] != status or (reason is not None and found[1] != reason):
            return None
        return found[2] or "(no message)"

    return wait_for(check, TIMEOUT, f"{name} {type_}={status} {reason or ''}")


def request_verification(api: Api, name: str) -> None:
    value = secrets.token_hex(4)
    api.patch(
        "modelversions",
        name,
        {"metadata": {"annotations": {"modelplane.io/verify-requested": value}}},
    )


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format, 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if wanted else "") + r" (\S+)"
    found = re.search(rf"^{pattern}$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_records_the_lineage_and_verifies_a_correct_artifact(
    api: Api, s3: Any, bucket: str, operator: Any
) -> None:
    """A finished run's lineage is copied and a matching file verifies: Ready, size, digest."""
    data = b"gradient boosted trees" * 1000
    s3.client().put_object(Bucket=bucket, Key="churn/1/model.pkl", Body=data)
    bytes_before = metric(operator.metrics(), "modelplane_artifact_bytes_verified_total")
    make_run(api, "xgb-001")
    name = make_version(
        api, "churn", 1, f"s3://{bucket}/churn/1/model.pkl", sha256(data), run="xgb-001"
    )

    wait_condition(api, name, ConditionType.READY, "True")
    version = api.version(name)
    run = api.get("runs", "xgb-001")
    assert run is not None
    status = version.status
    assert status is not None
    assert status.observed_generation == version.metadata.generation
    assert status.artifact is not None
    assert status.artifact.verified is True
    assert status.artifact.size == len(data)
    assert status.artifact.digest == sha256(data)
    assert status.artifact.verified_at is not None

    lineage = status.lineage
    assert lineage is not None
    assert lineage.run == "xgb-001"
    assert lineage.experiment == run["spec"]["experiment"]
    assert lineage.params == run["spec"]["params"]
    assert lineage.code is not None
    assert lineage.code.to_dict() == {**run["spec"]["code"], "dirty": False}
    assert [d.to_dict() for d in lineage.data or []] == run["spec"]["data"]
    assert lineage.environment is not None
    assert lineage.environment.to_dict() == run["spec"]["environment"]
    assert {k: v.to_dict() for k, v in (lineage.metrics or {}).items()} == run["status"]["metrics"]
    assert lineage.recorded_at is not None
    assert condition(api, name, ConditionType.LINEAGE_RECORDED)[:2] == (  # type: ignore[index]
        "True",
        Reason.LINEAGE_RECORDED,
    )

    assert wait_for(lambda: api.event("ModelVersion", name, Reason.ARTIFACT_VERIFIED), 10, "Event")
    assert api.event("ModelVersion", name, Reason.LINEAGE_RECORDED) is not None
    assert FINALIZER in run["metadata"]["finalizers"]
    bytes_after = metric(operator.metrics(), "modelplane_artifact_bytes_verified_total")
    assert bytes_after >= bytes_before + len(data)


def test_verifies_a_directory_artifact_by_its_manifest_digest(
    api: Api, s3: Any, bucket: str
) -> None:
    """A prefix of files verifies against the manifest digest and reports the total size."""
    files = {"model.pkl": b"abc", "conf/params.json": b'{"depth": 6}'}
    for path, data in files.items():
        s3.client().put_object(Bucket=bucket, Key=f"churn/2/{path}", Body=data)
    manifest = Manifest.build(
        ManifestEntry(path, len(data), hashlib.sha256(data).hexdigest())
        for path, data in files.items()
    )
    name = make_version(api, "churn", 2, f"s3://{bucket}/churn/2/", str(manifest.digest))

    wait_condition(api, name, ConditionType.READY, "True")
    artifact = api.version(name).status.artifact  # type: ignore[union-attr]
    assert artifact is not None
    assert artifact.size == sum(len(data) for data in files.values())
    assert artifact.digest == str(manifest.digest)
    # No run named: no lineage and no LineageRecorded condition hold it back.
    assert condition(api, name, ConditionType.LINEAGE_RECORDED) is None

    # The description may change; status then reports the new generation, still Ready.
    api.patch("modelversions", name, {"spec": {"description": "two files"}})
    wait_for(
        lambda: (
            api.version(name).status.observed_generation  # type: ignore[union-attr]
            == api.version(name).metadata.generation
        ),
        TIMEOUT,
        "observedGeneration of the edited version",
    )
    assert api.version(name).metadata.generation == 2
    assert condition(api, name, ConditionType.READY)[0] == "True"  # type: ignore[index]


def test_detects_a_tampered_artifact_and_verifies_it_once_fixed(
    api: Api, s3: Any, bucket: str, operator: Any
) -> None:
    """Changed bytes under the same key are a mismatch naming both digests; a fix recovers."""
    good, bad = b"the model we registered", b"the model someone swapped in"
    key, uri = "churn/3/model.pkl", f"s3://{bucket}/churn/3/model.pkl"
    s3.client().put_object(Bucket=bucket, Key=key, Body=good)
    name = make_version(api, "churn", 3, uri, sha256(good))
    wait_condition(api, name, ConditionType.ARTIFACT_VERIFIED, "True")
    failures = metric(
        operator.metrics(),
        "modelplane_artifact_verification_failures_total",
        reason="DigestMismatch",
    )

    s3.client().put_object(Bucket=bucket, Key=key, Body=bad)
    request_verification(api, name)
    message = wait_condition(
        api, name, ConditionType.ARTIFACT_VERIFIED, "False", Reason.DIGEST_MISMATCH
    )
    assert f"expected {sha256(good)}" in message
    assert f"got {sha256(bad)}" in message
    ready = condition(api, name, ConditionType.READY)
    assert ready is not None
    assert ready[:2] == ("False", Reason.DIGEST_MISMATCH)
    assert condition(api, name, ConditionType.STALLED) is not None
    artifact = api.version(name).status.artifact  # type: ignore[union-attr]
    assert artifact is not None
    assert artifact.verified is False
    assert artifact.digest == sha256(bad)
    warning = wait_for(
        lambda: api.event("ModelVersion", name, Reason.DIGEST_MISMATCH), 10, "mismatch Event"
    )
    assert warning.type == "Warning"
    assert sha256(bad) in warning.message
    after = metric(
        operator.metrics(),
        "modelplane_artifact_verification_failures_total",
        reason="DigestMismatch",
    )
    assert after >= failures + 1

    s3.client().put_object(Bucket=bucket, Key=key, Body=good)
    request_verification(api, name)
    wait_condition(api, name, ConditionType.READY, "True")
    assert condition(api, name, ConditionType.STALLED) is None


def test_a_missing_artifact_and_a_missing_run_end_in_conditions_and_events(
    api: Api, bucket: str
) -> None:
    """Nothing at the URI and no such run: conditions and Events say so; the run may come later."""
    uri = f"s3://{bucket}/nothing/here.pkl"
    name = make_version(api, "churn", 4, uri, sha256(b"x"), run="not-yet")

    message = wait_condition(
        api, name, ConditionType.ARTIFACT_VERIFIED, "False", Reason.ARTIFACT_NOT_FOUND
    )
    assert uri in message
    run_message = wait_condition(
        api, name, ConditionType.LINEAGE_RECORDED, "False", Reason.RUN_NOT_FOUND
    )
    assert "not-yet" in run_message
    ready = condition(api, name, ConditionType.READY)
    assert ready is not None
    assert ready[0] == "False"
    assert condition(api, name, ConditionType.STALLED) is not None
    for reason in (Reason.ARTIFACT_NOT_FOUND, Reason.RUN_NOT_FOUND):
        event = wait_for(lambda r=reason: api.event("ModelVersion", name, r), 10, reason)
        assert event.type == "Warning"

    make_run(api, "not-yet")
    wait_condition(api, name, ConditionType.LINEAGE_RECORDED, "True")
    assert api.version(name).status.lineage.run == "not-yet"  # type: ignore[union-attr]
    wait_for(
        lambda: FINALIZER in (api.get("runs", "not-yet") or {})["metadata"].get("finalizers", []),
        10,
        "the finalizer on the run that appeared",
    )


def test_a_running_run_is_recorded_when_it_finishes(api: Api, s3: Any, bucket: str) -> None:
    """While the run runs the lineage is provisional and not Ready; it is retaken at the end."""
    s3.client().put_object(Bucket=bucket, Key="m.pkl", Body=b"m")
    make_run(api, "still-training", phase="Running")
    name = make_version(api, "churn", 5, f"s3://{bucket}/m.pkl", sha256(b"m"), run="still-training")

    wait_condition(api, name, ConditionType.LINEAGE_RECORDED, "False", Reason.RUN_RUNNING)
    wait_condition(api, name, ConditionType.ARTIFACT_VERIFIED, "True")
    assert condition(api, name, ConditionType.READY)[:2] == (  # type: ignore[index]
        "False",
        Reason.RUN_RUNNING,
    )
    provisional = api.version(name).status.lineage  # type: ignore[union-attr]
    assert provisional is not None
    assert provisional.experiment == "churn-prediction"

    final = {"val_auc": {"last": 0.91, "step": 199, "min": 0.61, "max": 0.91, "count": 200}}
    api.patch_status("runs", "still-training", {"phase": "Finished", "metrics": final})
    wait_condition(api, name, ConditionType.READY, "True")
    metrics = api.version(name).status.lineage.metrics  # type: ignore[union-attr]
    assert metrics is not None
    assert metrics["val_auc"].last == 0.91
    assert metrics["val_auc"].count == 200


def test_deleting_a_referenced_run_waits_for_its_model_versions(
    api: Api, s3: Any, bucket: str
) -> None:
    """A run named by two versions stays Terminating, with an Event, until both are gone."""
    s3.client().put_object(Bucket=bucket, Key="m.pkl", Body=b"m")
    make_run(api, "parent-run")
    first = make_version(api, "churn", 6, f"s3://{bucket}/m.pkl", sha256(b"m"), run="parent-run")
    second = make_version(api, "churn", 7, f"s3://{bucket}/m.pkl", sha256(b"m"), run="parent-run")
    wait_for(
        lambda: (
            FINALIZER in (api.get("runs", "parent-run") or {})["metadata"].get("finalizers", [])
        ),
        TIMEOUT,
        "our finalizer on the run",
    )

    api.delete("runs", "parent-run")
    event = wait_for(
        lambda: api.event("Run", "parent-run", "DeletionBlocked"), TIMEOUT, "DeletionBlocked"
    )
    assert event.type == "Warning"
    assert first in event.message
    assert second in event.message
    run = api.get("runs", "parent-run")
    assert run is not None
    assert run["metadata"].get("deletionTimestamp")

    api.delete("modelversions", first)
    holds_for(lambda: api.get("runs", "parent-run") is not None, 3, "the run kept by a version")
    api.delete("modelversions", second)
    wait_for(lambda: api.get("runs", "parent-run") is None, TIMEOUT, "the run deleted")


def test_a_run_no_longer_referenced_loses_the_finalizer(api: Api, s3: Any, bucket: str) -> None:
    """Deleting the only version releases the run, which then deletes at once."""
    s3.client().put_object(Bucket=bucket, Key="m.pkl", Body=b"m")
    make_run(api, "released")
    name = make_version(api, "churn", 8, f"s3://{bucket}/m.pkl", sha256(b"m"), run="released")

    def finalizers() -> list[str]:
        run = api.get("runs", "released")
        assert run is not None
        return list(run["metadata"].get("finalizers", []))

    wait_for(lambda: FINALIZER in finalizers(), TIMEOUT, "our finalizer on the run")
    api.delete("modelversions", name)
    wait_for(lambda: FINALIZER not in finalizers(), TIMEOUT, "our finalizer removed")
    api.delete("runs", "released")
    wait_for(lambda: api.get("runs", "released") is None, TIMEOUT, "the run deleted")


def test_stages_list_where_the_version_is_live(api: Api, s3: Any, bucket: str) -> None:
    """status.stages follows the ModelStages' live versions, and clears when a stage goes."""
    s3.client().put_object(Bucket=bucket, Key="m.pkl", Body=b"m")
    v1 = make_version(api, "fraud", 1, f"s3://{bucket}/m.pkl", sha256(b"m"))
    v2 = make_version(api, "fraud", 2, f"s3://{bucket}/m.pkl", sha256(b"m"))
    wait_condition(api, v1, ConditionType.READY, "True")
    wait_condition(api, v2, ConditionType.READY, "True")

    def stages(name: str) -> list[str]:
        status = api.version(name).status
        return list(status.stages or []) if status else []

    api.create(
        "modelstages",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelStage",
            "metadata": {"name": "fraud-production"},
            "spec": {"model": "fraud", "stage": "Production", "version": 1},
        },
    )
    # Stands in for the ModelStage handler, which sets the live version after a rollout.
    api.patch_status("modelstages", "fraud-production", {"liveVersion": 1})
    wait_for(lambda: stages(v1) == ["Production"], TIMEOUT, "v1 live in Production")
    assert stages(v2) == []

    api.patch("modelstages", "fraud-production", {"spec": {"version": 2}})
    api.patch_status("modelstages", "fraud-production", {"liveVersion": 2})
    wait_for(lambda: stages(v2) == ["Production"], TIMEOUT, "v2 live in Production")
    wait_for(lambda: stages(v1) == [], TIMEOUT, "v1 no longer live")

    api.delete("modelstages", "fraud-production")
    wait_for(lambda: stages(v2) == [], TIMEOUT, "no stage once the ModelStage is gone")


def test_bad_objects_do_not_stop_the_operator(
    api: Api, s3: Any, bucket: str, operator: Any
) -> None:
    """Unverifiable references get a verdict each, and a good version next to them is Ready."""
    gs = make_version(api, "odd", 1, "gs://models/odd/1/", sha256(b"x"))
    no_bucket = make_version(api, "odd", 2, "s3://no-such-bucket-here/m.pkl", sha256(b"x"))
    s3.client().put_object(Bucket=bucket, Key="good.pkl", Body=b"good")
    good = make_version(api, "odd", 3, f"s3://{bucket}/good.pkl", sha256(b"good"))

    wait_condition(api, good, ConditionType.READY, "True")
    message = wait_condition(api, gs, ConditionType.ARTIFACT_VERIFIED, "False", "InvalidReference")
    assert "gs://" in message
    message = wait_condition(
        api, no_bucket, ConditionType.ARTIFACT_VERIFIED, "False", Reason.ARTIFACT_NOT_FOUND
    )
    assert "no-such-bucket-here" in message
    assert operator.alive()


def test_converges_after_a_crash_and_changes_made_while_down(
    api: Api, s3: Any, bucket: str, operator: Any
) -> None:
    """After a restart, missed creations and deletions are caught up; verdicts are not redone."""
    s3.client().put_object(Bucket=bucket, Key="m.pkl", Body=b"m")
    uri = f"s3://{bucket}/m.pkl"
    make_run(api, "kept-run")
    make_run(api, "orphaned-run")
    verified = make_version(api, "crash", 1, uri, sha256(b"m"), run="kept-run")
    doomed = make_version(api, "crash", 2, uri, sha256(b"m"), run="orphaned-run")
    wait_condition(api, verified, ConditionType.READY, "True")
    wait_condition(api, doomed, ConditionType.READY, "True")
    verified_at = api.version(verified).status.artifact.verified_at  # type: ignore[union-attr]

    operator.stop(kill=True)
    try:
        # A version registered while the operator is down, and one that vanishes unseen.
        late = make_version(api, "crash", 3, uri, sha256(b"m"), run="kept-run")
        api.patch("modelversions", doomed, {"metadata": {"finalizers": None}})
        api.delete("modelversions", doomed)
        wait_for(lambda: api.get("modelversions", doomed) is None, 10, "the version gone")
    finally:
        operator.start()

    wait_condition(api, late, ConditionType.READY, "True")
    wait_for(
        lambda: (
            FINALIZER
            not in (api.get("runs", "orphaned-run") or {})["metadata"].get("finalizers", [])
        ),
        TIMEOUT,
        "the finalizer of the run nobody references any more removed",
    )
    kept = api.get("runs", "kept-run")
    assert kept is not None
    assert FINALIZER in kept["metadata"]["finalizers"]
    assert api.version(verified).status.artifact.verified_at == verified_at  # type: ignore[union-attr]


# An outage, driven in-process: the scheduled look with the Kubernetes API replaced by a dict and
# the store pointed at a port where nothing listens.


class FakeKube:
    """The `kube` module's functions the handler uses, over one in-memory object."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj
        self.status_patches: list[dict[str, Any]] = []

    def get(self, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.obj if plural == "modelversions" else None

    def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.status_patches.append(status)
        merged = ModelVersion.from_object(self.obj).status
        current = merged.to_dict() if merged is not None else {}
        self.obj["status"] = {**current, **{k: v for k, v in status.items() if v is not None}}

    def patch_status_at(
        self, plural: str, namespace: str, name: str, resource_version: str, status: dict[str, Any]
    ) -> bool:
        if resource_version != self.obj["metadata"]["resourceVersion"]:
            return False
        self.patch_status(plural, namespace, name, status)
        self.obj["metadata"]["resourceVersion"] = str(int(resource_version) + 1)
        return True


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def unreachable_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELPLANE_S3_ENDPOINT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
    monkeypatch.setenv("MODELPLANE_S3_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("MODELPLANE_S3_CONNECT_TIMEOUT", "1")


def verified_version() -> dict[str, Any]:
    """A version verified a day ago, so its periodic re-check is due."""
    long_ago = datetime(2025, 1, 1, tzinfo=UTC)
    conditions = set_condition(
        None,
        type=ConditionType.ARTIFACT_VERIFIED,
        status="True",
        reason=Reason.ARTIFACT_VERIFIED,
        message="verified",
        now=long_ago,
    )
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {
            "name": "churn-v9",
            "namespace": "ml",
            "uid": "u",
            "generation": 1,
            "resourceVersion": "7",
        },
        "spec": {
            "model": "churn",
            "version": 9,
            "artifact": {"uri": "s3://models/churn/9/model.pkl", "digest": sha256(b"m")},
        },
        "status": {
            "conditions": [c.to_dict() for c in conditions],
            "artifact": {
                "verified": True,
                "size": 1,
                "digest": sha256(b"m"),
                "verifiedAt": "2025-01-01T00:00:00Z",
            },
        },
    }


def test_an_unreachable_store_is_retried_with_backoff_and_never_verified(
    monkeypatch: pytest.MonkeyPatch, unreachable_store: None
) -> None:
    """A look reports Unknown/StoreUnreachable, not verified, and backs off more each time."""
    fake = FakeKube(verified_version())
    posted: list[Notice] = []
    monkeypatch.setattr(versionreconciling, "kube", fake)
    monkeypatch.setattr(versionreconciling, "_post", lambda obj, notice: posted.append(notice))
    rechecks = Rechecks[tuple[str, str]](versionlooks.RECHECK_INTERVAL)
    monkeypatch.setattr(versionlooks, "rechecks", rechecks)
    key = ("ml", "churn-v9")
    before = unreachable_failures()

    # The event of the version, verified long ago, plans a look at once.
    version = ModelVersion.from_object(fake.obj)
    now = time.monotonic()
    due = versionlooks.on_clock(version, now)
    assert due == now
    rechecks.plan(key, due, now=now)
    for delay in (5, 10, 20):
        assert rechecks.take_due(math.inf) == [key]
        started = time.monotonic()
        planned = versionlooks.look(key)
        finished = time.monotonic()
        assert planned is not None
        # The backoff counts from the failure, somewhere within the look, which itself takes
        # a while on a loaded machine (the store's connect attempts).
        assert started + delay <= planned <= finished + delay
        # An event of the version (our own status write) does not cut the backoff short.
        now = time.monotonic()
        rechecks.plan(key, versionlooks.on_clock(ModelVersion.from_object(fake.obj), now), now=now)
        assert rechecks.due_at(key) == planned

    version = ModelVersion.from_object(fake.obj)
    assert version.status is not None
    assert version.status.artifact is not None
    assert version.status.artifact.verified is False
    assert condition_of(version, ConditionType.ARTIFACT_VERIFIED) == (
        "Unknown",
        Reason.STORE_UNREACHABLE,
    )
    assert condition_of(version, ConditionType.READY) == ("False", Reason.STORE_UNREACHABLE)
    assert all(
        patch.get("artifact", {}).get("verified") is not True for patch in fake.status_patches
    )
    assert [(n.type, n.reason) for n in posted] == [("Warning", Reason.STORE_UNREACHABLE)]
    assert unreachable_failures() == before + 3


def test_check_artifact_turns_an_unreachable_store_into_an_outage(
    unreachable_store: None,
) -> None:
    """No connection is no verdict: an outage, not a missing artifact."""
    before = unreachable_failures()
    outcome = artifactchecks.check_artifact(
        ArtifactRef(uri="s3://models/m.pkl", digest=sha256(b"m"))
    )
    assert isinstance(outcome, StoreOutage)
    assert unreachable_failures() == before + 1
    assert "cannot reach the artifact store" in outcome.message


def test_file_artifacts_are_refused_unless_allowed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator reads no path on its own filesystem unless the install opts in."""
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(b"weights")
    ref = ArtifactRef(uri=f"file://{artifact}", digest=sha256(b"weights"))
    monkeypatch.delenv(artifactchecks.ALLOW_FILE_ARTIFACTS_ENV, raising=False)
    refused = artifactchecks.check_artifact(ref)
    assert not isinstance(refused, StoreOutage)
    assert not refused.verified
    assert refused.reason == artifactchecks.FILE_ARTIFACTS_DISABLED
    assert refused.size is None
    assert artifactchecks.ALLOW_FILE_ARTIFACTS_ENV in refused.message

    monkeypatch.setenv(artifactchecks.ALLOW_FILE_ARTIFACTS_ENV, "1")
    allowed = artifactchecks.check_artifact(ref)
    assert not isinstance(allowed, StoreOutage)
    assert allowed.verified
    assert allowed.size == len(b"weights")


def unreachable_failures() -> float:
    """The in-process count of verifications that could not reach the store."""
    value = REGISTRY.get_sample_value(
        "modelplane_artifact_verification_failures_total", {"reason": "StoreUnreachable"}
    )
    return value or 0.0


def condition_of(version: ModelVersion, type_: str) -> tuple[str, str] | None:
    for found in (version.status.conditions or []) if version.status else []:
        if found.type == type_:
            return found.status, found.reason
    return None
