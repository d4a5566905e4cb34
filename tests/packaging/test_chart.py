"""The Helm chart and the kustomize base, rendered and read without a cluster."""

from __future__ import annotations

import argparse
import base64
import copy
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kopf._cogs.structs.references import Resource
from kopf._core.engines.admission import build_webhooks

from modelplane.api import GROUP, VERSION
from modelplane.api.crds import rendered
from modelplane.operator import admission
from modelplane.operator.runner import add_arguments
from modelplane.operator.webhookcerts import MountedCertificate, read_certificate
from modelplane.operator.webhooks import WebhookConfig, service_client_config

from .conftest import CHART, MANIFESTS, REPO, Tools, find, one

CRDS = REPO / "crds"
# Every rule the chart grants with default values: (apiGroup, resource) -> verbs. A change here
# is a change of the operator's privileges and belongs in docs/deploying.md too.
NAMESPACED_RULES = {
    ("modelplane.io", "experiments"): {"get", "list", "watch", "patch"},
    ("modelplane.io", "runs"): {"get", "list", "watch", "patch"},
    ("modelplane.io", "modelversions"): {"get", "list", "watch", "patch"},
    ("modelplane.io", "modelstages"): {"get", "list", "watch", "patch"},
    ("modelplane.io", "experiments/status"): {"patch"},
    ("modelplane.io", "runs/status"): {"patch"},
    ("modelplane.io", "modelversions/status"): {"patch"},
    ("modelplane.io", "modelstages/status"): {"patch"},
    ("modelplane.io", "modelstages/finalizers"): {"update"},
    ("apps", "deployments"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("apps", "replicasets"): {"list"},
    ("", "events"): {"create"},
}
# No rule on webhook configurations: the chart owns them, the operator only serves.
CLUSTER_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("authorization.k8s.io", "subjectaccessreviews"): {"create"},
}
PEERING_CLUSTER_RULES = {("kopf.dev", "clusterkopfpeerings"): {"list", "watch", "patch"}}
PEERING_NAMESPACED_RULES = {("kopf.dev", "kopfpeerings"): {"list", "watch", "patch"}}
NAMESPACE_RULES = {("", "namespaces"): {"list", "watch"}}


def rule_table(role: Mapping[str, Any]) -> dict[tuple[str, str], set[str]]:
    """A role's rules as (apiGroup, resource) -> verbs, merged across rules."""
    table: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                table.setdefault((group, resource), set()).update(rule["verbs"])
    return table


