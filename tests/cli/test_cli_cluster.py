"""The read commands, `approve` and `fetch` against a real API server and MinIO.

Objects are created in an unmanaged namespace (the session operator leaves it alone) and their
status, which the operator would own, is written by hand, so each test knows exactly what the
commands must print. The commands run in-process through `main([...])` with `--kubeconfig`,
and once each as the installed `modelplane` console script and as a kubectl plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_objects import (
    ARTIFACT_DIGEST,
    COMMIT,
    TRAIN_DIGEST,
    experiment,
    lineage_status,
    model_stage,
    model_version,
    run,
    summary,
)
from kubernetes import client as k8s

from modelplane.api import GROUP, VERSION
from modelplane.cli.main import main
from modelplane.core.approvals import approval_key
from modelplane.localcluster.processes import free_port
from modelplane.store import LocalStore, file_uri

pytestmark = pytest.mark.cluster

SCRIPTS = Path(sys.executable).parent

Cli = Callable[..., tuple[int, str, str]]


def create(cluster: Any, namespace: str, obj: dict[str, Any]) -> None:
    """Create `obj`, then write its status (the status subresource ignores it on create)."""
    api = k8s.CustomObjectsApi(cluster.api_client())
    plural = obj["kind"].lower() + "s"
    body = {k: v for k, v in obj.items() if k != "status"}
    body["metadata"] = {
        k: v for k, v in obj["metadata"].items() if k in ("name", "labels", "annotations")
    }
    api.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
    if obj.get("status"):
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, obj["metadata"]["name"], {"status": obj["status"]}
        )


@pytest.fixture
def cli(cluster: Any, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Runs `modelplane ARGS --kubeconfig ...` in-process: (exit code, stdout, stderr)."""

    def invoke(*args: str, kubeconfig: Path | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*args, "--kubeconfig", str(kubeconfig or cluster.kubeconfig)])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


RUNS = {
    "xgb-1": ({"learning_rate": "0.1", "max_depth": "6"}, 0.81, 0.30),
    "xgb-2": ({"learning_rate": "0.05", "max_depth": "6"}, 0.87, 0.21),
    "xgb-3": ({"learning_rate": "0.01", "max_depth": "8"}, 0.84, 0.25),
}


@pytest.fixture(scope="module")
def registry(cluster: Any, crds: None) -> Iterator[str]:
    """An experiment with three runs and a fourth elsewhere, two versions of churn-model (v2
    with a lineage snapshot, verified and live in Production), and two stages.

    Shared by the module's read-only tests, in a namespace of its own that the session
    operator does not watch (the `unmanaged-` prefix of tests/conftest.py).
    """
    ns = f"unmanaged-cli-registry-{secrets.token_hex(3)}"
    core = k8s.CoreV1Api(cluster.api_client())
    core.create_namespace({"metadata": {"name": ns, "labels": {"modelplane.io/test": "true"}}})
    create(cluster, ns, experiment("churn", metric="val_auc", goal="maximize"))
    for name, (params, auc, loss) in RUNS.items():
        metrics = {"val_auc": summary(auc, step=99, low=0.5), "loss": summary(loss)}
        create(cluster, ns, run(name, params=params, metrics=metrics))
    create(cluster, ns, run("other-1", experiment="other", metrics={"val_auc": summary(0.99)}))
    create(cluster, ns, model_version("churn-model", 1, run="xgb-1"))
    second = model_version("churn-model", 2, run="xgb-2")
    snapshot_source = run("xgb-2", params=RUNS["xgb-2"][0], metrics={"val_auc": summary(0.87)})
    second["status"] = {
        "lineage": lineage_status(snapshot_source),
        "artifact": {"verified": True, "size": 2048, "digest": ARTIFACT_DIGEST},
        "stages": ["Production"],
    }
    create(cluster, ns, second)
    production = model_stage("churn-model", "Production", 2)
    production["status"] = {"liveVersion": 2, "previousVersion": 1}
    create(cluster, ns, production)
    create(cluster, ns, model_stage("churn-model", "Staging", 2))
    yield ns
    core.delete_namespace(ns)


