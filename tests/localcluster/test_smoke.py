"""The harness is real: a control plane that schedules, rolls out and fails, and an S3 store."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from modelplane.localcluster.cluster import NEVER_READY_LABEL

pytestmark = pytest.mark.cluster


def _deployment(name: str, replicas: int, labels: dict[str, str], deadline: int) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "progressDeadlineSeconds": deadline,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name, **labels}},
                    "spec": {"containers": [{"name": "serve", "image": "example.com/serve:1"}]},
                },
            },
        }
    )


def _get(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json").stdout
    result: dict[str, Any] = json.loads(out)
    return result


def test_control_plane_reports_the_pinned_version(cluster: Any) -> None:
    """kubectl and the API server report the release they were built from, not v0.0.0."""
    versions = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert versions["clientVersion"]["gitVersion"] == "v1.35.4"
    assert versions["serverVersion"]["gitVersion"] == "v1.35.4"


def test_deployment_becomes_available_on_kwok_nodes(cluster: Any, namespace: str) -> None:
    """Controller-manager, scheduler and kwok together make a Deployment fully available."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=_deployment("web", 3, {}, 60))
    cluster.kubectl(
        "wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=90s"
    )
    status = _get(cluster, namespace, "deployment", "web")["status"]
    assert status["availableReplicas"] == 3
    assert status["readyReplicas"] == 3
    pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)
    assert len(pods["items"]) == 3
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods["items"])


def test_never_ready_pods_exceed_the_progress_deadline(cluster: Any, namespace: str) -> None:
    """Pods with the never-ready label run but never turn Ready: the rollout fails."""
    manifest = _deployment("broken", 2, {NEVER_READY_LABEL: "true"}, 5)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=manifest)
    deadline = time.monotonic() + 90
    reason = None
    while time.monotonic() < deadline:
        status = _get(cluster, namespace, "deployment", "broken").get("status", {})
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        reason = conditions.get("Progressing", {}).get("reason")
        if reason == "ProgressDeadlineExceeded":
            break
        time.sleep(1)
    assert reason == "ProgressDeadlineExceeded"
    assert status.get("availableReplicas", 0) == 0
    pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)
    phases = {p["status"].get("phase") for p in pods["items"]}
    assert phases == {"Running"}


def test_users_authenticate_by_client_certificate(cluster: Any) -> None:
    """Each test user is a distinct authenticated identity with its groups."""
    kubeconfig = cluster.user_kubeconfig("alice", ("ml-approvers",))
    review = json.loads(
        cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig).stdout
    )
    assert review["status"]["userInfo"]["username"] == "alice"
    assert "ml-approvers" in review["status"]["userInfo"]["groups"]
    denied = cluster.kubectl("get", "secrets", "-n", "default", kubeconfig=kubeconfig, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr


def test_s3_store_round_trips_an_object(s3: Any, bucket: str) -> None:
    """The S3-compatible store keeps what boto3 writes."""
    client = s3.client()
    body = b"model weights " * 1000
    client.put_object(Bucket=bucket, Key="churn/1/model.bin", Body=body)
    got = client.get_object(Bucket=bucket, Key="churn/1/model.bin")
    assert got["Body"].read() == body
    assert got["ContentLength"] == len(body)