def container(objs: Sequence[Mapping[str, Any]]) -> Any:
    [operator] = one(objs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return operator


def env(objs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e for e in container(objs).get("env", [])}


def test_helm_lint_passes_in_strict_mode(tools: Tools) -> None:
    """`helm lint --strict` finds nothing, with default values and with every option on."""
    tools.run(tools.helm, "lint", "--strict", str(CHART))
    tools.run(
        tools.helm,
        "lint",
        "--strict",
        str(CHART),
        "--set",
        "watchNamespaces={ml,ml-staging},peering.enabled=true,"
        "metrics.serviceMonitor.enabled=true,s3.credentialsSecret=s3,s3.endpointUrl=http://m:9000",
    )


def test_chart_crds_are_the_generated_crds() -> None:
    """The chart's CRDs are byte for byte the generated ones in crds/, none missing or extra.

    Helm reads only files inside the chart, so the chart keeps copies; after
    `python -m modelplane.api.crdgen`, run `cp crds/modelplane.io_*.yaml charts/modelplane/crds/`.
    """
    expected = rendered()
    chart = {p.name: p.read_text() for p in (CHART / "crds").glob("modelplane.io_*.yaml")}
    assert sorted(chart) == sorted(expected)
    stale = [name for name, text in expected.items() if chart[name] != text]
    assert stale == [], "run: cp crds/modelplane.io_*.yaml charts/modelplane/crds/"


def test_crds_kustomization_lists_every_generated_crd() -> None:
    """crds/kustomization.yml names exactly the generated files, so kustomize misses none."""
    kustomization = yaml.safe_load((CRDS / "kustomization.yml").read_text())
    assert sorted(kustomization["resources"]) == sorted(rendered())
    # A kustomization.yaml would be applied as an object by whatever applies crds/*.yaml.
    assert not (CRDS / "kustomization.yaml").exists()


def test_default_render_holds_the_operator_and_nothing_optional(tools: Tools) -> None:
    """With default values: CRDs, account, RBAC, two Services and the Deployment, cluster-wide."""
    objs = tools.helm_template()
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in objs)
    assert kinds == sorted(
        [
            *(("CustomResourceDefinition", f"{p}.modelplane.io") for p in PLURALS),
            ("CustomResourceDefinition", "clusterkopfpeerings.kopf.dev"),
            ("CustomResourceDefinition", "kopfpeerings.kopf.dev"),
            ("ServiceAccount", "modelplane"),
            ("ClusterRole", "modelplane"),
            ("ClusterRole", "modelplane-cluster"),
            ("ClusterRoleBinding", "modelplane"),
            ("ClusterRoleBinding", "modelplane-cluster"),
            ("Service", "modelplane-metrics"),
            ("Service", "modelplane-webhook"),
            ("Secret", "modelplane-webhook-tls"),
            ("MutatingWebhookConfiguration", "modelplane"),
            ("ValidatingWebhookConfiguration", "modelplane"),
            ("Deployment", "modelplane"),
        ]
    )
    args = container(objs)["args"]
    assert "--all-namespaces" in args
    assert not any(a.startswith("--peering") for a in args)
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert "affinity" not in deployment["spec"]["template"]["spec"]
    assert not find(objs, "PodDisruptionBudget")


PLURALS = ("experiments", "runs", "modelversions", "modelstages")


def test_pod_meets_the_restricted_pod_security_standard(tools: Tools) -> None:
    """Non-root, seccomp RuntimeDefault, no privilege escalation, no capabilities, read-only
    root with an emptyDir at /tmp, and nothing from the host."""
    pod = one(tools.helm_template(), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not {"hostNetwork", "hostPID", "hostIPC"} & pod.keys()
    [operator] = pod["containers"]
    assert operator["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert operator["volumeMounts"] == [
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108
        {"name": "webhook-tls", "mountPath": "/etc/modelplane/webhook-tls", "readOnly": True},
    ]
    tmp, tls = pod["volumes"]
    assert tmp["name"] == "tmp"
    assert "emptyDir" in tmp
    assert tls == {"name": "webhook-tls", "secret": {"secretName": "modelplane-webhook-tls"}}
    assert operator["image"] == "modelplane:0.1.0"
    assert operator["resources"]["requests"]
    assert operator["resources"]["limits"]["memory"]


def test_rbac_grants_exactly_the_listed_rules_and_no_wildcards(tools: Tools) -> None:
    """The default ClusterRoles grant the rule table above: no `*`, no Secrets, nothing else."""
    objs = tools.helm_template()
    roles = find(objs, "ClusterRole") + find(objs, "Role")
    for role in roles:
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], (role["metadata"]["name"], rule)
            assert "nonResourceURLs" not in rule
    assert rule_table(one(objs, "ClusterRole", "modelplane")) == NAMESPACED_RULES
    assert rule_table(one(objs, "ClusterRole", "modelplane-cluster")) == CLUSTER_RULES
    granted = {
        resource for role in roles for rule in role["rules"] for resource in rule["resources"]
    }
    assert not {"secrets", "configmaps", "pods", "serviceaccounts"} & granted
    assert not {"validatingwebhookconfigurations", "mutatingwebhookconfigurations"} & granted


