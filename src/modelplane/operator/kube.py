"""The operator's own Kubernetes API access (kopf brings its own client for watching).

Handlers run in kopf's thread pool when they are plain functions, so the blocking
`kubernetes` client is fine there. One ApiClient is shared: it is thread-safe and pools
connections.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from kubernetes import client, config

from modelplane.api.bases import GROUP, VERSION

HANDLER_THREADS = 32
"""Size of kopf's thread pool (`modelplane.operator.settings`), where handlers call the API."""


@functools.cache
def api_client() -> Any:
    """The shared ApiClient: in-cluster credentials in a pod, the kubeconfig elsewhere.

    Its connection pool holds one connection per handler thread. urllib3's default of 10
    makes threads beyond the tenth discard their connection after each request ("Connection
    pool is full"), so the next request pays a new TCP and TLS handshake.
    """
    configuration = client.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = HANDLER_THREADS
    return client.ApiClient(configuration)


def custom_objects() -> Any:
    return client.CustomObjectsApi(api_client())


def core() -> Any:
    return client.CoreV1Api(api_client())


def apps() -> Any:
    return client.AppsV1Api(api_client())


def get(plural: str, namespace: str, name: str) -> dict[str, Any] | None:
    """One modelplane object as a dict, or None when it does not exist."""
    try:
        obj: dict[str, Any] = custom_objects().get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return obj


def patch_status(plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Merge-patch the status subresource of one modelplane object."""
    custom_objects().patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, plural, name, {"status": status}
    )


def patch_status_at(
    plural: str, namespace: str, name: str, resource_version: str, status: dict[str, Any]
) -> bool:
    """Merge-patch the status of one modelplane object if it is still at `resource_version`;
    False if it is not (409) or is gone (404)."""
    # The API server checks a resourceVersion given in a patch like one given in an update.
    body = {"metadata": {"resourceVersion": resource_version}, "status": status}
    try:
        custom_objects().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, body
        )
    except client.ApiException as exc:
        if exc.status in (404, 409):
            return False
        raise
    return True
