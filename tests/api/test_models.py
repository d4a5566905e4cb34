"""The API models parse objects as the API server stores them, dump minimal manifests and
patches, and check in Python the same rules the API server checks with CEL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from modelplane.api import (
    ArtifactRef,
    CodeRef,
    DataInput,
    Environment,
    Experiment,
    HistoryEntry,
    MetricGate,
    ModelStage,
    ModelStageSpec,
    ModelVersion,
    ModelVersionSpec,
    ObjectMeta,
    RequireStage,
    Run,
    RunSpec,
    RunStatus,
    model_stage_name,
    model_version_name,
    parse_duration,
    parse_object,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SHA256 = "sha256:" + "0f" * 32
COMMIT = "392bc3103b9fd91a9297077266a0a1ece4592d88"


def _example_docs() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted(EXAMPLES.glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
    ]


def _is_subset(small: Any, big: Any) -> bool:
    """Whether every key and item of `small` is in `big` (defaults may add more)."""
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _is_subset(v, big[k]) for k, v in small.items()
        )
    if isinstance(small, list):
        return (
            isinstance(big, list)
            and len(small) == len(big)
            and all(_is_subset(a, b) for a, b in zip(small, big, strict=True))
        )
    return bool(small == big)


def test_examples_cover_the_story() -> None:
    """Holds the churn story: an experiment, a sweep of three, three versions, two stages."""
    names = {(d["kind"], d["metadata"]["name"]) for d in _example_docs()}
    assert {
        ("Experiment", "churn-prediction"),
        ("Run", "xgb-sweep"),
        ("Run", "xgb-config-001"),
        ("Run", "xgb-config-002"),
        ("Run", "xgb-config-003"),
        ("ModelVersion", "churn-model-v1"),
        ("ModelVersion", "churn-model-v2"),
        ("ModelVersion", "churn-model-v3"),
        ("ModelStage", "churn-model-staging"),
        ("ModelStage", "churn-model-production"),
    } <= names
    assert all("namespace" not in d["metadata"] for d in _example_docs())


@pytest.mark.parametrize("doc", _example_docs(), ids=lambda d: d["metadata"]["name"])
def test_parses_every_example_and_dumps_it_back(doc: dict[str, Any]) -> None:
    """Parses each example and dumps a manifest holding everything it said, which parses back
    to the same model."""
    parsed = parse_object(doc)
    manifest = parsed.to_manifest()
    assert _is_subset(doc, manifest)
    assert type(parsed).model_validate(manifest) == parsed


def test_parses_a_served_object_with_unknown_fields() -> None:
    """Parses an object as the API server returns it, ignoring fields it does not model."""
    served = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {
            "name": "churn-model-v3",
            "namespace": "ml",
            "generation": 2,
            "resourceVersion": "812",
            "creationTimestamp": "2025-03-01T12:00:00Z",
            "managedFields": [{"manager": "kubectl"}],
            "finalizers": ["modelplane.io/lineage"],
        },
        "spec": {
            "model": "churn-model",
            "version": 3,
            "artifact": {"uri": "s3://models/churn-model/3/", "digest": SHA256},
            "someFutureField": True,
        },
        "status": {
            "observedGeneration": 2,
            "artifact": {"verified": True, "verifiedAt": "2025-03-01T12:01:00Z"},
            "stages": ["Production"],
        },
    }
    mv = ModelVersion.from_object(served)
    assert mv.metadata.generation == 2
    assert mv.metadata.creation_timestamp == datetime(2025, 3, 1, 12, tzinfo=UTC)
    assert mv.status is not None
    assert mv.status.artifact is not None
    assert mv.status.artifact.verified_at == datetime(2025, 3, 1, 12, 1, tzinfo=UTC)
    assert mv.status.stages == ["Production"]
    assert "someFutureField" not in mv.to_manifest()["spec"]


class _View(Mapping[str, Any]):
    """A read-only mapping view, like kopf's Body and Spec."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return _View(value) if isinstance(value, dict) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_parses_mapping_views_such_as_kopf_bodies() -> None:
    """Parses nested mapping views (kopf's Body) as it parses dicts."""
    doc = next(d for d in _example_docs() if d["kind"] == "ModelStage")
    assert ModelStage.from_object(_View(doc)) == ModelStage.from_object(doc)
    assert ModelStageSpec.model_validate(_View(doc["spec"])) == ModelStage.from_object(doc).spec


def test_accepts_python_names_and_wire_names() -> None:
    """Accepts snake_case and camelCase names alike, and dumps camelCase."""
    now = datetime(2025, 3, 1, tzinfo=UTC)
    by_name = RunStatus(start_time=now, artifact_root="s3://a/b/")
    by_alias = RunStatus.model_validate(
        {"startTime": "2025-03-01T00:00:00Z", "artifactRoot": "s3://a/b/"}
    )
    assert by_name == by_alias
    assert by_name.to_dict() == {"startTime": "2025-03-01T00:00:00Z", "artifactRoot": "s3://a/b/"}


def test_dumps_only_what_was_set_so_status_patches_are_partial() -> None:
    """Dumps no None fields: RunStatus(phase=...) is a merge patch touching only phase."""
    assert RunStatus(phase="Finished").to_dict() == {"phase": "Finished"}


def test_history_entries_use_the_from_key() -> None:
    """Writes and reads a history entry's previous version under the key `from`."""
    at = datetime(2025, 3, 1, tzinfo=UTC)
    entry = HistoryEntry(version=3, from_version=2, at=at, result="Succeeded")
    assert entry.to_dict()["from"] == 2
    assert HistoryEntry.model_validate(entry.to_dict()).from_version == 2