def test_bindings_name_the_chart_service_account(tools: Tools) -> None:
    objs = tools.helm_template(namespace="ops")
    for binding in find(objs, "ClusterRoleBinding"):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "modelplane", "namespace": "ops"}
        ]
        assert binding["roleRef"]["name"] == binding["metadata"]["name"]
    assert one(objs, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "modelplane"


def test_watch_namespaces_renders_roles_in_each_and_namespace_flags(tools: Tools) -> None:
    """watchNamespaces: a Role and RoleBinding per namespace, `-n` flags, and only the
    cluster-scoped rules (with namespaces list/watch) left in a ClusterRole."""
    objs = tools.helm_template({"watchNamespaces": ["ml", "ml-staging"]}, namespace="ops")
    roles = find(objs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["ml", "ml-staging"]
    for role in roles:
        assert rule_table(role) == NAMESPACED_RULES
    bindings = find(objs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["ml", "ml-staging"]
    for binding in bindings:
        assert binding["subjects"][0]["namespace"] == "ops"
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": "modelplane",
        }
    assert [r["metadata"]["name"] for r in find(objs, "ClusterRole")] == ["modelplane-cluster"]
    assert rule_table(one(objs, "ClusterRole")) == {**CLUSTER_RULES, **NAMESPACE_RULES}
    args = container(objs)["args"]
    assert [a for a in args if a.startswith("--namespace")] == [
        "--namespace=ml",
        "--namespace=ml-staging",
    ]
    assert "--all-namespaces" not in args


def test_s3_credentials_come_from_a_secret_and_never_from_values(tools: Tools) -> None:
    objs = tools.helm_template(
        {
            "s3": {
                "endpointUrl": "http://minio.storage:9000",
                "region": "eu-west-1",
                "credentialsSecret": "artifact-store",
                "accessKeyIdKey": "access-key",
            }
        }
    )
    variables = env(objs)
    assert variables["MODELPLANE_S3_ENDPOINT_URL"]["value"] == "http://minio.storage:9000"
    assert variables["AWS_REGION"]["value"] == "eu-west-1"
    assert variables["AWS_ACCESS_KEY_ID"]["valueFrom"] == {
        "secretKeyRef": {"name": "artifact-store", "key": "access-key"}
    }
    assert variables["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "artifact-store", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    assert "value" not in variables["AWS_ACCESS_KEY_ID"]
    # The only Secret is the webhook's certificate.
    assert [s["metadata"]["name"] for s in find(objs, "Secret")] == ["modelplane-webhook-tls"]


def test_no_credentials_secret_leaves_boto3_its_default_chain(tools: Tools) -> None:
    variables = env(tools.helm_template())
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MODELPLANE_S3_ENDPOINT_URL"} & (
        variables.keys()
    )
    assert variables["MODELPLANE_FETCH_IMAGE"]["value"] == "modelplane:0.1.0"
    assert variables["POD_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_image_by_digest_wins_over_the_tag(tools: Tools) -> None:
    digest = "sha256:" + "a" * 64
    objs = tools.helm_template({"image": {"repository": "registry.example/mp", "digest": digest}})
    assert container(objs)["image"] == f"registry.example/mp@{digest}"


def test_service_monitor_is_optional_and_selects_the_metrics_service(tools: Tools) -> None:
    assert not find(tools.helm_template(), "ServiceMonitor")
    objs = tools.helm_template(
        {"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}}
    )
    monitor = one(objs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    service = one(objs, "Service", "modelplane-metrics")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_services_reach_the_container_ports(tools: Tools) -> None:
    """Each Service selects the operator's pod and targets a named port the container has."""
    objs = tools.helm_template()
    pod = one(objs, "Deployment")["spec"]["template"]
    ports = {p["name"]: p["containerPort"] for p in container(objs)["ports"]}
    for service in find(objs, "Service"):
        assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports
    webhook = one(objs, "Service", "modelplane-webhook")["spec"]["ports"][0]
    # kopf names the Service port in the webhook configurations: the same number as the server.
    assert webhook["port"] == ports["webhook"] == 9443
    args = container(objs)["args"]
    assert "--webhook=service" in args
    assert "--webhook-service=modelplane-system/modelplane-webhook" in args
    assert "--webhook-port=9443" in args


def test_webhook_off_drops_its_service_port_and_rules(tools: Tools) -> None:
    objs = tools.helm_template({"webhook": {"enabled": False}})
    assert not find(objs, "Service", "modelplane-webhook")
    assert "--webhook=off" in container(objs)["args"]
    assert not any(a.startswith("--webhook-cert-dir") for a in container(objs)["args"])
    assert "webhook" not in {p["name"] for p in container(objs)["ports"]}
    assert not find(objs, "Secret")
    assert not find(objs, "ValidatingWebhookConfiguration")
    assert not find(objs, "MutatingWebhookConfiguration")
    assert [v["name"] for v in one(objs, "Deployment")["spec"]["template"]["spec"]["volumes"]] == [
        "tmp"
    ]
    assert rule_table(one(objs, "ClusterRole", "modelplane-cluster")) == {
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}
    }


def test_cluster_peering_renders_its_object_rules_and_flag(tools: Tools) -> None:
    objs = tools.helm_template({"peering": {"enabled": True}})
    peering = one(objs, "ClusterKopfPeering")
    assert peering["metadata"]["name"] == "modelplane"
    assert "--peering=modelplane" in container(objs)["args"]
    cluster = one(objs, "ClusterRole", "modelplane-cluster")
    assert rule_table(cluster) == {**CLUSTER_RULES, **PEERING_CLUSTER_RULES}
    patch = [
        r for r in cluster["rules"] if r["apiGroups"] == ["kopf.dev"] and "patch" in r["verbs"]
    ]
    assert [r["resourceNames"] for r in patch] == [["modelplane"]]
    # With peering, a rolling update is safe: the new pod waits until the old one leaves.
    assert "strategy" not in one(objs, "Deployment")["spec"]


def test_namespaced_peering_puts_a_peering_object_in_each_namespace(tools: Tools) -> None:
    objs = tools.helm_template({"peering": {"enabled": True}, "watchNamespaces": ["a", "b"]})
    assert sorted(p["metadata"]["namespace"] for p in find(objs, "KopfPeering")) == ["a", "b"]
    assert not find(objs, "ClusterKopfPeering")
    for role in find(objs, "Role"):
        assert rule_table(role) == {**NAMESPACED_RULES, **PEERING_NAMESPACED_RULES}


def test_more_than_one_replica_peers_spreads_and_limits_disruptions(tools: Tools) -> None:
    """replicas > 1: peering with the chart's lifetime, a rolling update, a PodDisruptionBudget
    of one replica, and a preference for different nodes; every replica mounts the one
    certificate."""
    objs = tools.helm_template({"replicas": 3})
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert "strategy" not in deployment["spec"]
    args = container(objs)["args"]
    assert "--peering=modelplane" in args
    assert "--peering-lifetime=15" in args
    assert "--webhook-cert-dir=/etc/modelplane/webhook-tls" in args
    assert one(objs, "ClusterKopfPeering")["metadata"]["name"] == "modelplane"
    budget = one(objs, "PodDisruptionBudget")
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": deployment["spec"]["selector"],
    }
    pod = deployment["spec"]["template"]
    [preferred] = pod["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    term = preferred["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert rule_table(one(objs, "ClusterRole", "modelplane-cluster")) == {
        **CLUSTER_RULES,
        **PEERING_CLUSTER_RULES,
    }


def test_an_affinity_of_ones_own_replaces_the_spreading(tools: Tools) -> None:
    mine = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    objs = tools.helm_template({"replicas": 2, "affinity": mine, "peering": {"lifetime": 30}})
    assert one(objs, "Deployment")["spec"]["template"]["spec"]["affinity"] == mine
    assert "--peering-lifetime=30" in container(objs)["args"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"watchNamespace": ["ml"]}, "watchNamespace"),
        ({"watchNamespaces": ["ML"]}, "does not match pattern"),
        ({"s3": {"endpointUrl": "minio:9000"}}, "does not match pattern"),
        ({"webhook": {"port": 70000}}, "maximum"),
        ({"peering": {"lifetime": 5}}, "minimum"),
        ({"webhook": {"certManager": {"issuerRef": {"kind": "Vault"}}}}, "issuerRef"),
    ],
)
def test_values_schema_rejects_typos_and_bad_values(
    tools: Tools, values: dict[str, Any], complaint: str
) -> None:
    assert complaint in tools.helm_template_error(values)


def test_operator_accepts_the_rendered_arguments(tools: Tools) -> None:
    """The Deployment's args parse with the operator's own command line, in every mode."""
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser)
    for values in (
        {},
        {"watchNamespaces": ["ml", "ml-staging"], "peering": {"enabled": True}},
        {"webhook": {"enabled": False}, "verbose": True},
        {"replicas": 2, "webhook": {"certManager": {"enabled": True}}},
    ):
        args = parser.parse_args(container(tools.helm_template(values))["args"])
        assert args.metrics_port == 8080
        assert args.liveness == "http://0.0.0.0:8081/healthz"
        assert args.peering_lifetime == 15
        if values.get("webhook", {}).get("enabled", True):
            assert args.webhook_cert_dir == Path("/etc/modelplane/webhook-tls")


