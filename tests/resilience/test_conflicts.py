"""Concurrent writers: people and tools writing a ModelStage and its Deployment while the
operator works (the session operator, admission webhook on).

- Several threads patch a ModelStage's spec.version and annotations at once for a while; once
  they stop, the last written version is live, served and Ready, and the history is one
  consistent chain (no promotion recorded twice or lost).
- Someone scales the operator-owned Deployment or edits its labels: the operator puts the
  replicas back to `spec.serving.replicas` and keeps the labels and annotations others add to
  the Deployment's metadata (`modelplane.core.rollouts.replacement` merges them).
- Someone edits the Deployment's pod template (image, MODEL_VERSION): the operator puts the
  template back, even when the edit leaves the template-hash annotation in place.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from resilience_support import (
    MODEL,
    Objects,
    delete_all,
    history,
    register_version,
    stage_manifest,
    succeeded_chain_is_consistent,
    wait_for,
    wait_live,
    wait_serving,
)

pytestmark = pytest.mark.cluster

WRITERS = 4
WRITING = 8.0
"""Seconds the writers write for."""
SEED = 8


@pytest.fixture
def objects(cluster: Any, namespace: str, operator: Any) -> Iterator[Objects]:
    objects = Objects(cluster, namespace)
    print(f"\n[timings] the session operator serves after {wait_serving(objects):.1f}s")
    yield objects
    delete_all(objects)


def _writer(
    objects: Objects, name: str, index: int, stop: threading.Event, errors: list[str]
) -> None:
    # Each writer has its own client: the API client is not shared between threads.
    custom = k8s.CustomObjectsApi(objects.cluster.api_client())
    rng = random.Random(SEED + index)  # noqa: S311 - reproducible choices, not secrets
    count = 0
    while not stop.is_set() and count < 1000:
        count += 1
        if index % 2 == 0:
            body: dict[str, Any] = {"spec": {"version": rng.choice((1, 2, 3))}}
        else:
            body = {"metadata": {"annotations": {f"example.com/writer-{index}": str(count)}}}
        try:
            custom.patch_namespaced_custom_object(
                "modelplane.io", "v1alpha1", objects.namespace, "modelstages", name, body
            )
        except k8s.ApiException as error:
            errors.append(f"writer {index}: {error.status} {error.reason}: {error.body}")
        time.sleep(rng.uniform(0.05, 0.3))


def test_concurrent_writers_on_a_stage_end_with_the_last_version_live(
    objects: Objects, s3: Any, bucket: str, operator: Any
) -> None:
    client = s3.client()
    for version in (1, 2, 3):
        register_version(objects, client, bucket, version)
    name = f"{MODEL}-production"
    objects.apply(stage_manifest("Production", 1, replicas=2))
    wait_live(objects, name, 1)

    stop = threading.Event()
    errors: list[str] = []
    threads = [
        threading.Thread(target=_writer, args=(objects, name, i, stop, errors), daemon=True)
        for i in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    time.sleep(WRITING)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    objects.patch("modelstages", name, {"spec": {"version": 3}})
    stage = wait_live(objects, name, 3)
    entries = history(stage)
    assert succeeded_chain_is_consistent(entries), entries
    assert entries[-1] == (3, entries[-1][1], "Succeeded")
    assert len(entries) <= 50
    annotations = stage["metadata"]["annotations"]
    assert all(f"example.com/writer-{i}" in annotations for i in range(1, WRITERS, 2))
    assert operator.alive()


def test_a_scaled_deployment_is_scaled_back_and_labels_of_others_are_kept(
    objects: Objects, s3: Any, bucket: str, operator: Any
) -> None:
    register_version(objects, s3.client(), bucket, 1)
    name = f"{MODEL}-production"
    objects.apply(stage_manifest("Production", 1, replicas=2))
    wait_live(objects, name, 1)

    objects.apps.patch_namespaced_deployment(
        name,
        objects.namespace,
        {"metadata": {"labels": {"example.com/team": "growth"}}, "spec": {"replicas": 5}},
    )
    wait_for(lambda: objects.deployment(name).spec.replicas == 2, 30, "replicas back to spec (2)")
    deployment = objects.deployment(name)
    assert deployment.metadata.labels["example.com/team"] == "growth"
    stage = wait_live(objects, name, 1)
    assert history(stage) == [(1, None, "Succeeded")]


def test_an_edited_pod_template_is_put_back(
    objects: Objects, s3: Any, bucket: str, operator: Any
) -> None:
    register_version(objects, s3.client(), bucket, 1)
    name = f"{MODEL}-production"
    objects.apply(stage_manifest("Production", 1, replicas=1))
    wait_live(objects, name, 1)
    container = objects.deployment(name).spec.template.spec.containers[0]
    env = [
        {"name": item.name, "value": "2" if item.name == "MODEL_VERSION" else item.value}
        for item in container.env
    ]
    objects.apps.patch_namespaced_deployment(
        name,
        objects.namespace,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {"name": container.name, "image": "example.com/other:2", "env": env}
                        ]
                    }
                }
            }
        },
    )
    wait_for(
        lambda: (
            objects.served_version(name) == "1"
            and objects.deployment(name).spec.template.spec.containers[0].image
            == "registry.example.com/churn:1.0"
        ),
        20,
        "the pod template put back",
    )