def test_runs_list_sorts_by_a_metric_and_shows_it(cli: Cli, registry: str) -> None:
    code, out, _ = cli(
        "runs", "list", "-n", registry, "--experiment", "churn", "--sort-by", "val_auc"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "EXPERIMENT", "PHASE", "PARENT", "VAL_AUC", "AGE"]
    assert [line.split()[:5] for line in lines[1:]] == [
        ["xgb-2", "churn", "Finished", "<none>", "0.87"],
        ["xgb-3", "churn", "Finished", "<none>", "0.84"],
        ["xgb-1", "churn", "Finished", "<none>", "0.81"],
    ]
    code, out, _ = cli("runs", "list", "-n", registry, "--sort-by", "loss", "--asc", "-o", "json")
    assert code == 0
    records = json.loads(out)
    assert [r["name"] for r in records] == ["xgb-2", "xgb-3", "xgb-1", "other-1"]
    assert records[0]["metrics"] == {"loss": 0.21, "val_auc": 0.87}
    code, out, _ = cli("runs", "list", "-n", registry, "-e", "other", "-o", "yaml")
    assert code == 0
    assert [r["name"] for r in yaml.safe_load(out)] == ["other-1"]


def test_runs_show_prints_the_record_and_json_is_the_object(cli: Cli, registry: str) -> None:
    code, out, _ = cli("runs", "show", "xgb-3", "-n", registry)
    assert code == 0
    assert f"Commit:      {COMMIT}" in out
    assert "  learning_rate   0.01" in out
    assert "  val_auc   0.84   99     0.5" in out
    code, out, _ = cli("runs", "show", "xgb-3", "-n", registry, "-o", "json")
    obj = json.loads(out)
    assert (obj["kind"], obj["metadata"]["name"], obj["status"]["phase"]) == (
        "Run",
        "xgb-3",
        "Finished",
    )
    assert "managedFields" not in obj["metadata"]


def test_runs_compare_marks_what_differs(cli: Cli, registry: str) -> None:
    code, out, _ = cli("runs", "compare", "xgb-1", "xgb-2", "xgb-3", "-n", registry)
    assert code == 0
    lines = out.splitlines()
    assert lines[lines.index("  PARAM           xgb-1   xgb-2   xgb-3") + 1 :][:2] == [
        "* learning_rate   0.1     0.05    0.01",
        "* max_depth       6       6       8",
    ]
    assert ["experiment", "churn", "churn", "churn"] in [line.split() for line in lines]
    code, out, _ = cli("runs", "compare", "xgb-1", "xgb-2", "-n", registry, "-o", "yaml")
    data = yaml.safe_load(out)
    depth = next(p for p in data["params"] if p["name"] == "max_depth")
    assert depth == {"name": "max_depth", "values": {"xgb-1": "6", "xgb-2": "6"}, "differs": False}


def test_models_list_and_versions(cli: Cli, registry: str) -> None:
    code, out, _ = cli("models", "list", "-n", registry)
    assert code == 0
    assert out.splitlines() == [
        "MODEL         LATEST   VERSIONS   STAGES",
        "churn-model   2        2          Production=2, Staging=<none> (desired 2)",
    ]
    code, out, _ = cli("models", "list", "-n", registry, "-o", "json")
    assert json.loads(out)[0]["stages"][0] == {
        "stage": "Production",
        "desiredVersion": 2,
        "liveVersion": 2,
    }
    code, out, _ = cli("models", "versions", "churn-model", "-n", registry)
    assert code == 0
    assert [line.split()[:5] for line in out.splitlines()] == [
        ["VERSION", "NAME", "RUN", "VERIFIED", "STAGES"],
        ["2", "churn-model-v2", "xgb-2", "true", "Production"],
        ["1", "churn-model-v1", "xgb-1", "<none>", "<none>"],
    ]


def test_lineage_prints_the_snapshot_as_a_tree(cli: Cli, registry: str) -> None:
    code, out, _ = cli("lineage", "churn-model", "2", "-n", registry)
    assert code == 0
    lines = out.splitlines()
    assert lines[:4] == [
        "churn-model v2 (ModelVersion churn-model-v2)",
        "├── run xgb-2 (Finished)",
        "│   ├── experiment churn (objective: maximize val_auc)",
        f"│   ├── code https://git.example.com/ml/churn.git@{COMMIT} (clean, path train.py)",
    ]
    assert f"│   │   └── train s3://datasets/churn/train.parquet {TRAIN_DIGEST}" in lines
    assert "│   │   ├── learning_rate = 0.05" in lines
    assert "│   │   └── val_auc = 0.87 (step 9, min 0.87, max 0.87, 10 values)" in lines
    assert "├── artifact s3://models/churn-model/2/" in lines
    assert "│   └── verified true (2048 bytes)" in lines
    assert "└── stages Production" in lines
    assert lines[-1] == "lineage: snapshot recorded at 2025-03-01T12:06:00Z (status.lineage)"
    code, out, _ = cli("lineage", "churn-model", "2", "-n", registry, "-o", "json")
    data = json.loads(out)
    assert data["lineageSource"] == "snapshot"
    assert data["params"] == {"learning_rate": "0.05", "max_depth": "6"}
    assert (
        yaml.safe_load(cli("lineage", "churn-model", "2", "-n", registry, "-o", "yaml")[1]) == data
    )