HELM_ONLY_LABELS = ("app.kubernetes.io/managed-by", "helm.sh/chart")


def normalized(objs: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str, str], Any]:
    """Objects keyed by kind, namespace and name, without Helm's bookkeeping labels."""
    result = {}
    for original in objs:
        obj = copy.deepcopy(dict(original))
        labels = obj["metadata"].get("labels", {})
        for label in HELM_ONLY_LABELS:
            labels.pop(label, None)
        if not labels:
            obj["metadata"].pop("labels", None)
        key = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        result[key] = obj
    return result


def test_kustomize_base_is_the_chart_with_a_namespace(tools: Tools) -> None:
    """`kustomize build manifests/default` gives the chart's objects (release modelplane in
    modelplane-system, its certificate from cert-manager) plus the namespace, and nothing else;
    kopf's peering CRDs, which the chart ships for peering, are left out since the base runs
    without peering."""
    chart = normalized(tools.helm_template({"webhook": {"certManager": {"enabled": True}}}))
    base = normalized(tools.kustomize_build(MANIFESTS / "default"))
    namespace = base.pop(("Namespace", "", "modelplane-system"))
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name in ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        chart.pop(("CustomResourceDefinition", "", name))
    assert sorted(base) == sorted(chart)
    different = [key for key in chart if base[key] != chart[key]]
    assert different == []


