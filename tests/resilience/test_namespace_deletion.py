"""Deleting a namespace: the operator finalizes what is in it, so the namespace goes away.

kopf 1.45, watching namespaces by pattern, stopped watching a namespace as soon as its deletion
began, and did not watch one that was already Terminating when it started; our finalizers then
held the namespace in Terminating for good (`modelplane.operator.kopfnamespaces`).
"""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from resilience_support import Objects, holds_for, wait_for

from modelplane.api import GROUP, VERSION

FINALIZER = "modelplane.io/finalizer"
GONE_WITHIN = 60.0


def experiment() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Experiment",
        "metadata": {"name": "deleted-with-its-namespace"},
        "spec": {},
    }


def finalized_experiment(objects: Objects) -> None:
    """Create the experiment and wait until the operator holds it with its finalizer."""
    objects.apply(experiment())

    def finalizers() -> list[str]:
        found = objects.get("experiments", "deleted-with-its-namespace") or {}
        return list((found.get("metadata") or {}).get("finalizers") or [])

    wait_for(lambda: FINALIZER in finalizers(), 60, "the operator's finalizer on the experiment")


def namespace_phase(core: k8s.CoreV1Api, name: str) -> str | None:
    """The namespace's phase; None once it is gone."""
    try:
        found = core.read_namespace(name)
    except k8s.ApiException as error:
        if error.status == 404:
            return None
        raise
    return str(found.status.phase)


def finalizers_remain(core: k8s.CoreV1Api, name: str) -> bool:
    found = core.read_namespace(name)
    return any(
        condition.type == "NamespaceFinalizersRemaining" and condition.status == "True"
        for condition in (found.status.conditions or [])
    )


def test_a_namespace_deleted_while_the_operator_runs_goes_away(
    cluster: Any, namespace: str, operator: Any
) -> None:
    objects = Objects(cluster, namespace)
    finalized_experiment(objects)
    core = k8s.CoreV1Api(cluster.api_client())
    core.delete_namespace(namespace)
    wait_for(
        lambda: namespace_phase(core, namespace) is None,
        GONE_WITHIN,
        f"namespace {namespace} gone (objects finalized by the operator)",
    )


def test_a_namespace_terminating_when_the_operator_starts_goes_away(
    cluster: Any, own_objects: Objects, make_operator: Any
) -> None:
    op = make_operator()
    finalized_experiment(own_objects)
    op.stop()
    core = k8s.CoreV1Api(cluster.api_client())
    core.delete_namespace(own_objects.namespace)
    # kopf skipped a namespace whose controller already reports the finalizers left in it.
    wait_for(
        lambda: finalizers_remain(core, own_objects.namespace),
        60,
        "the namespace controller reporting our finalizers",
    )
    holds_for(
        lambda: namespace_phase(core, own_objects.namespace) == "Terminating",
        2.0,
        "namespace Terminating while no operator runs",
    )
    op.start()
    wait_for(
        lambda: namespace_phase(core, own_objects.namespace) is None,
        GONE_WITHIN,
        f"namespace {own_objects.namespace} gone once the operator started",
    )
