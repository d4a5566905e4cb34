"""A serving ModelStage, its desired Deployment, and that Deployment as the API server shows it.

Shared by the tests of building (`test_rollouts`), observing (`test_deploymentstates`) and going
back (`test_rollbacks`). No cluster: Deployments are dicts shaped as the API server returns them.
"""

from __future__ import annotations

import copy
from typing import Any

from modelplane.api import ModelStage
from modelplane.core.deploymentstates import REVISION_ANNOTATION
from modelplane.core.rollouts import desired_deployment, owner_reference

UID = "0b5e1f5c-1d1b-4c5b-9a57-0c1f3f8d2a10"
DEPLOYMENT_UID = "d7c1b0f0-9a2e-4a53-8d41-1e6c7b2d9f00"
URI = "s3://models/churn-model/3/"


def make_stage(
    *,
    template: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    replicas: int = 2,
    serving: bool = True,
) -> ModelStage:
    spec: dict[str, Any] = {"model": "churn-model", "stage": "Production", "version": 3}
    if serving:
        spec["serving"] = {
            "replicas": replicas,
            "progressDeadlineSeconds": 120,
            "template": template
            if template is not None
            else {
                "metadata": {"labels": {"app": "churn", "team": "growth"}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "registry.example.com/serve:1",
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "MODEL_VERSION", "value": "stale"},
                            ],
                        },
                        {"name": "sidecar", "image": "registry.example.com/proxy:2"},
                    ]
                },
            },
        }
    return ModelStage.from_object(
        {
            "apiVersion": "modelplane.io/v1alpha1",
            "kind": "ModelStage",
            "metadata": {
                "name": "churn-model-production",
                "namespace": "ml",
                "uid": UID,
                "generation": 4,
                "annotations": annotations or {},
            },
            "spec": spec,
        }
    )


def build(stage: ModelStage | None = None, version: int = 3, **kwargs: Any) -> dict[str, Any]:
    stage = stage or make_stage()
    return desired_deployment(stage, version, URI, owner_reference(stage), **kwargs)


def deployment(
    body: dict[str, Any] | None = None,
    *,
    generation: int = 2,
    observed: int = 2,
    replicas: int = 2,
    updated: int = 2,
    available: int = 2,
    total: int | None = None,
    progressing: str = "NewReplicaSetAvailable",
) -> dict[str, Any]:
    """`body` (a desired Deployment) as the API server would show it with this status."""
    obj = copy.deepcopy(body or build())
    obj["metadata"].update(
        {
            "uid": DEPLOYMENT_UID,
            "generation": generation,
            "resourceVersion": "812",
            "annotations": {
                **obj["metadata"].get("annotations", {}),
                REVISION_ANNOTATION: "4",
            },
        }
    )
    obj["spec"]["replicas"] = replicas
    obj["status"] = {
        "observedGeneration": observed,
        "replicas": total if total is not None else updated,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {
                "type": "Progressing",
                "status": "False" if progressing == "ProgressDeadlineExceeded" else "True",
                "reason": progressing,
                "message": 'ReplicaSet "churn-model-production-5d8f" has timed out progressing.'
                if progressing == "ProgressDeadlineExceeded"
                else "ok",
            },
        ],
    }
    return obj
