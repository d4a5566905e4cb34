"""The chart's RBAC is enough and no more: the operator runs as the chart's ServiceAccount.

The chart is rendered to watch one namespace with peering on; its ServiceAccount, Roles,
ClusterRole, bindings and KopfPeering are applied for real. A token minted for the account
(`kubectl create token`) goes into a kubeconfig, and `python -m modelplane.operator` runs with
it and with the Deployment's own arguments, webhook included: its port is a free one and its
certificate directory holds a certificate for the chart's Service, made here as the chart's
Secret would be. The operator verifies a ModelVersion and promotes it (a ModelStage whose
serving Deployment rolls out on kwok), `kubectl wait --for=condition=Ready` sees both, and the
account is refused what it must not do, by `can-i` and by real requests with its token: with
the certificate mounted, the operator registers no webhook configuration, and the account may
not write any.

The test works in an `unmanaged-` namespace, which the session's operator leaves alone, so only
this operator works on its objects; its log must also name them and never show a forbidden
request.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from modelplane.api import GROUP, VERSION
from modelplane.localcluster.processes import free_port
from modelplane.operator.webhookcerts import generate_certificates
from modelplane.operator.webhooks import WebhookConfig

from .conftest import CHART, Tools, find, one

pytestmark = pytest.mark.cluster

RELEASE = "modelplane"
FORBIDDEN_MARKS = ("Forbidden", "forbidden", "403", "Not enough permissions")


def apply(cluster: Any, objs: list[dict[str, Any]]) -> None:
    cluster.kubectl("apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(objs))


def token_kubeconfig(cluster: Any, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig for the admin kubeconfig's server that authenticates with a token minted
    for the ServiceAccount."""
    token = cluster.kubectl(
        "-n", namespace, "create", "token", account, "--duration=1h"
    ).stdout.strip()
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    [entry] = admin["clusters"]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [entry],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": account, "context": {"cluster": entry["name"], "user": account}}],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


class OperatorProcess:
    """`python -m modelplane.operator` with given arguments, environment and kubeconfig."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.health = free_port()
        self.args = [
            *args,
            f"--metrics-port={free_port()}",
            f"--liveness=http://127.0.0.1:{self.health}/healthz",
        ]
        self.env = env
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelplane.operator", *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the operator exited at start:\n{self.log()[-3000:]}")
            try:
                url = f"http://127.0.0.1:{self.health}/healthz"
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"the operator did not become live:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def operator_args(deployment: dict[str, Any], cert_dir: Path) -> list[str]:
    """The Deployment's arguments, with a free webhook port (the test picks the other ports),
    and `cert_dir` as the mounted Secret, holding a certificate for the chart's Service."""
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    args = [
        arg for arg in container["args"] if not arg.startswith(("--metrics-port", "--liveness"))
    ]
    [service] = [a.split("=", 1)[1] for a in args if a.startswith("--webhook-service=")]
    certs = generate_certificates(WebhookConfig.of("service", None, service).hosts(), cert_dir)
    (cert_dir / "ca.crt").write_bytes(certs.ca_pem)
    replaced = {"--webhook-port": str(free_port()), "--webhook-cert-dir": str(cert_dir)}
    result = []
    for arg in args:
        name = arg.split("=", 1)[0]
        result.append(f"{name}={replaced[name]}" if name in replaced else arg)
    assert "--webhook=service" in result
    assert all(f"{name}={value}" in result for name, value in replaced.items())
    return result


@pytest.fixture
def namespace(unmanaged_namespace: str) -> str:
    """The operator's namespace: one the session operator does not watch."""
    return unmanaged_namespace


@pytest.fixture
def other_namespace(cluster: Any, namespace: str) -> Iterator[str]:
    """A second namespace, outside the operator's watch, holding a Secret."""
    core = k8s.CoreV1Api(cluster.api_client())
    name = f"{namespace[:50]}-other"
    core.create_namespace({"metadata": {"name": name, "labels": {"modelplane.io/test": "true"}}})
    core.create_namespaced_secret(
        name, {"metadata": {"name": "artifact-store"}, "stringData": {"key": "do-not-read"}}
    )
    yield name
    core.delete_namespace(name)


@pytest.fixture
def rendered(tools: Tools, namespace: str) -> list[dict[str, Any]]:
    """The chart for the test's namespace: watching it only, with peering on."""
    return tools.helm_template(
        {"watchNamespaces": [namespace], "peering": {"enabled": True}},
        release=RELEASE,
        namespace=namespace,
        crds=False,
    )