def test_lineage_without_a_snapshot_reads_the_run_and_says_so(cli: Cli, registry: str) -> None:
    code, out, _ = cli("lineage", "churn-model", "1", "-n", registry)
    assert code == 0
    assert "│   │   ├── learning_rate = 0.1" in out
    assert "no snapshot in status yet; read from Run xgb-1 as it is now" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["runs", "show", "nope"], "Run nope not found in namespace"),
        (["runs", "compare", "xgb-1", "nope"], "Run nope not found in namespace"),
        (["lineage", "churn-model", "9"], "model churn-model has no version 9 in namespace"),
        (["models", "versions", "nope"], "model nope has no versions in namespace"),
    ],
)
def test_a_missing_object_exits_3_with_a_clear_message(
    cli: Cli, registry: str, argv: list[str], message: str
) -> None:
    code, out, err = cli(*argv, "-n", registry)
    assert code == 3
    assert out == ""
    assert err.startswith(f"error: {message} {registry}")


def test_the_namespace_defaults_to_the_kubeconfig_contexts(
    cli: Cli, cluster: Any, registry: str, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    shutil.copy(cluster.kubeconfig, kubeconfig)
    cluster.kubectl(
        "config", "set-context", "--current", f"--namespace={registry}", kubeconfig=kubeconfig
    )
    code, out, _ = cli("runs", "list", "-o", "json", kubeconfig=kubeconfig)
    assert code == 0
    assert {r["namespace"] for r in json.loads(out)} == {registry}


def test_the_kubectl_plugin_and_the_console_script_exit_codes(cluster: Any, registry: str) -> None:
    env = {
        **os.environ,
        "KUBECONFIG": str(cluster.kubeconfig),
        "PATH": f"{SCRIPTS}:{os.environ['PATH']}",
    }

    def run_command(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=120, check=False
        )

    # kubectl finds kubectl-modelplane on PATH; flags must follow the plugin's name.
    plugin = run_command(str(cluster.kubectl_path), "modelplane", "models", "list", "-n", registry)
    assert plugin.returncode == 0, plugin.stderr
    assert plugin.stdout.splitlines()[1].split()[:3] == ["churn-model", "2", "2"]
    missing = run_command(str(SCRIPTS / "modelplane"), "runs", "show", "nope", "-n", registry)
    assert missing.returncode == 3
    assert missing.stderr.startswith("error: Run nope not found")


# -- approve ------------------------------------------------------------------------------------


def grant(cluster: Any, namespace: str, user: str, verbs: list[str]) -> None:
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": f"{user}-stages", "namespace": namespace},
        "rules": [{"apiGroups": ["modelplane.io"], "resources": ["modelstages"], "verbs": verbs}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"{user}-stages", "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": f"{user}-stages",
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}),
    )


def stage_annotations(cluster: Any, namespace: str, name: str) -> dict[str, str]:
    out = cluster.kubectl("get", "modelstage", name, "-n", namespace, "-o", "json").stdout
    return json.loads(out)["metadata"].get("annotations") or {}


def test_approve_writes_the_authenticated_users_annotation(
    cli: Cli, cluster: Any, crds: None, unmanaged_namespace: str
) -> None:
    ns = unmanaged_namespace
    create(cluster, ns, model_stage("churn-model", "Production", 2, approvals=1))
    grant(cluster, ns, "bob", ["get", "patch", "approve"])
    bob = cluster.user_kubeconfig("bob", ("ml-approvers",))
    code, out, err = cli(
        "approve",
        "churn-model",
        "Production",
        "2",
        "--comment",
        "holdout AUC 0.87",
        "-n",
        ns,
        kubeconfig=bob,
    )
    assert code == 0, err
    assert out.strip() == (
        "modelstage churn-model-production: bob approved version 2 of churn-model for "
        "Production; approvals: 1 of 1 required"
    )
    annotations = stage_annotations(cluster, ns, "churn-model-production")
    value = json.loads(annotations[approval_key("bob")])
    assert {k: value[k] for k in ("user", "version", "comment")} == {
        "user": "bob",
        "version": 2,
        "comment": "holdout AUC 0.87",
    }
    assert "at" in value


