"""The chart's webhook configurations, served by an operator with a mounted certificate.

The operator runs as the chart runs it (`--webhook=service --webhook-cert-dir=...`) on a free
port, with a CA and serving certificate laid out as the kubelet mounts a Secret (`..data`
swapped by a symlink rename). The API server here cannot reach a Service, so the chart's
webhook configurations are applied with their `clientConfig.service` replaced by the URL of
that port, and the certificate names 127.0.0.1 besides the Service's names; everything else
(names, rules, paths, failure policies, the namespace selector) is the chart's.

The API server then calls the operator: the mutating webhook stamps who asked for a version,
the validating one refuses a version that does not exist. The certificate is renewed with a
new CA while the operator runs: once the caBundle follows, the API server is served again
within the operator's re-read interval, with no restart.
"""

from __future__ import annotations

import base64
import itertools
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s

from modelplane.api import GROUP, VERSION
from modelplane.core.approvals import REQUESTED_BY_ANNOTATION
from modelplane.localcluster.processes import free_port
from modelplane.operator.webhookcerts import CERT_CHECK_INTERVAL, generate_certificates
from modelplane.operator.webhooks import WebhookConfig, delete_configurations
from tests.waiting import wait_for

from .conftest import Tools, one
from .test_rbac_cluster import OperatorProcess

pytestmark = pytest.mark.cluster

KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
STAGE = "churn-production"


def mount_secret(volume: Path, hosts: list[str]) -> bytes:
    """A new CA and serving certificate, swapped into `volume` as the kubelet updates a Secret
    volume: files in a fresh directory, `..data` renamed onto it, stable symlinks to
    `..data/<key>`. Returns the CA's PEM."""
    stamp = f"..{time.monotonic_ns()}"
    certs = generate_certificates(hosts, volume / stamp)
    (volume / stamp / "ca.crt").write_bytes(certs.ca_pem)
    link = volume / f"..data_tmp{secrets.token_hex(3)}"
    link.symlink_to(stamp)
    link.replace(volume / "..data")
    for key in ("tls.crt", "tls.key", "ca.crt"):
        if not (volume / key).is_symlink():
            (volume / key).symlink_to(Path("..data") / key)
    return certs.ca_pem


def url_configurations(
    tools: Tools, namespace: str, name: str, port: int, ca_pem: bytes
) -> list[dict[str, Any]]:
    """The chart's two webhook configurations for `namespace`, named `name`, calling
    https://127.0.0.1:<port><path> instead of the Service."""
    rendered = tools.helm_template({"watchNamespaces": [namespace]}, namespace=namespace)
    configurations = [one(rendered, kind) for kind in KINDS]
    for configuration in configurations:
        configuration["metadata"] = {"name": name}
        for webhook in configuration["webhooks"]:
            path = webhook["clientConfig"]["service"]["path"]
            webhook["clientConfig"] = {
                "url": f"https://127.0.0.1:{port}{path}",
                "caBundle": base64.b64encode(ca_pem).decode(),
            }
    return configurations


def register(cluster: Any, configuration: dict[str, Any]) -> None:
    admission = k8s.AdmissionregistrationV1Api(cluster.api_client())
    name = configuration["metadata"]["name"]
    if configuration["kind"] == "MutatingWebhookConfiguration":
        read, create = (
            admission.read_mutating_webhook_configuration,
            admission.create_mutating_webhook_configuration,
        )
        replace = admission.replace_mutating_webhook_configuration
    else:
        read, create = (
            admission.read_validating_webhook_configuration,
            admission.create_validating_webhook_configuration,
        )
        replace = admission.replace_validating_webhook_configuration
    try:
        existing = read(name)
    except k8s.ApiException as exc:
        if exc.status != 404:
            raise
        create(configuration)
        return
    configuration["metadata"]["resourceVersion"] = existing.metadata.resource_version
    replace(name, configuration)


@pytest.fixture
def configuration_name(cluster: Any, unmanaged_namespace: str) -> Iterator[str]:
    """The name of the test's webhook configurations; they are deleted afterwards."""
    name = f"certdir-{unmanaged_namespace}"[:63]
    yield name
    delete_configurations(cluster.api_client(), name)


