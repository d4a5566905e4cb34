"""The tracking SDK against a real API server and S3 store: runs, params, code, environment,
metrics, nested runs, inputs, models and concurrent registration."""

from __future__ import annotations

import random
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

import modelplane
from modelplane.api import GROUP, VERSION
from modelplane.sdk import (
    ArtifactExistsError,
    Client,
    InputConflictError,
    ParamConflictError,
    RunExistsError,
    RunStateError,
)
from modelplane.store import StoreConfig, verify_artifact

pytestmark = pytest.mark.cluster

MakeClient = Callable[..., Client]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding train.py, with an origin remote."""
    path = tmp_path / "churn"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "ml@example.com")
    git(path, "config", "user.name", "ML")
    git(path, "remote", "add", "origin", "https://git.example.com/ml/churn.git")
    (path / "train.py").write_text("print('training')\n")
    git(path, "add", ".")
    git(path, "commit", "-q", "-m", "train")
    return path


def read_s3(s3: Any, uri: str) -> bytes:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body: bytes = s3.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def patch_run_spec(cluster: Any, namespace: str, name: str, spec: dict[str, Any]) -> None:
    """What another writer (a second process, kubectl) does to the run's spec."""
    k8s.CustomObjectsApi(cluster.api_client()).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "runs", name, {"spec": spec}
    )


def test_a_run_records_code_environment_and_immutable_params(
    make_client: MakeClient, repo: Path, s3: Any, cluster: Any, namespace: str
) -> None:
    client = make_client(source=repo / "train.py")
    with client.start_run("churn", "xgb-001", tags={"team": "growth"}) as run:
        recorded = client.get_run("xgb-001")
        assert recorded.spec.experiment == "churn"
        assert client.get_experiment("churn") is not None
        code = recorded.spec.code
        assert code is not None
        assert code.commit == git(repo, "rev-parse", "HEAD")
        assert (code.repository, code.path, code.dirty) == (
            "https://git.example.com/ml/churn.git",
            "train.py",
            False,
        )
        environment = recorded.spec.environment
        assert environment is not None
        assert environment.python == ".".join(map(str, sys.version_info[:3]))
        assert environment.requirements == f"{run.info.artifact_root}environment/requirements.txt"
        requirements = read_s3(s3, environment.requirements).decode().splitlines()
        assert any(line.startswith("pydantic==") for line in requirements)
        assert recorded.spec.tags is not None
        assert recorded.spec.tags["team"] == "growth"
        assert "modelplane.io/platform" in recorded.spec.tags
        status = recorded.status
        assert status is not None
        assert status.phase == "Running"
        assert status.start_time is not None
        assert status.artifact_root == run.info.artifact_root

        run.log_params({"learning_rate": 0.05, "max_depth": 6})
        run.log_param("learning_rate", 0.05)  # the same value again: fine
        with pytest.raises(ParamConflictError, match=r"key='learning_rate'.*value='0\.05'"):
            run.log_param("learning_rate", 0.1)

        # Another writer sets a param this process has not seen: the API server refuses the
        # change, and the SDK reports it the same way.
        patch_run_spec(cluster, namespace, "xgb-001", {"params": {"seed": "1"}})
        with pytest.raises(
            ParamConflictError, match="key='seed' was already logged with value='1'"
        ):
            run.log_param("seed", 2)
        run.log_param("n_estimators", 100)

    final = client.get_run("xgb-001")
    assert final.spec.params == {
        "learning_rate": "0.05",
        "max_depth": "6",
        "seed": "1",
        "n_estimators": "100",
    }
    assert final.status is not None
    assert final.status.phase == "Finished"
    assert final.status.end_time is not None
    with pytest.raises(RunStateError, match="has ended"):
        run.log_param("late", 1)
    with pytest.raises(RunExistsError, match="already exists"):
        client.start_run("churn", "xgb-001")


def test_a_dirty_tree_is_recorded_dirty(make_client: MakeClient, repo: Path) -> None:
    (repo / "train.py").write_text("print('uncommitted change')\n")
    client = make_client(source=repo / "train.py")
    with client.start_run("churn") as run:
        code = client.get_run(run.name).spec.code
    assert code is not None
    assert code.dirty is True


def test_metric_summaries_and_history_are_exact_after_100000_points(client: Client) -> None:
    rng = random.Random(6)  # noqa: S311 (test data, not secrets)
    values = [rng.uniform(-1000.0, 1000.0) for _ in range(100_000)]
    with client.start_run("churn") as run:
        for step, value in enumerate(values):
            run.log_metric("loss", value, step=step)
        run.log_metric("val_auc", 0.8)
        assert run.flush() is True
        status = client.get_run(run.name).status
        assert status is not None
        assert status.metrics is not None
        summary = status.metrics["loss"]
        assert (summary.last, summary.step, summary.count) == (values[-1], 99_999, 100_000)
        assert (summary.min, summary.max) == (min(values), max(values))
        assert status.heartbeat_time is not None

    history = client.load_metric_history(run.name, "loss")
    assert [(point.step, point.value) for point in history] == list(enumerate(values))
    assert all(point.timestamp > 0 for point in history)
    assert [p.value for p in client.load_metric_history(run.name, "val_auc")] == [0.8]
    assert client.load_metric_history(run.name, "never_logged") == []


