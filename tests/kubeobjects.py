"""One namespace's modelplane objects and serving Deployments, as the cluster tests read them.

The operator, resilience and registry tests all apply manifests, read objects (None when they
are gone), patch, delete, and look at the serving Deployment; they share this one class and add
what is particular to them.
"""

from __future__ import annotations

from typing import Any

import yaml
from kubernetes import client as k8s

from modelplane.api import GROUP, VERSION


class NamespacedObjects:
    """Access to the modelplane objects and Deployments of one namespace."""

    def __init__(self, cluster: Any, namespace: str) -> None:
        api_client = cluster.api_client()
        self.cluster = cluster
        self.custom = k8s.CustomObjectsApi(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self.core = k8s.CoreV1Api(api_client)
        self.namespace = namespace

    def apply(self, *manifests: dict[str, Any]) -> None:
        """`kubectl apply`, as a person or a GitOps tool would."""
        text = yaml.safe_dump_all(manifests)
        self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=text)

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )
        except k8s.ApiException as error:
            if error.status == 404:
                return None
            raise
        return obj

    def patch(self, plural: str, name: str, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, body
        )

    def delete(self, plural: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, name)

    def deployment(self, name: str) -> Any:
        """The Deployment, or None when it does not exist."""
        try:
            return self.apps.read_namespaced_deployment(name, self.namespace)
        except k8s.ApiException as error:
            if error.status == 404:
                return None
            raise

    def served_version(self, name: str) -> str | None:
        """MODEL_VERSION in the Deployment's pod template (every container has it)."""
        deployment = self.deployment(name)
        if deployment is None:
            return None
        env = deployment.spec.template.spec.containers[0].env or []
        return next((item.value for item in env if item.name == "MODEL_VERSION"), None)