def test_approve_refuses_a_version_that_is_not_desired(
    cli: Cli, cluster: Any, crds: None, unmanaged_namespace: str
) -> None:
    ns = unmanaged_namespace
    create(cluster, ns, model_stage("churn-model", "Production", 2))
    code, _, err = cli("approve", "churn-model", "Production", "1", "-n", ns)
    assert code == 1
    assert "asks for version 2 (spec.version), not 1" in err
    assert not any(
        k.startswith("approval.") for k in stage_annotations(cluster, ns, "churn-model-production")
    )
    code, _, err = cli("approve", "churn-model", "Staging", "1", "-n", ns)
    assert code == 3
    assert "ModelStage churn-model-staging not found" in err


def test_approve_reports_the_api_servers_refusal_verbatim(
    cli: Cli, cluster: Any, crds: None, unmanaged_namespace: str
) -> None:
    ns = unmanaged_namespace
    create(cluster, ns, model_stage("churn-model", "Production", 2))
    grant(cluster, ns, "eve", ["get"])
    code, _, err = cli(
        "approve",
        "churn-model",
        "Production",
        "2",
        "-n",
        ns,
        kubeconfig=cluster.user_kubeconfig("eve"),
    )
    assert code == 1
    assert err.strip() == (
        "error: the API server refused the change of churn-model-production: "
        'modelstages.modelplane.io "churn-model-production" is forbidden: User "eve" cannot '
        f'patch resource "modelstages" in API group "modelplane.io" in the namespace "{ns}"'
    )


# -- fetch --------------------------------------------------------------------------------------


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store_env(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)


def fetch(*args: str) -> int:
    return main(["fetch", *args])


def test_fetch_downloads_a_file_and_checks_its_digest(
    s3: Any, bucket: str, store_env: None, tmp_path: Path
) -> None:
    s3.client().put_object(Bucket=bucket, Key="churn/3/model.pkl", Body=b"weights")
    uri = f"s3://{bucket}/churn/3/model.pkl"
    good = tmp_path / "good"
    assert fetch(uri, str(good), "--digest", sha256(b"weights")) == 0
    assert (good / "model.pkl").read_bytes() == b"weights"
    bad = tmp_path / "bad"
    assert fetch(uri, str(bad), "--digest", sha256(b"other")) == 1
    assert not bad.exists()
    assert fetch(f"s3://{bucket}/churn/4/model.pkl", str(tmp_path / "none")) == 3


def test_fetch_downloads_a_directory_and_checks_its_manifest_digest(
    s3: Any, bucket: str, store_env: None, tmp_path: Path
) -> None:
    files = {
        "MLmodel": b"flavor: sklearn\n",
        "data/model.pkl": b"weights",
        "data/extra.json": b"{}",
    }
    source = tmp_path / "source"
    for relative, content in files.items():
        s3.client().put_object(Bucket=bucket, Key=f"churn/3/{relative}", Body=content)
        (source / relative).parent.mkdir(parents=True, exist_ok=True)
        (source / relative).write_bytes(content)
    # Computed by another backend from local files: the digest the operator verifies against.
    digest = str(LocalStore().digest(file_uri(source, directory=True)).digest)
    uri = f"s3://{bucket}/churn/3/"
    dest = tmp_path / "models"
    dest.mkdir()
    assert fetch(uri, str(dest), "--digest", digest) == 0
    assert {str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()} == set(files)
    assert (dest / "data" / "model.pkl").read_bytes() == b"weights"
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    assert fetch(uri, str(wrong), "--digest", sha256(b"not the manifest")) == 1
    assert list(wrong.iterdir()) == []


# -- operator -----------------------------------------------------------------------------------


def test_the_operator_command_runs_the_operator(
    cluster: Any, crds: None, s3: Any, unmanaged_namespace: str, tmp_path: Path
) -> None:
    port = free_port()
    log = tmp_path / "operator.log"
    env = {**os.environ, **s3.env(), "KUBECONFIG": str(cluster.kubeconfig)}
    command = [
        str(SCRIPTS / "modelplane"),
        "operator",
        "-n",
        unmanaged_namespace,
        "--metrics-port=0",
        f"--liveness=http://127.0.0.1:{port}/healthz",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 90
        while not live(port):
            assert process.poll() is None, f"the operator exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not live in 90s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=60)


def live(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