# -- the webhook configurations and their certificate --------------------------------------

WEBHOOK_SERVICE = WebhookConfig.of("service", 9443, "modelplane-system/modelplane-webhook")


def kopf_webhooks(reason: str) -> list[dict[str, Any]]:
    """The webhooks kopf would register for the operator's admission handlers, behind the
    chart's Service, as the operator did when it managed the configurations itself."""
    namespace, name = WEBHOOK_SERVICE.service_ref()
    client_config = service_client_config(
        kopf.WebhookClientConfig(url="https://0.0.0.0:9443"),
        namespace=namespace,
        name=name,
        port=WEBHOOK_SERVICE.port,
    )
    handlers = [
        handler
        for handler in kopf.get_default_registry()._webhooks.get_all_handlers()
        if handler.reason.value == reason and handler.fn.__module__ == admission.__name__
    ]
    resource = Resource(GROUP, VERSION, "modelstages", kind="ModelStage", namespaced=True)
    built = build_webhooks(
        handlers, resources=[resource], name_suffix="modelplane.io", client_config=client_config
    )
    return [{k: v for k, v in webhook.items() if v is not None} for webhook in built]


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("ValidatingWebhookConfiguration", "validating"),
        ("MutatingWebhookConfiguration", "mutating"),
    ],
)
def test_webhook_configurations_are_the_ones_kopf_would_register(
    tools: Tools, kind: str, reason: str
) -> None:
    """Names, rules, failure policies, paths, timeouts and review versions equal what kopf
    builds from the admission handlers, so a new or changed handler fails here until the
    chart follows; only the caBundle (the chart's CA) differs."""
    [configuration] = find(tools.helm_template(), kind)
    assert configuration["metadata"]["name"] == "modelplane"
    rendered_webhooks = copy.deepcopy(configuration["webhooks"])
    for webhook in rendered_webhooks:
        assert webhook["clientConfig"].pop("caBundle")
        assert "namespaceSelector" not in webhook
    assert rendered_webhooks == kopf_webhooks(reason)


