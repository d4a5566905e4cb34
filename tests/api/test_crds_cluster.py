"""The generated CRDs in a real API server: examples apply, invalid objects are rejected with a
message naming the rule, immutable fields stay immutable, and kubectl shows the columns and the
field documentation users rely on."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.api import (
    ArtifactStatus,
    BestRun,
    CodeRef,
    DataInput,
    GateResult,
    HistoryEntry,
    Lineage,
    MetricSummary,
    ModelStageStatus,
    ModelVersionStatus,
    RolloutStatus,
    RunCounts,
    RunStatus,
    parse_object,
)
from modelplane.api.bases import KubeModel
from modelplane.api.experiments import ExperimentStatus
from modelplane.core.conditions import ConditionType, Reason, set_condition

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The numbered files tell the churn story in one namespace; the others (RBAC for approvers)
# are cluster set-up examples with namespaces of their own.
STORY = sorted(EXAMPLES.glob("[0-9][0-9]-*.yaml"))
STORY_FILES = [arg for path in STORY for arg in ("-f", str(path))]
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
SHA256 = "sha256:" + "ab" * 32
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def namespace(unmanaged_namespace: str) -> str:
    """These tests check what the API server itself enforces, so they run where the operator
    and its webhooks do not act: otherwise the gates webhook would refuse stages pointing at
    versions that are not verified, and the operator would rewrite the status they store."""
    return unmanaged_namespace


def _examples() -> dict[str, dict[str, Any]]:
    """Every example object by name (names are unique across the examples)."""
    objects: dict[str, dict[str, Any]] = {}
    for path in STORY:
        for doc in yaml.safe_load_all(path.read_text()):
            objects[doc["metadata"]["name"]] = doc
    return objects


def example(name: str) -> dict[str, Any]:
    """A deep copy of the example object called `name`."""
    return copy.deepcopy(_examples()[name])


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies `kubectl patch --type=merge`."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def create(cluster: Any, namespace: str, manifest: dict[str, Any], *, check: bool = True) -> Any:
    return cluster.kubectl(
        "create", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=check
    )


def patch(
    cluster: Any, namespace: str, manifest: dict[str, Any], body: dict[str, Any], **kw: Any
) -> Any:
    """Merge-patches the object `manifest` names (its spec, or its status with a subresource)."""
    return cluster.kubectl(
        "patch",
        "-n",
        namespace,
        manifest["kind"].lower(),
        manifest["metadata"]["name"],
        "--type=merge",
        "-p",
        json.dumps(body),
        *kw.pop("extra", ()),
        **kw,
    )


def rename(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}}


def spec(**fields: Any) -> dict[str, Any]:
    return {"spec": fields}


@dataclass(frozen=True)
class Case:
    """An invalid object: `base` (an example) with `change` merged in, on create or update."""

    id: str
    base: str
    change: dict[str, Any]
    message: str
    on_update: bool = False
    marks: tuple[Any, ...] = field(default=())


def _params(n: int) -> dict[str, str]:
    return {f"p{i}": "1" for i in range(n)}


def _inputs(n: int) -> list[dict[str, str]]:
    return [{"name": f"in{i}", "uri": f"s3://d/{i}", "digest": SHA256} for i in range(n)]


def _gates(n: int) -> list[dict[str, Any]]:
    return [{"name": f"m{i}", "op": ">=", "value": 0.5} for i in range(n)]


TEMPLATE = {"spec": {"containers": [{"name": "c", "image": "x"}]}}

CASES = [
    # ModelVersion: names, artifacts, immutability.
    Case(
        "mv-name-version-mismatch",
        "churn-model-v3",
        rename("churn-model-v4"),
        "metadata.name must be <model>-v<version>",
    ),
    Case(
        "mv-name-other-model",
        "churn-model-v3",
        spec(model="fraud-model"),
        "metadata.name must be <model>-v<version>",
    ),
    Case(
        "mv-name-leading-zero",
        "churn-model-v3",
        rename("churn-model-v03"),
        "metadata.name must be <model>-v<version>",
    ),
    Case(
        "mv-model-not-dns-label",
        "churn-model-v3",
        {**rename("churn.model-v3"), **spec(model="churn.model")},
        "model name must be a DNS label",
    ),
    Case("mv-model-too-long", "churn-model-v3", spec(model="m" * 64), "spec.model: Too long"),
    Case(
        "mv-version-zero",
        "churn-model-v3",
        {**rename("churn-model-v0"), **spec(version=0)},
        "spec.version: Invalid value: 0: spec.version in body should be greater than or equal to 1",
    ),
    Case(
        "mv-digest-unknown-algorithm",
        "churn-model-v3",
        spec(artifact={"digest": "blake3:" + "ab" * 32}),
        "digest algorithm must be md5, sha1, sha256 or sha512",
    ),
    Case(
        "mv-digest-wrong-length",
        "churn-model-v3",
        spec(artifact={"digest": "sha256:" + "ab" * 20}),
        "digest must be <algorithm>:<lower-case hex> of the algorithm's length",
    ),
    Case(
        "mv-digest-md5-with-sha256-length",
        "churn-model-v3",
        spec(artifact={"digest": "md5:" + "ab" * 32}),
        "digest must be <algorithm>:<lower-case hex> of the algorithm's length",
    ),
    Case(
        "mv-digest-upper-case",
        "churn-model-v3",
        spec(artifact={"digest": "sha256:" + "AB" * 32}),
        "digest must be <algorithm>:<lower-case hex> of the algorithm's length",
    ),
    Case(
        "mv-artifact-https-scheme",
        "churn-model-v3",
        spec(artifact={"uri": "https://models.example.com/churn/3/"}),
        "uri must use a known scheme: s3://, gs:// or file://",
    ),
    Case(
        "mv-artifact-bare-path",
        "churn-model-v3",
        spec(artifact={"uri": "/models/churn/3/"}),
        "uri must use a known scheme: s3://, gs:// or file://",
    ),
    Case(
        "mv-artifact-missing",
        "churn-model-v3",
        spec(artifact=None),
        "spec.artifact: Required value",
    ),
    Case(
        "mv-bad-flavor",
        "churn-model-v3",
        spec(flavor="XGBoost!"),
        "spec.flavor in body should match",
    ),
    Case(
        "mv-signature-too-many-inputs",
        "churn-model-v3",
        spec(signature={"inputs": [{"name": f"c{i}", "type": "double"} for i in range(513)]}),
        "spec.signature.inputs: Too many: 513: must have at most 512 items",
    ),
    Case(
        "mv-artifact-uri-changed",
        "churn-model-v3",
        spec(artifact={"uri": "s3://models/churn-model/3-retrained/"}),
        "spec is immutable except description",
        on_update=True,
    ),
    Case(
        "mv-digest-changed",
        "churn-model-v3",
        spec(artifact={"digest": SHA256}),
        "spec is immutable except description",
        on_update=True,
    ),
    Case(
        "mv-run-changed",
        "churn-model-v3",
        spec(run="xgb-config-001"),
        "spec is immutable except description",
        on_update=True,
    ),
    Case(
        "mv-flavor-removed",
        "churn-model-v3",
        spec(flavor=None),
        "spec is immutable except description",
        on_update=True,
    ),
    Case(
        "mv-signature-added",
        "churn-model-v1",
        spec(signature={"inputs": [{"name": "tenure_months", "type": "long"}]}),
        "spec is immutable except description",
        on_update=True,
    ),
    # Run: lineage fields, formats and bounds.
    Case(
        "run-commit-short",
        "xgb-config-002",
        spec(code={"commit": "392bc31"}),
        "commit must be a full 40-character lower-case hex git SHA",
    ),
    Case(
        "run-commit-not-hex",
        "xgb-config-002",
        spec(code={"commit": "g" * 40}),
        "commit must be a full 40-character lower-case hex git SHA",
    ),
    Case(
        "run-commit-upper-case",
        "xgb-config-002",
        spec(code={"commit": COMMIT.upper()}),
        "commit must be a full 40-character lower-case hex git SHA",
    ),
    Case(
        "run-repository-ftp",
        "xgb-config-002",
        spec(code={"repository": "ftp://git.example.com/ml/churn.git"}),
        "repository must be an https://, http://, ssh://, git:// or file:// URL",
    ),
    Case(
        "run-data-digest-wrong-length",
        "xgb-config-002",
        spec(data=[{"name": "train", "uri": "s3://d/train", "digest": "sha1:" + "ab" * 10}]),
        "digest must be <algorithm>:<lower-case hex> of the algorithm's length",
    ),
    Case(
        "run-data-unknown-scheme",
        "xgb-config-002",
        spec(data=[{"name": "train", "uri": "ftp://d/train", "digest": SHA256}]),
        "uri must use a known scheme: s3://, gs:// or file://",
    ),
    Case(
        "run-data-duplicate-name",
        "xgb-config-002",
        spec(
            data=[
                {"name": "train", "uri": "s3://d/a", "digest": SHA256},
                {"name": "train", "uri": "s3://d/b", "digest": SHA256},
            ]
        ),
        'spec.data[1]: Duplicate value: {"name":"train"}',
    ),
    Case(
        "run-data-too-many-inputs",
        "xgb-config-002",
        spec(data=_inputs(65)),
        "spec.data: Too many: 65: must have at most 64 items",
    ),
    Case(
        "run-image-not-pinned",
        "xgb-config-002",
        spec(environment={"image": "registry.example.com/churn-train:latest"}),
        "image must be pinned by digest: <name>@sha256:<64 hex>",
    ),
    Case(
        "run-python-version-word",
        "xgb-config-002",
        spec(environment={"python": "three"}),
        "spec.environment.python in body should match",
    ),
    Case(
        "run-requirements-https",
        "xgb-config-002",
        spec(environment={"requirements": "https://example.com/uv.lock"}),
        "uri must use a known scheme: s3://, gs:// or file://",
    ),
    Case(
        "run-own-parent",
        "xgb-config-002",
        spec(parent="xgb-config-002"),
        "a run cannot be its own parent",
    ),
    Case(
        "run-parent-not-object-name",
        "xgb-config-002",
        spec(parent="XGB_Sweep"),
        "must name a Kubernetes object",
    ),
    Case(
        "run-experiment-missing",
        "xgb-config-002",
        spec(experiment=None),
        "spec.experiment: Required value",
    ),
    Case(
        "run-too-many-params",
        "churn-model-v3-eval",  # has no params of its own to merge with
        spec(params=_params(257)),
        "spec.params: Too many: 257: must have at most 256 items",
    ),
    Case(
        "run-param-value-too-long",
        "xgb-config-002",
        spec(params={"notes": "x" * 501}),
        "spec.params.notes: Too long",
    ),
    Case(
        "run-param-name-invalid",
        "xgb-config-002",
        spec(params={"max_depth;drop": "6"}),
        "param names must be 1-250 letters, digits",
    ),
    Case(
        "run-param-changed",
        "xgb-config-002",
        spec(params={"learning_rate": "0.5"}),
        "params are immutable once set",
        on_update=True,
    ),
    Case(
        "run-param-removed",
        "xgb-config-002",
        spec(params={"random_state": None}),
        "params are immutable once set",
        on_update=True,
    ),
    Case(
        "run-commit-changed",
        "xgb-config-002",
        spec(code={"commit": COMMIT}),
        "code is immutable once set",
        on_update=True,
    ),
    Case(
        "run-code-removed",
        "xgb-config-002",
        spec(code=None),
        "code is immutable once set",
        on_update=True,
    ),
    Case(
        "run-data-digest-changed",
        "xgb-config-002",
        spec(
            data=[
                {
                    "name": "train",
                    "uri": "s3://datasets/churn/2025-q1/train.parquet",
                    "digest": SHA256,
                }
            ]
        ),
        "data is immutable once set",
        on_update=True,
    ),
    Case(
        "run-data-removed",
        "xgb-config-002",
        spec(data=None),
        "data is immutable once set",
        on_update=True,
    ),
    Case(
        "run-experiment-changed",
        "xgb-config-002",
        spec(experiment="fraud-detection"),
        "experiment is immutable once set",
        on_update=True,
    ),
    Case(
        "run-parent-changed",
        "xgb-config-002",
        spec(parent="xgb-sweep-2"),
        "parent is immutable once set",
        on_update=True,
    ),
    Case(
        "run-parent-removed",
        "xgb-config-002",
        spec(parent=None),
        "parent is immutable once set",
        on_update=True,
    ),
    Case(
        "run-evaluates-changed",
        "churn-model-v3-eval",
        spec(evaluates="churn-model-v2"),
        "evaluates is immutable once set",
        on_update=True,
    ),
    Case(
        "run-image-changed",
        "xgb-config-002",
        spec(environment={"image": "registry.example.com/churn-train@" + SHA256}),
        "environment is immutable once set",
        on_update=True,
    ),
    # Experiment.
    Case(
        "exp-goal-misspelled",
        "churn-prediction",
        spec(objective={"goal": "maximise"}),
        'spec.objective.goal: Unsupported value: "maximise": supported values: "maximize", '
        '"minimize"',
    ),
    Case(
        "exp-too-many-tags",
        "churn-prediction",
        # The example's two tags plus 63 more.
        spec(tags={f"t{i}": "x" for i in range(63)}),
        "spec.tags: Too many: 65: must have at most 64 items",
    ),
    Case(
        "exp-tag-name-invalid",
        "churn-prediction",
        spec(tags={"team!": "growth"}),
        "tag names must be 1-250 letters, digits",
    ),
    Case(
        "exp-artifact-root-http",
        "churn-prediction",
        spec(artifactRoot="http://minio:9000/ml-artifacts/"),
        "uri must use a known scheme: s3://, gs:// or file://",
    ),
    # ModelStage: names, gates, serving.
    Case(
        "ms-name-stage-mismatch",
        "churn-model-production",
        rename("churn-model-prod"),
        "metadata.name must be <model>-<stage in lower case>",
    ),
    Case(
        "ms-stage-starts-with-dash",
        "churn-model-production",
        {**rename("churn-model--prod"), **spec(stage="-prod")},
        "stage name must start with a letter and hold only letters, digits and '-'",
    ),
    Case(
        "ms-stage-with-dot",
        "churn-model-production",
        {**rename("churn-model-prod.eu"), **spec(stage="prod.eu")},
        "stage name must start with a letter and hold only letters, digits and '-'",
    ),
    Case(
        "ms-stage-too-long",
        "churn-model-production",
        {**rename("churn-model-" + "s" * 64), **spec(stage="S" * 64)},
        "spec.stage: Too long",
    ),
    Case(
        "ms-model-trailing-dash",
        "churn-model-production",
        {**rename("churn-model--production"), **spec(model="churn-model-")},
        "model name must be a DNS label",
    ),
    Case(
        "ms-gate-op-unknown",
        "churn-model-production",
        spec(gates={"metrics": [{"name": "test_auc", "op": "=>", "value": 0.82}]}),
        'spec.gates.metrics[0].op: Unsupported value: "=>"',
    ),
    Case(
        "ms-gate-value-not-number",
        "churn-model-production",
        spec(gates={"metrics": [{"name": "test_auc", "op": ">=", "value": "high"}]}),
        'spec.gates.metrics[0].value: Invalid value: "string": '
        "spec.gates.metrics[0].value in body must be of type number",
    ),
    Case(
        "ms-gate-metric-name-invalid",
        "churn-model-production",
        spec(gates={"metrics": [{"name": "auc;drop", "op": ">=", "value": 0.8}]}),
        "spec.gates.metrics[0].name in body should match",
    ),
    Case(
        "ms-gate-duplicate",
        "churn-model-production",
        spec(gates={"metrics": [_gates(1)[0], _gates(1)[0]]}),
        "spec.gates.metrics[1]: Duplicate value",
    ),
    Case(
        "ms-too-many-gates",
        "churn-model-production",
        spec(gates={"metrics": _gates(33)}),
        "spec.gates.metrics: Too many: 33: must have at most 32 items",
    ),
    Case(
        "ms-require-own-stage",
        "churn-model-production",
        spec(gates={"requireStage": {"name": "production"}}),
        "gates.requireStage must name a different stage",
    ),
    Case(
        "ms-min-duration-words",
        "churn-model-production",
        spec(gates={"requireStage": {"name": "Staging", "minDuration": "10 minutes"}}),
        "spec.gates.requireStage.minDuration in body should match",
    ),
    Case(
        "ms-approvals-too-many",
        "churn-model-production",
        spec(gates={"approvals": {"required": 11}}),
        "spec.gates.approvals.required in body should be less than or equal to 10",
    ),
    Case(
        "ms-rollback-unknown",
        "churn-model-production",
        spec(serving={"rollback": "sometimes"}),
        'spec.serving.rollback: Unsupported value: "sometimes"',
    ),
    Case(
        "ms-replicas-negative",
        "churn-model-production",
        spec(serving={"replicas": -1}),
        "spec.serving.replicas in body should be greater than or equal to 0",
    ),
    Case(
        "ms-serving-without-template",
        "churn-model-production",
        spec(serving={"template": None}),
        "spec.serving.template: Required value",
    ),
    Case(
        "ms-version-missing",
        "churn-model-production",
        spec(version=None),
        "spec.version: Required value",
    ),
    Case(
        "ms-stage-renamed",
        "churn-model-production",
        spec(stage="Staging"),
        "metadata.name must be <model>-<stage in lower case>",
        on_update=True,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rejects_invalid_object_with_named_rule(
    cluster: Any, crds: None, namespace: str, case: Case
) -> None:
    """Rejects each invalid object, on create or on update, with a message naming the rule."""
    base = example(case.base)
    if case.on_update:
        create(cluster, namespace, base)
        result = patch(cluster, namespace, base, case.change, check=False)
    else:
        result = create(cluster, namespace, merge_patch(base, case.change), check=False)
    assert result.returncode != 0, f"accepted: {result.stdout}"
    assert case.message in result.stderr


def test_rejection_table_covers_every_kind_and_many_rules() -> None:
    """Keeps the table above at least 40 cases, with cases for every kind."""
    bases = {_examples()[c.base]["kind"] for c in CASES}
    assert len(CASES) >= 40
    assert bases == {"Experiment", "Run", "ModelVersion", "ModelStage"}
    assert len({c.id for c in CASES}) == len(CASES)


def test_every_example_applies_and_round_trips(cluster: Any, crds: None, namespace: str) -> None:
    """Applies examples/ as a whole; each object reads back equal to its parsed manifest."""
    cluster.kubectl("apply", "-n", namespace, *STORY_FILES)
    listed = cluster.kubectl("get", "modelplane", "-n", namespace, "-o", "name").stdout.split()
    examples = _examples()
    assert len(listed) == len(examples)
    for name, manifest in examples.items():
        kind = manifest["kind"].lower()
        served = json.loads(
            cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
        )
        # Defaults (serving.replicas, code.dirty, ...) come from the same models on both sides.
        assert parse_object(served).to_dict()["spec"] == parse_object(manifest).to_dict()["spec"]


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("churn-model-v3", spec(description="Retrained description")),
        ("churn-model-v3", spec(description=None)),
        ("xgb-config-002", spec(params={"early_stopping_rounds": "20"})),
        ("xgb-config-002", spec(data=[*example("xgb-config-002")["spec"]["data"], _inputs(1)[0]])),
        ("xgb-config-002", spec(tags={"note": "best trial"})),
        ("xgb-sweep", spec(data=_inputs(1), environment={"python": "3.11.7"})),
        ("churn-model-production", spec(version=3)),
        ("churn-prediction", spec(objective={"metric": "val_logloss", "goal": "minimize"})),
    ],
    ids=[
        "mv-description-changed",
        "mv-description-removed",
        "run-param-added",
        "run-data-input-added",
        "run-tags-changed",
        "run-unset-fields-set-later",
        "ms-version-promoted",
        "exp-objective-changed",
    ],
)
def test_accepts_allowed_updates(
    cluster: Any, crds: None, namespace: str, name: str, change: dict[str, Any]
) -> None:
    """Accepts the updates the rules allow: descriptions, new params and inputs, promotions."""
    base = example(name)
    create(cluster, namespace, base)
    patch(cluster, namespace, base, change)


def _status(model: KubeModel) -> dict[str, Any]:
    return {"status": model.to_dict()}


def _ready(generation: int = 1) -> Any:
    return set_condition(
        None,
        type=ConditionType.READY,
        status="True",
        reason=Reason.RECONCILED,
        message="up to date",
        observed_generation=generation,
        now=NOW,
    )


STATUSES: dict[str, KubeModel] = {
    "churn-prediction": ExperimentStatus(
        observed_generation=1,
        conditions=_ready(),
        runs=RunCounts(total=5, running=1, finished=4),
        best_run=BestRun(name="xgb-config-002", value=0.871),
    ),
    "xgb-config-002": RunStatus(
        observed_generation=1,
        conditions=_ready(),
        phase="Finished",
        start_time=NOW,
        end_time=NOW,
        heartbeat_time=NOW,
        metrics={"val_auc": MetricSummary(last=0.871, step=99, min=0.61, max=0.874, count=100)},
        artifact_root="s3://ml-artifacts/churn-prediction/xgb-config-002/",
    ),
    "churn-model-v3": ModelVersionStatus(
        observed_generation=1,
        conditions=_ready(),
        lineage=Lineage(
            experiment="churn-prediction",
            run="xgb-config-002",
            code=CodeRef(repository="https://git.example.com/ml/churn.git", commit=COMMIT),
            data=[DataInput(name="train", uri="s3://d/train", digest=SHA256)],
            params={"learning_rate": "0.05"},
            metrics={"val_auc": MetricSummary(last=0.87, step=9, min=0.6, max=0.87, count=10)},
            recorded_at=NOW,
        ),
        artifact=ArtifactStatus(verified=True, size=1024, digest=SHA256, verified_at=NOW),
        stages=["Production", "Staging"],
    ),
    "churn-model-production": ModelStageStatus(
        observed_generation=1,
        conditions=_ready(),
        live_version=2,
        live_since=NOW,
        gates_version=2,
        gates=[
            GateResult(
                name="test_auc", type="Metric", op=">=", value=0.82, observed=0.85, passed=True
            )
        ],
        gates_summary="1/1",
        rollout=RolloutStatus(
            deployment="churn-model-production",
            version=2,
            revision=1,
            replicas=2,
            updated_replicas=2,
            available_replicas=2,
            phase="Complete",
        ),
        history=[HistoryEntry(version=2, at=NOW, result="Succeeded", requested_by="alice")],
    ),
}


def _write_statuses(cluster: Any, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, *STORY_FILES)
    for name, status in STATUSES.items():
        patch(cluster, namespace, example(name), _status(status), extra=("--subresource=status",))


def test_operator_can_write_full_status_of_every_kind(
    cluster: Any, crds: None, namespace: str
) -> None:
    """Stores a full status built from the models on every kind and reads it back unchanged;
    kubectl wait sees the Ready condition."""
    _write_statuses(cluster, namespace)
    for name, status in STATUSES.items():
        kind = example(name)["kind"].lower()
        served = json.loads(
            cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
        )
        assert parse_object(served).status == status
        cluster.kubectl(
            "wait", "-n", namespace, kind, name, "--for=condition=Ready", "--timeout=10s"
        )


@dataclass(frozen=True)
class Columns:
    """What `kubectl get <resource> <name>` prints: the header and the row's leading cells."""

    resource: str
    name: str
    header: list[str]
    cells: list[str]


