"""The SDK's Kubernetes access: modelplane objects of one namespace, via the `kubernetes` client.

`connect` builds an ApiClient the way kubectl would: an explicit kubeconfig (or ``KUBECONFIG``,
or ``~/.kube/config``) when there is one, else the pod's service account. `Objects` reads and
writes modelplane objects as plain dicts and turns the API server's refusals into the SDK's
`ApiError` subclasses (409 `ConflictError`, 404 `NotFoundError`, 422 `InvalidObjectError`),
keeping the server's message, which for a CEL rule says what was wrong. Every call is
blocking; ApiClient is thread-safe, so the flusher thread and the caller share one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException

from modelplane.api import GROUP, VERSION
from modelplane.sdk.errors import (
    ApiError,
    ConflictError,
    InvalidObjectError,
    NotFoundError,
)

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _kubeconfig_exists(kubeconfig: str | Path | None) -> bool:
    if kubeconfig is not None:
        return True
    paths = os.environ.get("KUBECONFIG", "")
    candidates = [p for p in paths.split(os.pathsep) if p] or [
        str(Path("~/.kube/config").expanduser())
    ]
    return any(Path(p).exists() for p in candidates)


def connect(kubeconfig: str | Path | None = None, context: str | None = None) -> Any:
    """An ApiClient from the kubeconfig, or in-cluster credentials when there is none."""
    if not _kubeconfig_exists(kubeconfig) and os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config()
        return k8s.ApiClient()
    return k8s_config.new_client_from_config(
        config_file=str(kubeconfig) if kubeconfig is not None else None, context=context
    )


def default_namespace(kubeconfig: str | Path | None = None, context: str | None = None) -> str:
    """The namespace of the kubeconfig's (current) context, else the pod's, else "default"."""
    if _kubeconfig_exists(kubeconfig):
        try:
            contexts, current = k8s_config.list_kube_config_contexts(
                config_file=str(kubeconfig) if kubeconfig is not None else None
            )
        except (ConfigException, OSError):
            contexts, current = [], None
        chosen = next((c for c in contexts if c.get("name") == context), None) or current
        namespace = ((chosen or {}).get("context") or {}).get("namespace")
        if namespace:
            return str(namespace)
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    except OSError:
        return "default"


def translate(error: k8s.ApiException) -> ApiError:
    """The SDK's error for an API server refusal, with the server's own message."""
    reason, message = str(error.reason or ""), str(error.body or error.reason or "")
    try:
        body = json.loads(error.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict):
        reason = str(body.get("reason") or reason)
        message = str(body.get("message") or message)
    kinds: dict[int, type[ApiError]] = {
        404: NotFoundError,
        409: ConflictError,
        422: InvalidObjectError,
    }
    return kinds.get(error.status or 0, ApiError)(int(error.status or 0), reason, message)


class Objects:
    """Create, read, patch and list modelplane objects of one namespace, as dicts."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self._custom = k8s.CustomObjectsApi(api_client)

    def get(self, plural: str, name: str) -> dict[str, Any] | None:
        try:
            obj: dict[str, Any] = self._custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )
        except k8s.ApiException as error:
            if error.status == 404:
                return None
            raise translate(error) from error
        return obj

    def create(self, plural: str, manifest: dict[str, Any]) -> dict[str, Any]:
        try:
            obj: dict[str, Any] = self._custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, manifest
            )
        except k8s.ApiException as error:
            raise translate(error) from error
        return obj

    def patch(self, plural: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the object (spec, metadata)."""
        try:
            obj: dict[str, Any] = self._custom.patch_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name, patch
            )
        except k8s.ApiException as error:
            raise translate(error) from error
        return obj

    def patch_status(self, plural: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the status subresource: only the fields given change."""
        try:
            obj: dict[str, Any] = self._custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, self.namespace, plural, name, {"status": status}
            )
        except k8s.ApiException as error:
            raise translate(error) from error
        return obj

    def list(self, plural: str) -> list[dict[str, Any]]:
        try:
            found = self._custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural
            )
        except k8s.ApiException as error:
            raise translate(error) from error
        items: list[dict[str, Any]] = found.get("items", [])
        return items

    def read_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A pod as a dict (for its image digests), or None if it cannot be read."""
        try:
            pod = k8s.CoreV1Api(self.api_client).read_namespaced_pod(name, namespace)
        except k8s.ApiException:
            return None
        result: dict[str, Any] = self.api_client.sanitize_for_serialization(pod)
        return result
