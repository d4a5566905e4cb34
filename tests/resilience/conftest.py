"""Fixtures of the resilience tests: operators of their own on an unmanaged namespace."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from resilience_support import ForkServer, Objects, OwnOperator, delete_all

MakeOperator = Callable[..., OwnOperator]


@pytest.fixture
def own_objects(cluster: Any, crds: None, unmanaged_namespace: str) -> Objects:
    """The objects of the unmanaged namespace that the test's own operators serve."""
    return Objects(cluster, unmanaged_namespace)


@pytest.fixture(scope="session")
def fork_server(cluster: Any) -> Iterator[ForkServer]:
    """Imports the operator once for the session; replicas start from it in a second."""
    server = ForkServer(cluster.kubeconfig)
    yield server
    server.close()


@pytest.fixture
def make_operator(
    own_objects: Objects, s3: Any, tmp_path: Path, fork_server: ForkServer
) -> Iterator[MakeOperator]:
    """Starts operators of the test's own on its unmanaged namespace; stops them at the end."""
    started: list[OwnOperator] = []

    def make(
        name: str = "operator",
        *,
        env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
        start: bool = True,
    ) -> OwnOperator:
        op = OwnOperator(
            server=fork_server,
            kubeconfig=own_objects.cluster.kubeconfig,
            namespace=own_objects.namespace,
            log_path=tmp_path / f"{name}.log",
            env=env if env is not None else s3.env(),
            extra_args=args,
        )
        started.append(op)
        if start:
            op.start()
        return op

    yield make
    if any(op.alive() for op in started):
        delete_all(own_objects)
    for op in started:
        op.stop()
