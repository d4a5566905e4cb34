"""Fixtures for SDK tests: Clients pointed at the test cluster, namespace and bucket.

Tests build their own `Client` rather than setting the process environment, so tests can run
side by side; `fluent` points the module-level functions at such a Client for one test.
`child_env` is the environment a training subprocess needs to reach the same places.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import modelplane
from modelplane.sdk import Client
from modelplane.store import StoreConfig

MakeClient = Callable[..., Client]


@pytest.fixture
def store_config(s3: Any) -> StoreConfig:
    return StoreConfig(
        endpoint_url=s3.endpoint_url,
        access_key_id=s3.access_key,
        secret_access_key=s3.secret_key,
    )


@pytest.fixture
def make_client(
    cluster: Any,
    namespace: str,
    bucket: str,
    *,
    crds: None,
    store_config: StoreConfig,
    tmp_path: Path,
) -> MakeClient:
    """Builds Clients for the test's namespace and bucket; keyword arguments override."""

    def make(**overrides: Any) -> Client:
        settings: dict[str, Any] = {
            "artifact_root": f"s3://{bucket}",
            "kubeconfig": cluster.kubeconfig,
            "store_config": store_config,
            "flush_interval": 1.0,
            # An entry script outside any repository, unless a test names one.
            "source": tmp_path / "train.py",
            **overrides,
        }
        return Client(namespace, **settings)

    return make


@pytest.fixture
def client(make_client: MakeClient) -> Client:
    return make_client()


@pytest.fixture
def fluent(client: Client) -> Iterator[Client]:
    """The fluent functions use `client` for this test; runs left active are ended after."""
    modelplane.set_client(client)
    yield client
    while (run := modelplane.active_run()) is not None:
        run.end("KILLED", raise_incomplete=False)
    modelplane.set_client(None)


@pytest.fixture
def child_env(cluster: Any, namespace: str, bucket: str, s3: Any) -> dict[str, str]:
    """Environment for a training subprocess that uses the fluent API from the environment."""
    return {
        **os.environ,
        **s3.env(),
        "KUBECONFIG": str(cluster.kubeconfig),
        "MODELPLANE_NAMESPACE": namespace,
        "MODELPLANE_ARTIFACT_ROOT": f"s3://{bucket}",
        "MODELPLANE_FLUSH_INTERVAL": "1",
        "PYTHONUNBUFFERED": "1",
    }
