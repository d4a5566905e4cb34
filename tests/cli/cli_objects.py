"""Manifests of the four kinds for the CLI's tests: plain dicts, as the API server returns them.

The unit tests parse them; the cluster tests create them and write their status by hand.
"""

from __future__ import annotations

from typing import Any

from modelplane.api import API_VERSION

COMMIT = "392bc3103b9fd91a9297077266a0a1ece4592d88"
OTHER_COMMIT = "a" * 40
TRAIN_DIGEST = "md5:" + "1" * 32
IMAGE = "registry.example.com/churn@sha256:" + "e" * 64
ARTIFACT_DIGEST = "sha256:" + "f" * 64
CREATED = "2025-03-01T12:00:00Z"


def experiment(name: str = "churn", *, metric: str = "val_auc", goal: str = "maximize") -> dict:
    return {
        "apiVersion": API_VERSION,
        "kind": "Experiment",
        "metadata": {"name": name, "creationTimestamp": CREATED},
        "spec": {"objective": {"metric": metric, "goal": goal}},
    }


def summary(last: float, *, step: int = 9, low: float | None = None, high: float | None = None):
    return {
        "last": last,
        "step": step,
        "min": last if low is None else low,
        "max": last if high is None else high,
        "count": step + 1,
    }


def run(
    name: str,
    *,
    experiment: str = "churn",
    params: dict[str, str] | None = None,
    metrics: dict[str, dict[str, Any]] | None = None,
    phase: str | None = "Finished",
    parent: str | None = None,
    commit: str = COMMIT,
    dirty: bool = False,
    created: str = CREATED,
) -> dict:
    spec: dict[str, Any] = {
        "experiment": experiment,
        "params": params or {},
        "code": {
            "repository": "https://git.example.com/ml/churn.git",
            "commit": commit,
            "path": "train.py",
            "dirty": dirty,
        },
        "data": [
            {"name": "train", "uri": "s3://datasets/churn/train.parquet", "digest": TRAIN_DIGEST}
        ],
        "environment": {"image": IMAGE, "python": "3.11.7"},
    }
    if parent is not None:
        spec["parent"] = parent
    status: dict[str, Any] = {"metrics": metrics or {}}
    if phase is not None:
        status["phase"] = phase
        status["startTime"] = "2025-03-01T12:00:00Z"
        if phase != "Running":
            status["endTime"] = "2025-03-01T12:05:30Z"
    return {
        "apiVersion": API_VERSION,
        "kind": "Run",
        "metadata": {"name": name, "creationTimestamp": created},
        "spec": spec,
        "status": status,
    }


def model_version(
    model: str,
    version: int,
    *,
    run: str | None = None,
    uri: str | None = None,
    digest: str = ARTIFACT_DIGEST,
) -> dict:
    spec: dict[str, Any] = {
        "model": model,
        "version": version,
        "artifact": {"uri": uri or f"s3://models/{model}/{version}/", "digest": digest},
    }
    if run is not None:
        spec["run"] = run
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{version}", "creationTimestamp": CREATED},
        "spec": spec,
    }


def lineage_status(source_run: dict, *, recorded_at: str = "2025-03-01T12:06:00Z") -> dict:
    """The status.lineage the operator would copy from `source_run`."""
    spec, status = source_run["spec"], source_run["status"]
    return {
        "experiment": spec["experiment"],
        "run": source_run["metadata"]["name"],
        "code": spec["code"],
        "data": spec["data"],
        "params": spec["params"],
        "metrics": status["metrics"],
        "environment": spec["environment"],
        "recordedAt": recorded_at,
    }


def model_stage(model: str, stage: str, version: int, *, approvals: int | None = None) -> dict:
    spec: dict[str, Any] = {"model": model, "stage": stage, "version": version}
    if approvals is not None:
        spec["gates"] = {"approvals": {"required": approvals}}
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelStage",
        "metadata": {"name": f"{model}-{stage.lower()}", "creationTimestamp": CREATED},
        "spec": spec,
    }