def stage(version: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelStage",
        "metadata": {"name": STAGE},
        "spec": {"model": "churn", "stage": "Production", "version": version},
    }


class Promotions:
    """Changes of the stage's spec.version, each to a version not tried before (a write the
    webhooks let through makes the next one a change again), all to versions that do not
    exist."""

    def __init__(self, custom: Any, namespace: str) -> None:
        self.custom, self.namespace = custom, namespace
        self.versions = itertools.count(2)
        self.last = ""

    def refused_as_missing(self) -> bool:
        """Whether the next promotion is refused by the gates webhook for its missing version
        (and not admitted, nor refused for a webhook the API server could not call)."""
        version = next(self.versions)
        try:
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "modelstages", STAGE, {"spec": {"version": version}}
            )
        except k8s.ApiException as exc:
            self.last = str(exc.body)
            return f"version {version} of churn does not exist" in self.last
        self.last = f"version {version} admitted"
        return False


def test_the_operator_serves_the_charts_webhooks_with_a_mounted_certificate_and_reloads_it(
    *,
    cluster: Any,
    crds: None,
    tools: Tools,
    unmanaged_namespace: str,
    configuration_name: str,
    tmp_path: Path,
) -> None:
    namespace = unmanaged_namespace
    port = free_port()
    config = WebhookConfig.of("service", port, f"{namespace}/modelplane-webhook")
    hosts = ["127.0.0.1", *config.hosts()]
    volume = tmp_path / "webhook-tls"
    volume.mkdir()
    ca = mount_secret(volume, hosts)

    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.update(KUBECONFIG=str(cluster.kubeconfig))
    operator = OperatorProcess(
        [
            f"--namespace={namespace}",
            "--webhook=service",
            f"--webhook-port={port}",
            f"--webhook-service={namespace}/modelplane-webhook",
            f"--webhook-cert-dir={volume}",
        ],
        env,
        tmp_path / "operator.log",
    )
    operator.start()
    try:
        custom = k8s.CustomObjectsApi(cluster.api_client())
        mutating, validating = url_configurations(tools, namespace, configuration_name, port, ca)
        # The mutating webhook alone first: the stage is created (version 1 does not exist)
        # and stamped with who asked for it.
        register(cluster, mutating)
        created = wait_for(
            lambda: custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "modelstages", stage(1)
            ),
            timeout=30,
            message="the ModelStage admitted through the stamp webhook",
            ignore=(k8s.ApiException,),
        )
        requested_by = created["metadata"]["annotations"][REQUESTED_BY_ANNOTATION]
        assert requested_by, created["metadata"]

        register(cluster, validating)
        promotions = Promotions(custom, namespace)
        wait_for(
            promotions.refused_as_missing,
            timeout=30,
            message="the gates webhook refusing a missing version",
        )

        # Renewal with a new CA: the volume changes, then the caBundle follows (cainjector).
        new_ca = mount_secret(volume, hosts)
        for configuration in (mutating, validating):
            for webhook in configuration["webhooks"]:
                webhook["clientConfig"]["caBundle"] = base64.b64encode(new_ca).decode()
            register(cluster, configuration)
        started = time.monotonic()
        wait_for(
            promotions.refused_as_missing,
            timeout=CERT_CHECK_INTERVAL + 20,
            message="the webhooks served with the renewed certificate",
        )
        reloaded = time.monotonic() - started
        # Until the operator re-read the volume, the API server (trusting only the new CA)
        # could not call it; the failure it reported then is the fail-closed stamp webhook's.
        assert operator.process is not None
        assert operator.process.poll() is None, "the operator restarted"
        print(f"\n[timings] served with the renewed certificate after {reloaded:.1f}s")
    finally:
        operator.stop()
    log = operator.log()
    assert "reloaded the admission webhooks' certificate" in log, log[-3000:]
    # The operator never touched a webhook configuration: the installation owns them.
    assert "Reconfiguring the" not in log, log[-3000:]