COLUMNS = [
    Columns(
        "modelstages",
        "churn-model-production",
        ["NAME", "MODEL", "STAGE", "DESIRED", "LIVE", "GATES", "ROLLOUT", "AGE"],
        ["churn-model-production", "churn-model", "Production", "2", "2", "1/1", "Complete"],
    ),
    Columns(
        "runs",
        "xgb-config-002",
        ["NAME", "EXPERIMENT", "PHASE", "PARENT", "AGE"],
        ["xgb-config-002", "churn-prediction", "Finished", "xgb-sweep"],
    ),
    Columns(
        "mv",
        "churn-model-v3",
        ["NAME", "MODEL", "VERSION", "RUN", "VERIFIED", "STAGES", "AGE"],
        [
            "churn-model-v3",
            "churn-model",
            "3",
            "xgb-config-002",
            "true",
            '["Production","Staging"]',
        ],
    ),
    Columns(
        "exp",
        "churn-prediction",
        ["NAME", "OBJECTIVE", "RUNS", "BEST", "RUN", "AGE"],  # "BEST RUN" splits in two
        ["churn-prediction", "val_auc", "5", "xgb-config-002"],
    ),
]


@pytest.mark.parametrize("columns", COLUMNS, ids=[c.resource for c in COLUMNS])
def test_kubectl_get_shows_columns(
    cluster: Any, crds: None, namespace: str, columns: Columns
) -> None:
    """Shows each kind's printer columns, fed by spec and by the status fields the operator
    writes (liveVersion, gatesSummary, rollout.phase, phase, artifact.verified, stages,
    runs.total, bestRun.name)."""
    _write_statuses(cluster, namespace)
    output = cluster.kubectl("get", columns.resource, columns.name, "-n", namespace).stdout
    header, row = output.splitlines()
    assert header.split() == columns.header
    assert row.split()[: len(columns.cells)] == columns.cells