def test_applies_the_same_defaults_as_the_crd() -> None:
    """Fills in the defaults the API server fills in (the CRD's defaults come from here)."""
    spec = ModelStageSpec.model_validate(
        {
            "model": "churn-model",
            "stage": "Staging",
            "version": 1,
            "serving": {"template": {}},
        }
    )
    assert spec.serving is not None
    assert (spec.serving.replicas, spec.serving.progress_deadline_seconds) == (1, 600)
    assert spec.serving.rollback == "automatic"
    assert CodeRef(repository="https://g/x.git", commit=COMMIT).dirty is False


def test_parse_object_dispatches_on_kind_and_refuses_others() -> None:
    """Parses each kind into its class and refuses objects of other APIs."""
    kinds = {type(parse_object(d)) for d in _example_docs()}
    assert kinds == {Experiment, Run, ModelVersion, ModelStage}
    with pytest.raises(ValueError, match="not a modelplane object"):
        parse_object({"apiVersion": "apps/v1", "kind": "Deployment"})
    with pytest.raises(ValueError, match="not a modelplane object"):
        parse_object({"apiVersion": "modelplane.io/v1alpha1", "kind": "Model"})


def test_builds_the_conventional_names() -> None:
    """Builds <model>-v<version> and <model>-<stage in lower case>."""
    assert model_version_name("churn-model", 3) == "churn-model-v3"
    assert model_stage_name("churn-model", "Production") == "churn-model-production"


def test_builds_a_manifest_from_python() -> None:
    """Builds a ModelVersion in Python and dumps the manifest the SDK would create."""
    mv = ModelVersion(
        metadata=ObjectMeta(name=model_version_name("churn-model", 4)),
        spec=ModelVersionSpec(
            model="churn-model",
            version=4,
            run="xgb-config-002",
            artifact=ArtifactRef(uri="s3://models/churn-model/4/", digest=SHA256),
        ),
    )
    assert mv.to_manifest() == {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "ModelVersion",
        "metadata": {"name": "churn-model-v4"},
        "spec": {
            "model": "churn-model",
            "version": 4,
            "run": "xgb-config-002",
            "artifact": {"uri": "s3://models/churn-model/4/", "digest": SHA256},
        },
    }


@pytest.mark.parametrize(
    ("model", "fields", "message"),
    [
        (ArtifactRef, {"uri": "s3://m/1/", "digest": "crc32:abcd"}, "digest algorithm must be"),
        (ArtifactRef, {"uri": "s3://m/1/", "digest": "sha256:abcd"}, "of the algorithm's length"),
        (ArtifactRef, {"uri": "s3://m/1/", "digest": "sha1:" + "a" * 64}, "algorithm's length"),
        (ArtifactRef, {"uri": "https://m/1/", "digest": SHA256}, "uri must use a known scheme"),
        (CodeRef, {"repository": "https://g/x.git", "commit": "abc"}, "commit must be a full"),
        (CodeRef, {"repository": "svn://g/x", "commit": COMMIT}, "repository must be an"),
        (DataInput, {"name": "train", "uri": "ftp://d", "digest": SHA256}, "known scheme"),
        (Environment, {"image": "registry/churn:latest"}, "image must be pinned by digest"),
        (RunSpec, {"experiment": "Churn_Prediction"}, "must name a Kubernetes object"),
        (RunSpec, {"experiment": "e", "params": {"a;b": "1"}}, "param names must be"),
        (RequireStage, {"name": "1st"}, "stage name must start with a letter"),
        (RequireStage, {"name": "Staging", "minDuration": "10 min"}, "should match pattern"),
        (MetricGate, {"name": "auc", "op": "=>", "value": 1}, "Input should be '>='"),
        (
            ModelVersionSpec,
            {"model": "churn-", "version": 1, "artifact": {"uri": "s3://m/", "digest": SHA256}},
            "model name must be a DNS label",
        ),
    ],
)
def test_checks_the_api_rules_in_python_with_the_same_messages(
    model: type[BaseModel], fields: dict[str, Any], message: str
) -> None:
    """Rejects in Python what the API server rejects, with the CRD's message, so SDK users
    see the problem before a request is made."""
    with pytest.raises(ValidationError) as error:
        model.model_validate(fields)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "repository",
    [
        "https://git.example.com/ml/churn.git",
        "http://git.local/churn",
        "ssh://git@git.example.com:22/ml/churn.git",
        "git@github.com:ml/churn.git",
        "file:///srv/git/churn",
    ],
)
def test_accepts_the_remotes_git_prints(repository: str) -> None:
    """Accepts every git remote form `git remote get-url` prints."""
    assert CodeRef(repository=repository, commit=COMMIT).repository == repository


@pytest.mark.parametrize(
    "digest",
    ["md5:" + "a" * 32, "sha1:" + "b" * 40, "sha256:" + "c" * 64, "sha512:" + "d" * 128],
)
def test_accepts_each_known_digest_algorithm(digest: str) -> None:
    """Accepts md5, sha1, sha256 and sha512 digests of the right length."""
    assert ArtifactRef(uri="gs://m/1/", digest=digest).digest == digest


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("90s", timedelta(seconds=90)),
        ("500ms", timedelta(milliseconds=500)),
    ],
)
def test_parses_durations(text: str, expected: timedelta) -> None:
    """Parses gate durations in Go's notation."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "10 m", "1d", "m10"])
def test_refuses_malformed_durations(text: str) -> None:
    """Refuses durations the CRD's pattern refuses."""
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_api_and_conditions_import_neither_kopf_nor_boto3() -> None:
    """Keeps the api package and core.conditions below kopf and boto3 (layering)."""
    code = (
        "import sys, modelplane.api, modelplane.api.crdgen, modelplane.core.conditions\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('kopf', 'boto3', 'botocore'))\n"
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