def test_webhooks_see_only_the_watched_namespaces(tools: Tools) -> None:
    """With watchNamespaces, the API server calls the webhooks for those namespaces only (kopf
    sets no namespace selector: its operator answers "allowed" for the others)."""
    objs = tools.helm_template({"watchNamespaces": ["ml", "ml-staging"]})
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for webhook in one(objs, kind)["webhooks"]:
            assert webhook["namespaceSelector"] == {
                "matchExpressions": [
                    {
                        "key": "kubernetes.io/metadata.name",
                        "operator": "In",
                        "values": ["ml", "ml-staging"],
                    }
                ]
            }


def test_helm_makes_a_certificate_the_operator_serves_for_the_service(
    tools: Tools, tmp_path: Path
) -> None:
    """Helm's CA and certificate, as the pod mounts them, pass the operator's own checks for
    the Service's name (key, names, validity, issued by ca.crt); the CA is every webhook's
    caBundle."""
    objs = tools.helm_template()
    secret = one(objs, "Secret", "modelplane-webhook-tls")
    assert secret["type"] == "kubernetes.io/tls"
    for key, value in secret["data"].items():
        (tmp_path / key).write_bytes(base64.b64decode(value))
    cert = read_certificate(tmp_path, WEBHOOK_SERVICE.called_as())
    assert set(WEBHOOK_SERVICE.hosts()) <= set(cert.names)
    assert MountedCertificate(tmp_path, WEBHOOK_SERVICE.called_as()).context
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for webhook in one(objs, kind)["webhooks"]:
            assert webhook["clientConfig"]["caBundle"] == secret["data"]["ca.crt"]
            assert "annotations" not in one(objs, kind)["metadata"]


def test_cert_manager_issues_the_certificate_and_injects_the_ca(tools: Tools) -> None:
    """certManager: no Secret from Helm; a self-signed CA issues a Certificate for the
    Service's names into the Secret the pod mounts, and cainjector fills the caBundle."""
    objs = tools.helm_template({"webhook": {"certManager": {"enabled": True}}})
    assert not find(objs, "Secret")
    certificate = one(objs, "Certificate", "modelplane-webhook")
    assert certificate["spec"]["secretName"] == "modelplane-webhook-tls"
    assert certificate["spec"]["dnsNames"] == WEBHOOK_SERVICE.hosts()
    assert certificate["spec"]["issuerRef"] == {
        "name": "modelplane-webhook-ca",
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    ca = one(objs, "Certificate", "modelplane-webhook-ca")
    assert ca["spec"]["isCA"] is True
    assert one(objs, "Issuer", "modelplane-webhook-ca")["spec"]["ca"] == {
        "secretName": ca["spec"]["secretName"]
    }
    assert "selfSigned" in one(objs, "Issuer", "modelplane-selfsigned")["spec"]
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        configuration = one(objs, kind)
        assert configuration["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": "modelplane-system/modelplane-webhook"
        }
        assert all("caBundle" not in w["clientConfig"] for w in configuration["webhooks"])


def test_cert_manager_can_use_an_issuer_of_ones_own(tools: Tools) -> None:
    issuer = {"name": "internal-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}
    objs = tools.helm_template({"webhook": {"certManager": {"enabled": True, "issuerRef": issuer}}})
    assert not find(objs, "Issuer")
    assert [c["metadata"]["name"] for c in find(objs, "Certificate")] == ["modelplane-webhook"]
    assert one(objs, "Certificate")["spec"]["issuerRef"] == issuer