def test_kubectl_get_modelplane_lists_all_four_kinds(
    cluster: Any, crds: None, namespace: str
) -> None:
    """Lists every kind under the modelplane category, and the short names resolve."""
    cluster.kubectl("apply", "-n", namespace, *STORY_FILES)
    names = cluster.kubectl("get", "modelplane", "-n", namespace, "-o", "name").stdout.split()
    assert {n.split("/")[0] for n in names} == {
        "experiment.modelplane.io",
        "run.modelplane.io",
        "modelversion.modelplane.io",
        "modelstage.modelplane.io",
    }
    short = cluster.kubectl("get", "exp,run,mv,ms", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(short) == sorted(names)


def test_kubectl_explain_teaches_the_gates(cluster: Any, crds: None) -> None:
    """Explains spec.gates and its fields from the models' descriptions."""
    gates = cluster.kubectl("explain", "modelstage.spec.gates").stdout
    assert "Conditions a version must meet before it goes live here." in gates
    for line in (
        "metrics\t<[]Object>",
        "requireStage\t<Object>",
        "approvals\t<Object>",
        "An earlier stage the version must have been live in.",
    ):
        assert line in gates
    metrics = cluster.kubectl("explain", "modelstage.spec.gates.metrics").stdout
    assert "op\t<string> -required-" in metrics
    assert "Comparison: >=, >, <=, < or ==." in metrics
