"""The chart and the kustomize base against a real API server: server-side dry runs, Pod
Security admission, and real installs whose operator pod the (kwok) cluster admits and runs.

The pods run on kwok's fake nodes, so no image is pulled: these tests check what the API server
accepts and what the controllers make of it, not the operator inside the pod (test_rbac_cluster
runs the operator itself with the chart's account, test_webhook_cert_cluster its webhooks).

No cert-manager runs here. Where its CRDs are missing, stand-ins that accept any spec let the
API server take the chart's Issuers and Certificates (their fields are checked in
test_chart.py, not against cert-manager's schema), and the test writes the Secret that
cert-manager would issue.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from modelplane.operator.webhookcerts import generate_certificates
from modelplane.operator.webhooks import WebhookConfig

from .conftest import CHART, MANIFESTS, Tools, find, one

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


WEBHOOK_CONFIGURATIONS = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")


def stand_in_crd(kind: str, plural: str) -> dict[str, Any]:
    """A CRD of cert-manager's group and kind that accepts any spec (cert-manager's own CRDs
    are not part of this repository)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.cert-manager.io"},
        "spec": {
            "group": "cert-manager.io",
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture
def cert_manager_crds(cluster: Any) -> Iterator[None]:
    """cert-manager's Issuer and Certificate kinds: the cluster's own, or stand-ins removed
    after the test."""
    names = ("issuers.cert-manager.io", "certificates.cert-manager.io")
    present = cluster.kubectl("get", "crd", *names, "--ignore-not-found", "-o=name").stdout
    if len(present.split()) == len(names):
        yield
        return
    crds = [stand_in_crd("Issuer", "issuers"), stand_in_crd("Certificate", "certificates")]
    cluster.kubectl("apply", "--server-side", "-f", "-", input=stream(crds))
    cluster.kubectl("wait", "--for=condition=Established", *(f"crd/{n}" for n in names))
    yield
    cluster.kubectl("delete", "crd", *names, "--ignore-not-found")


def issue_as_cert_manager(
    cluster: Any, namespace: str, service: str, secret: str, directory: Path
) -> None:
    """The Secret cert-manager would issue for the webhook Service: tls.crt, tls.key, ca.crt."""
    hosts = WebhookConfig.of("service", None, f"{namespace}/{service}").hosts()
    certs = generate_certificates(hosts, directory)
    data = {
        "tls.crt": certs.certfile.read_bytes(),
        "tls.key": certs.keyfile.read_bytes(),
        "ca.crt": certs.ca_pem,
    }
    k8s.CoreV1Api(cluster.api_client()).create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": secret},
            "type": "kubernetes.io/tls",
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        },
    )


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


def apply_peering_crds(cluster: Any) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(CHART / "crds" / "kopf.dev_peerings.yaml"))
    cluster.kubectl(
        "wait",
        "--for=condition=Established",
        "crd/kopfpeerings.kopf.dev",
        "crd/clusterkopfpeerings.kopf.dev",
    )


def test_replicas_and_cert_manager_pass_server_dry_run(
    cluster: Any, crds: None, cert_manager_crds: None, tools: Tools, restricted_namespace: str
) -> None:
    """Several replicas (peering, PodDisruptionBudget, anti-affinity, the webhook Secret and
    configurations), with Helm's certificate or cert-manager's, are accepted as a whole with
    no warning."""
    apply_peering_crds(cluster)
    for values in (
        {"replicas": 2},
        {
            "replicas": 3,
            "watchNamespaces": [restricted_namespace],
            "webhook": {"certManager": {"enabled": True}},
        },
    ):
        objs = tools.helm_template(
            values, release=f"dry-{restricted_namespace}", namespace=restricted_namespace
        )
        assert find(objs, "PodDisruptionBudget")
        assert find(objs, "ValidatingWebhookConfiguration")
        stderr = dry_run(cluster, stream(objs))
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
    apply_peering_crds(cluster)
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


def test_kustomize_base_installs_and_its_pod_is_admitted(
    cluster: Any, crds: None, cert_manager_crds: None, tmp_path: Path
) -> None:
    """What `kubectl apply -k manifests/default` applies, as documented: the restricted
    namespace admits the operator's pod, which starts once the certificate's Secret exists,
    and the Deployment becomes available. Cluster-wide objects are removed after (the CRDs
    stay: the session's other tests use them). A server-side dry run cannot stand in here: the
    namespace it would create does not exist for the objects in it.

    The webhook configurations get a server-side dry run only: nothing serves them here, and
    their fail-closed webhooks would refuse every ModelStage write in the cluster meanwhile."""
    built = yaml.safe_load_all(cluster.kubectl("kustomize", str(MANIFESTS / "default")).stdout)
    objs = [o for o in built if o]
    configurations = [o for o in objs if o["kind"] in WEBHOOK_CONFIGURATIONS]
    assert len(configurations) == 2
    try:
        applied = cluster.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
            input=stream([o for o in objs if o["kind"] not in WEBHOOK_CONFIGURATIONS]),
        )
        assert "Warning" not in applied.stderr, applied.stderr
        assert "Warning" not in dry_run(cluster, stream(configurations))
        certificate = one(objs, "Certificate", "modelplane-webhook")["spec"]
        issue_as_cert_manager(
            cluster, "modelplane-system", "modelplane-webhook", certificate["secretName"], tmp_path
        )
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
        installed = webhook_certificate(cluster, restricted_namespace, release)
        # An upgrade keeps the CA and certificate (lookup), so the caBundle does not change.
        tools.run(
            Path(helm[0]),
            *helm[1:],
            "upgrade",
            release,
            str(CHART),
            "-f",
            str(values),
            "--set=verbose=true",
            "--wait=false",
        )
        assert webhook_certificate(cluster, restricted_namespace, release) == installed
    finally:
        tools.run(Path(helm[0]), *helm[1:], "uninstall", release, "--wait")
    left = cluster.kubectl(
        "get",
        "clusterroles,clusterrolebindings,validatingwebhookconfigurations,"
        "mutatingwebhookconfigurations",
        "-l",
        f"app.kubernetes.io/instance={release}",
        "-o=name",
    ).stdout
    assert left.strip() == ""
    cluster.kubectl("get", "crd/modelversions.modelplane.io")


def webhook_certificate(cluster: Any, namespace: str, release: str) -> tuple[str, ...]:
    """The release's webhook Secret (its ca.crt, tls.crt) and every webhook's caBundle, which
    must be that ca.crt."""
    secret = json.loads(
        cluster.kubectl(
            "-n", namespace, "get", "secret", f"{release}-webhook-tls", "-o=json"
        ).stdout
    )
    bundles = set()
    for kind in ("validatingwebhookconfiguration", "mutatingwebhookconfiguration"):
        configuration = json.loads(cluster.kubectl("get", kind, release, "-o=json").stdout)
        bundles |= {w["clientConfig"]["caBundle"] for w in configuration["webhooks"]}
    assert bundles == {secret["data"]["ca.crt"]}
    return secret["data"]["ca.crt"], secret["data"]["tls.crt"]
