"""The chart and the kustomize base against a real API server: server-side dry runs, Pod
Security admission, and real installs whose operator pod the (kwok) cluster admits and runs.

The pods run on kwok's fake nodes, so no image is pulled: these tests check what the API server
accepts and what the controllers make of it, not the operator inside the pod (test_rbac_cluster
runs the operator itself with the chart's account).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from .conftest import CHART, MANIFESTS, Tools, find

pytestmark = pytest.mark.cluster

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


@pytest.fixture
def restricted_namespace(cluster: Any, namespace: str) -> str:
    """The test's namespace, enforcing and warning about the "restricted" Pod Security level."""
    k8s.CoreV1Api(cluster.api_client()).patch_namespace(
        namespace, {"metadata": {"labels": RESTRICTED}}
    )
    return namespace


def dry_run(cluster: Any, manifests: str) -> str:
    """`kubectl apply --server-side --dry-run=server` of a YAML stream; returns stderr."""
    result = cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--dry-run=server",
        "--field-manager=packaging-test",
        "-f",
        "-",
        input=manifests,
    )
    return str(result.stderr)


def stream(objs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(objs)


def test_helm_output_passes_server_dry_run_without_pod_security_warnings(
    cluster: Any, crds: None, tools: Tools, restricted_namespace: str
) -> None:
    """Every object of the chart (CRDs included, every option on that needs no extra CRD) is
    accepted by the API server, and the pod template raises no "restricted" warning."""
    for values in (
        {},
        {
            "watchNamespaces": [restricted_namespace],
            "s3": {"credentialsSecret": "store", "endpointUrl": "http://minio:9000"},
        },
    ):
        objs = tools.helm_template(
            values, release=f"dry-{restricted_namespace}", namespace=restricted_namespace
        )
        stderr = dry_run(cluster, stream(objs))
        assert "PodSecurity" not in stderr, stderr
        assert "Warning" not in stderr, stderr


def test_pod_security_check_catches_a_pod_that_is_not_restricted(
    cluster: Any, crds: None, tools: Tools, restricted_namespace: str
) -> None:
    """The same dry run warns once the pod may run as root: the check above can fail."""
    objs = tools.helm_template(
        {"podSecurityContext": {"runAsNonRoot": False, "runAsUser": 0}},
        release=f"dry-{restricted_namespace}",
        namespace=restricted_namespace,
    )
    stderr = dry_run(cluster, stream(find(objs, "Deployment")))
    assert 'would violate PodSecurity "restricted' in stderr


def test_peering_objects_apply_once_kopf_crds_exist(
    cluster: Any, tools: Tools, restricted_namespace: str
) -> None:
    """kopf's peering CRDs install from the chart's crds/, then its peering objects apply."""
    cluster.kubectl("apply", "--server-side", "-f", str(CHART / "crds" / "kopf.dev_peerings.yaml"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/kopfpeerings.kopf.dev",
        "crd/clusterkopfpeerings.kopf.dev",
    )
    for values in (
        {"peering": {"enabled": True}},
        {"peering": {"enabled": True}, "watchNamespaces": [restricted_namespace]},
    ):
        objs = tools.helm_template(
            values, release=f"peer-{restricted_namespace}", namespace=restricted_namespace
        )
        peerings = find(objs, "KopfPeering") + find(objs, "ClusterKopfPeering")
        assert peerings
        dry_run(cluster, stream(peerings))


def test_kubectl_kustomize_builds_what_kustomize_builds(cluster: Any, tools: Tools) -> None:
    """The kustomize inside kubectl (`kubectl apply -k`) builds the same stream as ours."""
    embedded = cluster.kubectl("kustomize", str(MANIFESTS / "default")).stdout
    assert embedded == tools.run(tools.kustomize, "build", str(MANIFESTS / "default"))


def _deployment_ready(cluster: Any, namespace: str, name: str) -> None:
    cluster.kubectl(
        "-n", namespace, "rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=120
    )
    pods = json.loads(
        cluster.kubectl(
            "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/component=operator", "-o=json"
        ).stdout
    )["items"]
    assert len(pods) == 1
    [operator] = pods[0]["spec"]["containers"]
    assert operator["securityContext"]["readOnlyRootFilesystem"] is True


def test_kustomize_base_installs_and_its_pod_is_admitted(cluster: Any, crds: None) -> None:
    """`kubectl apply -k manifests/default` as documented: the restricted namespace admits the
    operator's pod and the Deployment becomes available. Cluster-wide objects are removed after
    (the CRDs stay: the session's other tests use them). A server-side dry run cannot stand in
    here: the namespace it would create does not exist for the objects in it."""
    try:
        applied = cluster.kubectl(
            "apply", "--server-side", "--force-conflicts", "-k", str(MANIFESTS / "default")
        )
        assert "Warning" not in applied.stderr, applied.stderr
        _deployment_ready(cluster, "modelplane-system", "modelplane")
    finally:
        cluster.kubectl(
            "delete",
            "namespace/modelplane-system",
            "clusterrole/modelplane",
            "clusterrole/modelplane-cluster",
            "clusterrolebinding/modelplane",
            "clusterrolebinding/modelplane-cluster",
            "--ignore-not-found",
            # Wait, so that a next run does not meet a namespace still terminating.
            "--timeout=90s",
            timeout=120,
        )


def test_helm_install_and_uninstall(
    cluster: Any, crds: None, tools: Tools, restricted_namespace: str, tmp_path: Path
) -> None:
    """`helm install` into a restricted namespace (watching it only) runs the operator's pod;
    `helm uninstall` removes the release's objects and keeps the CRDs."""
    # A release name holding the chart's name is the objects' name too.
    release = f"modelplane-{secrets.token_hex(3)}"
    helm = (
        str(tools.helm),
        f"--kubeconfig={cluster.kubeconfig}",
        f"--namespace={restricted_namespace}",
    )
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"watchNamespaces": [restricted_namespace]}))
    tools.run(
        Path(helm[0]), *helm[1:], "install", release, str(CHART), "-f", str(values), "--wait=false"
    )
    try:
        _deployment_ready(cluster, restricted_namespace, release)
        roles = cluster.kubectl("-n", restricted_namespace, "get", "roles", "-o=name").stdout
        assert f"role.rbac.authorization.k8s.io/{release}" in roles.split()
    finally:
        tools.run(Path(helm[0]), *helm[1:], "uninstall", release, "--wait")
    left = cluster.kubectl(
        "get",
        "clusterroles,clusterrolebindings",
        "-l",
        f"app.kubernetes.io/instance={release}",
        "-o=name",
    ).stdout
    assert left.strip() == ""
    cluster.kubectl("get", "crd/modelversions.modelplane.io")
