"""A ModelStage plan's writes: the Deployment action, the status patch, Events and metrics.

`modelplane.operator.modelstages` decides (through `modelplane.core.promotions`) and calls
these in the plan's order. Every write is guarded by the resourceVersion the plan was made
from; a refused one returns "conflict" or False, drops the stale copy from the watch cache
(`modelplane.operator.watchcache`), and the newer object's event reconciles again. A write
that succeeds puts the server's answer in the cache.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, cast

import kopf
from kubernetes.client import ApiException

from modelplane.api import GROUP, VERSION, ModelStage
from modelplane.core.promotions import OWNED_FIELDS, Apply, Delete, MarkGood, Plan, World
from modelplane.core.rollouts import LAST_GOOD_LABEL
from modelplane.core.statuses import Note, StatusPlan, owned_patch
from modelplane.metrics import GATE_FAILURES, LIVE_VERSION, PROMOTIONS, ROLLBACKS
from modelplane.operator import kube, watchcache
from modelplane.operator.gateinputs import MODELSTAGES as PLURAL

logger = logging.getLogger(__name__)

# The API server's answers to a Deployment it will not take as written.
_INVALID = (400, 422)


def act(namespace: str, plan: Plan) -> str | None:
    """Carry out the plan's Deployment action.

    Returns None when done (or nothing to do), "conflict" when the Deployment changed meanwhile
    (its event reconciles again), or the API server's reason for refusing the Deployment.
    """
    action = plan.action
    if action is None:
        return None
    name = action.body["metadata"]["name"] if isinstance(action, Apply) else action.name
    apps = kube.apps()
    try:
        if isinstance(action, Apply):
            if action.create:
                apps.create_namespaced_deployment(namespace, action.body)
            else:
                answer = apps.replace_namespaced_deployment(
                    name, namespace, action.body, _preload_content=False
                )
                watchcache.SERVING_DEPLOYMENTS.written(action.body, json.loads(answer.data))
            logger.info(
                "%s Deployment %s/%s", "created" if action.create else "updated", namespace, name
            )
        elif isinstance(action, MarkGood):
            patch = {"metadata": {"labels": {LAST_GOOD_LABEL: action.template_hash}}}
            apps.patch_namespaced_deployment(action.name, namespace, patch)
        elif isinstance(action, Delete):
            apps.delete_namespaced_deployment(action.name, namespace)
            logger.info("deleted Deployment %s/%s: spec.serving is gone", namespace, action.name)
    except ApiException as error:
        if error.status in (404, 409):
            watchcache.SERVING_DEPLOYMENTS.forget(namespace, name)
            return "conflict"
        if error.status in _INVALID:
            return _api_message(error)
        raise
    return None


def write_status(obj: Mapping[str, Any], plan: Plan) -> bool:
    """Patch the status if it differs, as of the object's resourceVersion; False on a lost race.

    True also when there was nothing to write."""
    patch = owned_patch(obj.get("status"), plan.status, OWNED_FIELDS)
    if patch is None:
        return True
    return _patch_status_at(obj, patch)


def write_invalid(obj: Mapping[str, Any], plan: StatusPlan) -> None:
    if plan.patch is not None and _patch_status_at(obj, plan.patch):
        for note in plan.notes:
            _post(obj, note)


def _patch_status_at(obj: Mapping[str, Any], patch: dict[str, Any]) -> bool:
    metadata = obj["metadata"]
    body = {"metadata": {"resourceVersion": metadata.get("resourceVersion")}, "status": patch}
    try:
        answer = kube.custom_objects().patch_namespaced_custom_object_status(
            GROUP, VERSION, metadata["namespace"], PLURAL, metadata["name"], body
        )
    except ApiException as error:
        if error.status in (404, 409):
            logger.debug(
                "ModelStage %s changed meanwhile; its event reconciles it", metadata["name"]
            )
            watchcache.STAGES.forget(metadata["namespace"], metadata["name"])
            return False
        raise
    watchcache.STAGES.written(obj, answer)
    return True


def announce(obj: Mapping[str, Any], stage: ModelStage, world: World, plan: Plan) -> None:
    """Events and metrics of a plan whose status was written."""
    model, stage_name = stage.spec.model, stage.spec.stage
    for note in plan.notes:
        _post(obj, note)
    if world.target is not None:
        for note in plan.version_notes:
            _post(world.target.to_manifest(), note)
    for entry in plan.entries:
        PROMOTIONS.labels(model=model, stage=stage_name, result=entry.result).inc()
        if entry.result == "RolledBack":
            ROLLBACKS.labels(model=model, stage=stage_name).inc()
        logger.info(
            "ModelStage %s/%s: %s %s",
            stage.metadata.namespace,
            stage.metadata.name,
            entry.result,
            entry.message,
        )
    for gate in plan.failed_gates:
        GATE_FAILURES.labels(model=model, stage=stage_name, gate=gate).inc()
    live = plan.status.live_version
    if live is not None:
        LIVE_VERSION.labels(
            namespace=stage.metadata.namespace or "", model=model, stage=stage_name
        ).set(live)


def _post(obj: Mapping[str, Any], note: Note) -> None:
    body = kopf.Body(cast("kopf.RawBody", dict(obj)))
    if note.type == "Warning":
        kopf.warn(body, reason=note.reason, message=note.message)
    else:
        kopf.info(body, reason=note.reason, message=note.message)


def _api_message(error: ApiException) -> str:
    """The message of a Kubernetes Status in an API error's body, else its reason."""
    try:
        status = json.loads(error.body or "")
    except (TypeError, ValueError):
        status = None
    if isinstance(status, dict) and status.get("message"):
        return str(status["message"])
    return f"{error.status} {error.reason}"