@pytest.fixture
def installed_rbac(
    cluster: Any, crds: None, namespace: str, rendered: list[dict[str, Any]]
) -> Iterator[str]:
    """The rendered account, RBAC and peering object applied; returns the account's name.
    The ClusterRole and ClusterRoleBinding are deleted afterwards (the Roles go with the
    namespace)."""
    cluster.kubectl("apply", "--server-side", "-f", str(CHART / "crds" / "kopf.dev_peerings.yaml"))
    cluster.kubectl("wait", "--for=condition=Established", "crd/kopfpeerings.kopf.dev")
    kinds = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    # Cluster-wide names must not clash between tests: suffix them with the namespace.
    objs = [o for o in rendered if o["kind"] in kinds | {"KopfPeering"}]
    for obj in objs:
        if obj["kind"] == "ClusterRole":
            obj["metadata"]["name"] += f"-{namespace}"
        if obj["kind"] == "ClusterRoleBinding":
            obj["metadata"]["name"] += f"-{namespace}"
            obj["roleRef"]["name"] += f"-{namespace}"
    apply(cluster, objs)
    yield one(rendered, "ServiceAccount")["metadata"]["name"]
    for obj in objs:
        if obj["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
            cluster.kubectl(
                "delete", obj["kind"].lower(), obj["metadata"]["name"], "--ignore-not-found"
            )


def forbidden_lines(log: str) -> str:
    """The lines of an operator log that say a request was forbidden."""
    return "\n".join(line for line in log.splitlines() if any(m in line for m in FORBIDDEN_MARKS))


def can_i(cluster: Any, account: str, verb: str, resource: str, *scope: str) -> bool:
    result = cluster.kubectl(
        "auth", "can-i", verb, resource, f"--as={account}", *scope, check=False
    )
    assert result.stdout.strip() in {"yes", "no"}, result.stderr
    return bool(result.stdout.strip() == "yes")


def test_service_account_may_do_what_the_operator_does_and_nothing_more(
    cluster: Any, namespace: str, other_namespace: str, installed_rbac: str
) -> None:
    """`kubectl auth can-i` as the account: the handlers' verbs yes, Secrets, other
    namespaces and webhook configurations no."""
    account = f"system:serviceaccount:{namespace}:{installed_rbac}"
    here = ("-n", namespace)
    allowed = [
        ("watch", "modelversions.modelplane.io", *here),
        ("patch", "runs.modelplane.io", *here),
        ("patch", "modelstages.modelplane.io", "--subresource=status", *here),
        ("create", "deployments.apps", *here),
        ("update", "deployments.apps", *here),
        ("list", "replicasets.apps", *here),
        ("create", "events", *here),
        ("patch", f"kopfpeerings.kopf.dev/{RELEASE}", *here),
        ("watch", "customresourcedefinitions.apiextensions.k8s.io"),
        ("watch", "namespaces"),
        ("create", "subjectaccessreviews.authorization.k8s.io"),
    ]
    denied = [
        ("get", "secrets", "-n", other_namespace),
        ("get", "secrets", *here),
        ("list", "secrets", "--all-namespaces"),
        ("get", "modelversions.modelplane.io", "-n", other_namespace),
        ("update", "modelversions.modelplane.io", *here),
        ("delete", "runs.modelplane.io", *here),
        ("create", "pods", *here),
        ("create", "modelstages.modelplane.io", *here),
        # The chart owns the webhook configurations; the operator only serves them.
        ("create", "validatingwebhookconfigurations.admissionregistration.k8s.io"),
        ("create", "mutatingwebhookconfigurations.admissionregistration.k8s.io"),
        ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/modelplane.io"),
        ("patch", f"validatingwebhookconfigurations.admissionregistration.k8s.io/{RELEASE}"),
        ("patch", "validatingwebhookconfigurations.admissionregistration.k8s.io/other"),
        ("delete", "validatingwebhookconfigurations.admissionregistration.k8s.io/modelplane.io"),
        ("patch", "kopfpeerings.kopf.dev/someone-else", *here),
        ("create", "customresourcedefinitions.apiextensions.k8s.io"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
        ("impersonate", "serviceaccounts", *here),
    ]
    assert [c for c in allowed if not can_i(cluster, account, *c)] == []
    assert [c for c in denied if can_i(cluster, account, *c)] == []


def make_objects(custom: Any, namespace: str, bucket: str, s3: Any) -> str:
    """A finished run and a ModelVersion of an artifact in the bucket; the version's name."""
    data = b"a model the operator verifies" * 100
    s3.client().put_object(Bucket=bucket, Key="churn/1/model.pkl", Body=data)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "runs",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Run",
            "metadata": {"name": "xgb-001"},
            "spec": {
                "experiment": "churn",
                "params": {"max_depth": "6"},
                "code": {"repository": "https://git.example.com/ml/churn.git", "commit": "a" * 40},
            },
        },
    )
    custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        "runs",
        "xgb-001",
        {"status": {"phase": "Finished", "startTime": now, "endTime": now}},
    )
    name = "churn-v1"
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "modelversions",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelVersion",
            "metadata": {"name": name},
            "spec": {
                "model": "churn",
                "version": 1,
                "run": "xgb-001",
                "artifact": {
                    "uri": f"s3://{bucket}/churn/1/model.pkl",
                    "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                },
            },
        },
    )
    return name


