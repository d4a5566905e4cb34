"""Where a run's files go: run roots, artifact paths, runs:/ URIs."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.sdk.layout import (
    RunsUri,
    artifact_path,
    child_uri,
    parse_runs_uri,
    run_root,
)
from modelplane.store import FileLocation, ManifestError, parse_uri


def test_run_root_is_namespaced_under_the_client_root() -> None:
    root = run_root(
        client_root="s3://mlruns",
        experiment_root=None,
        namespace="ml",
        experiment="churn",
        run="r1",
    )
    assert root == "s3://mlruns/ml/churn/r1/"


def test_the_experiments_own_root_wins() -> None:
    root = run_root(
        client_root="s3://mlruns",
        experiment_root="s3://team-bucket/churn/",
        namespace="ml",
        experiment="churn",
        run="r1",
    )
    assert root == "s3://team-bucket/churn/r1/"


def test_no_root_at_all_says_how_to_set_one() -> None:
    with pytest.raises(ValueError, match="MODELPLANE_ARTIFACT_ROOT"):
        run_root(client_root=None, experiment_root=None, namespace="n", experiment="e", run="r")


def test_file_uris_are_percent_encoded_so_they_parse_back_to_the_same_path() -> None:
    uri = child_uri("file:///srv/runs/", "metrics/loss%2Ftrain/0000000001.jsonl")
    assert uri == "file:///srv/runs/metrics/loss%252Ftrain/0000000001.jsonl"
    location = parse_uri(uri)
    assert isinstance(location, FileLocation)
    assert location.path == Path("/srv/runs/metrics/loss%2Ftrain/0000000001.jsonl")


def test_directories_end_in_a_slash() -> None:
    assert child_uri("s3://bkt/run/", "artifacts", directory=True) == "s3://bkt/run/artifacts/"
    assert child_uri("s3://bkt/run/", "", directory=True) == "s3://bkt/run/"


def test_artifact_paths_are_relative_and_cannot_escape() -> None:
    assert artifact_path(None) == ""
    assert artifact_path("/plots/") == "plots"
    with pytest.raises(ManifestError):
        artifact_path("../other-run")


def test_parses_mlflow_runs_uris() -> None:
    assert parse_runs_uri("runs:/r1/model") == RunsUri("r1", "model")
    assert parse_runs_uri("runs:/r1/models/best") == RunsUri("r1", "models/best")
    assert parse_runs_uri("runs:/r1") == RunsUri("r1", "model")
    assert parse_runs_uri("s3://bucket/model/") is None