def test_nested_runs_name_the_active_run_as_parent(fluent: Client) -> None:
    modelplane.set_experiment("sweep", objective="val_auc")
    with modelplane.start_run(run_name="sweep-1") as parent:
        with pytest.raises(RunStateError, match="nested=True"):
            modelplane.start_run()
        with modelplane.start_run(nested=True) as child:
            assert modelplane.active_run() is child
            modelplane.log_metric("val_auc", 0.9)
        assert modelplane.active_run() is parent
    assert modelplane.active_run() is None
    recorded = fluent.get_run(child.name)
    assert (recorded.spec.parent, recorded.spec.experiment) == ("sweep-1", "sweep")
    assert fluent.get_run(parent.name).spec.parent is None


def test_a_block_that_raises_ends_failed_and_an_interrupt_ends_killed(client: Client) -> None:
    with pytest.raises(ValueError, match="boom"), client.start_run("churn") as failed:
        raise ValueError("boom")
    with pytest.raises(KeyboardInterrupt), client.start_run("churn") as killed:
        raise KeyboardInterrupt
    statuses = [client.get_run(run.name).status for run in (failed, killed)]
    assert [status.phase if status else None for status in statuses] == ["Failed", "Killed"]


def test_a_program_dying_of_an_unhandled_exception_ends_its_run_failed(
    child_env: dict[str, str], tmp_path: Path, client: Client
) -> None:
    script = tmp_path / "crash.py"
    script.write_text(
        "import modelplane\n"
        "modelplane.start_run(run_name='crashing')\n"
        "modelplane.log_metric('loss', 1.0)\n"
        "raise RuntimeError('out of memory, say')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    status = client.get_run("crashing").status
    assert status is not None
    assert status.phase == "Failed"
    assert status.metrics is not None
    assert status.metrics["loss"].count == 1


def test_data_inputs_are_pinned_and_cannot_change(client: Client, s3: Any, bucket: str) -> None:
    s3.client().put_object(Bucket=bucket, Key="data/train.csv", Body=b"a,b\n1,2\n")
    etag = s3.client().head_object(Bucket=bucket, Key="data/train.csv")["ETag"]
    with client.start_run("churn") as run:
        run.log_input("train", f"s3://{bucket}/data/train.csv", etag)
        run.log_input("train", f"s3://{bucket}/data/train.csv", etag)  # again: no change
        computed = run.log_input("validation", f"s3://{bucket}/data/train.csv")
        with pytest.raises(InputConflictError, match="inputs cannot change"):
            run.log_input("train", f"s3://{bucket}/data/other.csv", etag)
    data = client.get_run(run.name).spec.data
    assert data is not None
    assert [(d.name, d.digest) for d in data] == [
        ("train", "md5:" + etag.strip('"')),
        ("validation", computed.digest),
    ]
    assert computed.digest.startswith("sha256:")


def test_concurrent_registrations_get_distinct_gap_free_versions(
    make_client: MakeClient, client: Client, tmp_path: Path, store_config: StoreConfig
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.pkl").write_bytes(b"weights")
    (model / "MLmodel").write_text("flavors: {sklearn: {}}\n")
    with client.start_run("churn") as run:
        info = run.log_model(model, flavor="sklearn")
        with pytest.raises(ArtifactExistsError):
            run.log_model(model)

    # Eight registrars with their own connections, released at the same moment.
    registrars = [make_client() for _ in range(8)]
    barrier = threading.Barrier(len(registrars))

    def register(registrar: Client) -> int:
        barrier.wait(timeout=60)
        return registrar.register_model(info, "churn-model").spec.version

    with ThreadPoolExecutor(len(registrars)) as pool:
        versions = sorted(pool.map(register, registrars, timeout=120))
    assert versions == list(range(1, 9))

    # The next registration, by runs:/ URI, reads the digest log_model recorded.
    version = client.register_model(f"runs:/{run.name}/model", "churn-model", "best so far")
    assert version.metadata.name == "churn-model-v9"
    assert version.spec.run == run.name
    assert version.spec.flavor == "sklearn"
    assert version.spec.artifact.digest == info.digest
    assert version.spec.description == "best so far"
    # The digest is the one the operator will find in the store.
    result = verify_artifact(version.spec.artifact.uri, info.digest, config=store_config)
    assert result.verified, result.message


def test_registers_a_model_stored_elsewhere_by_its_store_digest(
    client: Client, s3: Any, bucket: str, store_config: StoreConfig
) -> None:
    s3.client().put_object(Bucket=bucket, Key="external/model.onnx", Body=b"onnx")
    uri = f"s3://{bucket}/external/"
    version = client.register_model(uri, "external-model", flavor="onnx")
    assert version.metadata.name == "external-model-v1"
    assert version.spec.run is None
    assert verify_artifact(uri, version.spec.artifact.digest, config=store_config).verified