def promote(cluster: Any, custom: Any, namespace: str) -> None:
    """Put churn-v1 into Production with a serving Deployment, and wait until it serves."""
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        namespace,
        "modelstages",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "ModelStage",
            "metadata": {"name": "churn-production"},
            "spec": {
                "model": "churn",
                "stage": "Production",
                "version": 1,
                "serving": {
                    "replicas": 1,
                    "progressDeadlineSeconds": 30,
                    "template": {
                        "metadata": {"labels": {"app": "churn-server"}},
                        "spec": {
                            "containers": [
                                {"name": "server", "image": "registry.example.com/churn:1.0"}
                            ]
                        },
                    },
                },
            },
        },
    )
    wait = cluster.kubectl(
        "-n",
        namespace,
        "wait",
        "--for=condition=Ready",
        "modelstage/churn-production",
        "--timeout=90s",
        timeout=120,
        check=False,
    )
    stage = custom.get_namespaced_custom_object(
        GROUP, VERSION, namespace, "modelstages", "churn-production"
    )
    assert wait.returncode == 0, f"{wait.stderr}\n{stage.get('status')}"
    assert stage["status"]["liveVersion"] == 1
    deployment = k8s.AppsV1Api(cluster.api_client()).read_namespaced_deployment(
        "churn-production", namespace
    )
    [owner] = deployment.metadata.owner_references
    assert (owner.kind, owner.name, owner.controller) == ("ModelStage", "churn-production", True)


def test_operator_as_the_service_account_verifies_and_promotes_a_model_version(
    *,
    cluster: Any,
    namespace: str,
    other_namespace: str,
    installed_rbac: str,
    rendered: list[dict[str, Any]],
    s3: Any,
    bucket: str,
    tmp_path: Path,
) -> None:
    """The operator, authenticated only by the account's token, verifies a ModelVersion,
    finalizes its run and promotes it to Production with a serving Deployment that rolls out;
    `kubectl wait --for=condition=Ready` returns for both; it is never forbidden anything, and
    the same token cannot read a Secret in another namespace."""
    kubeconfig = token_kubeconfig(cluster, namespace, installed_rbac, tmp_path / "sa.kubeconfig")
    whoami = cluster.kubectl(
        "auth", "whoami", "-o=jsonpath={.status.userInfo.username}", kubeconfig=kubeconfig
    ).stdout
    assert whoami == f"system:serviceaccount:{namespace}:{installed_rbac}"

    deployment = one(rendered, "Deployment")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.update(s3.env())
    env.update(KUBECONFIG=str(kubeconfig), POD_ID=f"packaging-test-{secrets.token_hex(3)}")
    cert_dir = tmp_path / "webhook-tls"
    operator = OperatorProcess(operator_args(deployment, cert_dir), env, tmp_path / "operator.log")
    operator.start()
    try:
        custom = k8s.CustomObjectsApi(cluster.api_client())
        name = make_objects(custom, namespace, bucket, s3)
        wait = cluster.kubectl(
            "-n",
            namespace,
            "wait",
            "--for=condition=Ready",
            f"modelversion/{name}",
            "--timeout=60s",
            timeout=90,
            check=False,
        )
        assert wait.returncode == 0, f"{wait.stderr}\n{forbidden_lines(operator.log())}"
        version = custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "modelversions", name
        )
        assert version["status"]["artifact"]["verified"] is True
        assert version["status"]["observedGeneration"] == version["metadata"]["generation"]
        run = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "runs", "xgb-001")
        assert "modelplane.io/referenced-by-model-version" in run["metadata"]["finalizers"]
        promote(cluster, custom, namespace)
        # Peering: this operator keeps its entry in the namespace's KopfPeering alive.
        peering = custom.get_namespaced_custom_object(
            "kopf.dev", "v1", namespace, "kopfpeerings", RELEASE
        )
        assert env["POD_ID"] in peering.get("status", {})
    finally:
        operator.stop()
    log = operator.log()
    # This operator did the work: its log names the run it finalized (by namespace) and the
    # artifact it verified (the bucket is this test's own).
    assert f"{namespace}/xgb-001" in log, log[-3000:]
    assert f"s3://{bucket}/churn/1/model.pkl verified" in log, log[-3000:]
    assert forbidden_lines(log) == ""
    # The webhook was on, with the mounted certificate, and nobody registered configurations.
    assert "serving admission webhooks with the certificate in" in log, log[-3000:]
    assert "Reconfiguring the" not in log

    # The token itself is refused a Secret outside (and inside) the watched namespace.
    for where in (other_namespace, namespace):
        denied = cluster.kubectl(
            "-n", where, "get", "secret", "artifact-store", kubeconfig=kubeconfig, check=False
        )
        assert denied.returncode != 0
        assert "Forbidden" in denied.stderr, denied.stderr
    assert find(rendered, "Role")
