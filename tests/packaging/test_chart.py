"""The Helm chart and the kustomize base, rendered and read without a cluster."""

from __future__ import annotations

import argparse
import copy
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
import yaml

from modelplane.api.crds import rendered
from modelplane.operator.runner import add_arguments

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
CLUSTER_RULES = {
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): {"create", "patch"},
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): {"create", "patch"},
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
            ("Deployment", "modelplane"),
        ]
    )
    args = container(objs)["args"]
    assert "--all-namespaces" in args
    assert not any(a.startswith("--peering") for a in args)
    deployment = one(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


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
    assert operator["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108
    [tmp] = pod["volumes"]
    assert tmp["name"] == "tmp"
    assert "emptyDir" in tmp
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
    # Patching webhook configurations is limited to modelplane.io's own.
    webhook_patch = [
        rule
        for rule in one(objs, "ClusterRole", "modelplane-cluster")["rules"]
        if "patch" in rule["verbs"]
    ]
    assert all(rule["resourceNames"] == ["modelplane.io"] for rule in webhook_patch)


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
    assert not find(objs, "Secret")


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
    assert "webhook" not in {p["name"] for p in container(objs)["ports"]}
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


def test_more_than_one_replica_fails_with_the_reason(tools: Tools) -> None:
    error = tools.helm_template_error({"replicas": 2})
    assert "replicas > 1 is not supported yet" in error
    assert "peering priority" in error


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"watchNamespace": ["ml"]}, "watchNamespace"),
        ({"watchNamespaces": ["ML"]}, "does not match pattern"),
        ({"s3": {"endpointUrl": "minio:9000"}}, "does not match pattern"),
        ({"webhook": {"port": 70000}}, "maximum"),
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
    ):
        args = parser.parse_args(container(tools.helm_template(values))["args"])
        assert args.metrics_port == 8080
        assert args.liveness == "http://0.0.0.0:8081/healthz"


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
    modelplane-system) plus the namespace, and nothing else; kopf's peering CRDs, which the
    chart ships for peering, are left out since the base runs without peering."""
    chart = normalized(tools.helm_template())
    base = normalized(tools.kustomize_build(MANIFESTS / "default"))
    namespace = base.pop(("Namespace", "", "modelplane-system"))
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for name in ("clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"):
        chart.pop(("CustomResourceDefinition", "", name))
    assert sorted(base) == sorted(chart)
    different = [key for key in chart if base[key] != chart[key]]
    assert different == []
