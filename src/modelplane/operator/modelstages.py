"""ModelStage handlers: gate promotions, roll the serving Deployment, follow it, roll it back.

Every decision is made by `modelplane.core.promotions.plan_stage` from objects read fresh from
the API server; this module reads them, carries the plan out and posts its Events. It is
level-based: any trigger leads to the same `reconcile(namespace, name)`, and an operator
restarted at any moment (kopf replays every object at start) reaches the same end state.

Triggers:

- every event of a ModelStage (its spec, annotations such as approvals, its status);
- every event of a serving Deployment (label `modelplane.io/stage`, watched with that label
  as a server-side selector), mapped to the ModelStage that controls it: this is how a rollout
  is followed;
- every event of a ModelVersion that changes what a stage reads of it (all but its
  `status.stages`), for the stages of its model waiting to promote that version (index
  `modelstages_awaiting`): a version becoming Ready or gaining an evaluation;
- a change of a stage's live version, for the stages of its model that wait with a
  `requireStage` gate naming that stage;
- a timer every `RECHECK_INTERVAL` seconds for stages that wait or are not Ready (gates that
  need time to pass, anything missed).

Reconciliations of one stage never run at once: triggers that arrive while one runs are folded
into a single re-run (`modelplane.operator.coalescing`), which keeps kopf's worker threads free.
Reads come from the watch cache (`modelplane.operator.watchcache`), not GETs. Writes are
guarded: the status patch carries the resourceVersion the plan was made from, and the
Deployment is replaced with its resourceVersion, so a stale plan is refused (409) and the newer
object's event decides again.

The timer makes kopf keep its finalizer (`modelplane.io/finalizer`) on ModelStages, as on
ModelVersions: deleting one waits for a running operator to stop its timer.

Order of writes: the Deployment first, then the status, so the status reports what was done
(and a Deployment the API server refuses ends as a Failed rollout). A rollback is the exception:
it is recorded in status first, so an operator stopped in between completes the rollback rather
than rolling the failed version again.

`status.stages` of the ModelVersions is refreshed by `modelplane.operator.versionstages` on
every ModelStage event, the status write that changes `liveVersion` included (its index of live
versions is only current once that event arrives, so calling it from here would be early).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from modelplane.api import GROUP, VERSION, ModelStage, ModelVersion
from modelplane.core.gates import evaluate_gates
from modelplane.core.promotions import (
    Plan,
    World,
    gates_needed,
    needs_recheck,
    needs_replicasets,
    plan_stage,
)
from modelplane.core.rollouts import (
    FETCH_IMAGE_ENV,
    MODEL_LABEL,
    STAGE_LABEL,
    deployment_name,
)
from modelplane.core.statuses import describe_error, plan_invalid
from modelplane.metrics import LIVE_VERSION
from modelplane.operator import kube, stagewrites, watchcache
from modelplane.operator.coalescing import Coalescer, LastSeen
from modelplane.operator.gateinputs import collect_gate_inputs, fetch_model_version
from modelplane.operator.instrumentation import reconciling

logger = logging.getLogger(__name__)

PLURAL = "modelstages"
KIND = "ModelStage"
RECHECK_INTERVAL = 30.0


# -- indexes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Awaiting:
    """A ModelStage of a model that is not settled: the version it wants to make live, and
    the stage its requireStage gate names (lower case), whose live version it depends on."""

    name: str
    version: int
    required_stage: str | None = None


AwaitingIndex = kopf.Index[tuple[str, str], Awaiting]


@kopf.index(GROUP, VERSION, PLURAL)
def modelstages_awaiting(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[tuple[str, str], Awaiting] | None:
    """ModelStages by (namespace, model) that wait to promote or are not Ready."""
    stage = _parse(body)
    if stage is None or namespace is None or stage.metadata.name is None:
        return None
    if not needs_recheck(stage):
        return None
    gates = stage.spec.gates
    required = gates.require_stage.name.lower() if gates and gates.require_stage else None
    return {
        (namespace, stage.spec.model): Awaiting(stage.metadata.name, stage.spec.version, required)
    }


# -- handlers ------------------------------------------------------------------------------


@kopf.on.startup()
def watch_only_serving_deployments(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Deployments are watched through a label selector: only those modelplane serves."""
    settings.watching.label_selectors["apps", "v1", "deployments"] = STAGE_LABEL


@kopf.on.event(GROUP, VERSION, PLURAL)
def model_stage_event(
    *, type: str | None, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
) -> None:
    """Reconcile the stage; when its live version changed, the stages of its model that wait."""
    if namespace is None:
        return
    _stages.observe(body, deleted=type == "DELETED")
    if type == "DELETED":
        _forget(namespace, name, body)
        return
    reconcile(namespace, name)
    stage = _parse(body)
    if stage is not None and _live_version_changed(namespace, name, stage):
        _reconcile_awaiting(
            namespace, stage.spec.model, kwargs, required_stage=stage.spec.stage.lower()
        )


@kopf.on.event("apps", "v1", "deployments", labels={STAGE_LABEL: kopf.PRESENT})
def serving_deployment_event(
    *, type: str | None, body: kopf.Body, namespace: str | None, **_: Any
) -> None:
    """A serving Deployment changed (its rollout moved on, or it was deleted): reconcile the
    ModelStage that controls it."""
    _deployments.observe(body, deleted=type == "DELETED")
    owner = _controlling_stage(body.get("metadata") or {})
    if namespace is not None and owner is not None:
        reconcile(namespace, owner)


@kopf.on.event(GROUP, VERSION, "modelversions")
def model_version_event(
    *, type: str | None, body: kopf.Body, namespace: str | None, name: str, **kwargs: Any
) -> None:
    """A ModelVersion changed in what a stage reads of it: the stages waiting to promote
    exactly that version look again."""
    spec = body.get("spec") or {}
    model, version = spec.get("model"), spec.get("version")
    if namespace is None or not isinstance(model, str) or not isinstance(version, int):
        return
    watchcache.MODEL_VERSIONS.observe(body, deleted=type == "DELETED")
    if not _version_content_changed(namespace, name, body, deleted=type == "DELETED"):
        return
    _reconcile_awaiting(namespace, model, kwargs, version=version)


@kopf.timer(GROUP, VERSION, PLURAL, interval=RECHECK_INTERVAL, id="recheck")
def recheck_model_stage(*, body: kopf.Body, namespace: str | None, name: str, **_: Any) -> None:
    """Look again at a stage that waits or is not Ready: time may have passed a gate."""
    stage = _parse(body)
    if namespace is None or stage is None or not needs_recheck(stage):
        return
    reconcile(namespace, name)


# -- reconciling ---------------------------------------------------------------------------


_coalescer = Coalescer()
# What the reconciliations read (`modelplane.operator.watchcache`), fed by the event handlers.
_stages = watchcache.STAGES
_deployments = watchcache.SERVING_DEPLOYMENTS


def reconcile(namespace: str, name: str) -> None:
    """Bring one ModelStage (its Deployment and status) up to date with the world."""
    _coalescer.run((namespace, name), lambda: _reconcile_once(namespace, name))


def _reconcile_once(namespace: str, name: str) -> None:
    with reconciling(KIND):
        obj = _stages.get(namespace, name, lambda: kube.get(PLURAL, namespace, name))
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return
        now = datetime.now(UTC)
        try:
            stage = ModelStage.from_object(obj)
        except ValidationError as error:
            stagewrites.write_invalid(obj, plan_invalid(obj, describe_error(error), now=now))
            return
        world = _read_world(namespace, stage)
        plan = plan_stage(stage, world, now=now)
        _carry_out(obj, stage, world, plan, now)


def _read_world(namespace: str, stage: ModelStage) -> World:
    """Everything the plan needs, read from the API server."""
    target = _target(namespace, stage)
    gates = None
    if gates_needed(stage, target):
        inputs = collect_gate_inputs(namespace, stage, stage.spec.version)
        if inputs is not None:
            gates = evaluate_gates(stage.spec.gates, inputs)
    deployment = _read_deployment(namespace, deployment_name(stage))
    replicasets: list[dict[str, Any]] = []
    if needs_replicasets(stage, deployment):
        replicasets = _read_replicasets(namespace, stage)
    return World(
        target=target,
        gates=gates,
        deployment=deployment,
        replicasets=replicasets,
        fetch_image=os.environ.get(FETCH_IMAGE_ENV) or None,
    )


def _target(namespace: str, stage: ModelStage) -> ModelVersion | None:
    try:
        return fetch_model_version(namespace, stage.spec.model, stage.spec.version, cached=True)
    except ValidationError as error:
        logger.warning(
            "the ModelVersion of %s/%s does not parse: %s", namespace, stage.metadata.name, error
        )
        return None


def _carry_out(
    obj: Mapping[str, Any], stage: ModelStage, world: World, plan: Plan, now: datetime
) -> None:
    """Make the plan's writes in its order; post Events and count metrics once written."""
    namespace = stage.metadata.namespace or ""
    if plan.status_first:
        if not stagewrites.write_status(obj, plan):
            return
        refused = stagewrites.act(namespace, plan)
        if refused not in (None, "conflict"):
            # The status already says what was decided; the next reconciliation tries again.
            logger.warning("rollback of %s/%s refused: %s", namespace, stage.metadata.name, refused)
        stagewrites.announce(obj, stage, world, plan)
        return
    if plan.action is not None:
        outcome = stagewrites.act(namespace, plan)
        if outcome == "conflict":
            return
        if outcome is not None:
            # The API server refused the Deployment: the stage says so instead.
            plan = plan_stage(stage, replace(world, apply_error=outcome), now=now)
    if stagewrites.write_status(obj, plan):
        stagewrites.announce(obj, stage, world, plan)


# -- reading -------------------------------------------------------------------------------


def _read_deployment(namespace: str, name: str) -> dict[str, Any] | None:
    return _deployments.get(namespace, name, lambda: _fetch_deployment(namespace, name))


def _fetch_deployment(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        response = kube.apps().read_namespaced_deployment(name, namespace, _preload_content=False)
    except ApiException as error:
        if error.status == 404:
            return None
        raise
    found: dict[str, Any] = json.loads(response.data)
    return found


def _read_replicasets(namespace: str, stage: ModelStage) -> list[dict[str, Any]]:
    """The ReplicaSets of the stage's Deployment (by its selector labels, one namespace)."""
    selector = f"{MODEL_LABEL}={stage.spec.model},{STAGE_LABEL}={stage.spec.stage}"
    response = kube.apps().list_namespaced_replica_set(
        namespace, label_selector=selector, _preload_content=False
    )
    items: list[dict[str, Any]] = json.loads(response.data).get("items") or []
    return items


# -- helpers -------------------------------------------------------------------------------


# The live version last seen per stage, to wake the stages of a model only when it changes.
_seen_live: LastSeen[int | None] = LastSeen()
# What the stages read of each ModelVersion, as last seen: its spec and its status but for
# `status.stages` (which this operator rewrites on every change of a stage's live version, and
# which no gate reads), hashed. Waking the waiting stages on every ModelVersion event would make
# each promotion reconcile every waiting stage of the model again.
_seen_versions: LastSeen[int] = LastSeen()


def _live_version_changed(namespace: str, name: str, stage: ModelStage) -> bool:
    live = stage.status.live_version if stage.status else None
    return _seen_live.changed((namespace, name), live)


def _version_content_changed(
    namespace: str, name: str, body: Mapping[str, Any], *, deleted: bool
) -> bool:
    if deleted:
        _seen_versions.forget((namespace, name))
        return True
    status = {k: v for k, v in (body.get("status") or {}).items() if k != "stages"}
    content = hash(json.dumps([body.get("spec"), status], sort_keys=True, default=str))
    return _seen_versions.changed((namespace, name), content)


def _reconcile_awaiting(
    namespace: str,
    model: str,
    kwargs: Mapping[str, Any],
    *,
    version: int | None = None,
    required_stage: str | None = None,
) -> None:
    """Reconcile the model's waiting stages that want `version`, or whose requireStage gate
    names `required_stage`."""
    index = cast("AwaitingIndex", kwargs["modelstages_awaiting"])
    waiting = sorted(
        {
            entry.name
            for entry in index.get((namespace, model), ())
            if (version is None or entry.version == version)
            and (required_stage is None or entry.required_stage == required_stage)
        }
    )
    for name in waiting:
        reconcile(namespace, name)


def _forget(namespace: str, name: str, body: kopf.Body) -> None:
    """A stage was deleted: drop what the process remembers of it (its Deployment goes with it,
    through its ownerReference)."""
    _seen_live.forget((namespace, name))
    stage = _parse(body)
    if stage is not None:
        # A stage that never went live has no sample to remove.
        with contextlib.suppress(KeyError):
            LIVE_VERSION.remove(namespace, stage.spec.model, stage.spec.stage)


def _controlling_stage(metadata: Mapping[str, Any]) -> str | None:
    """Name of the ModelStage that controls an object, from its ownerReferences."""
    for ref in metadata.get("ownerReferences") or ():
        api_version = str(ref.get("apiVersion", ""))
        if ref.get("controller") and ref.get("kind") == KIND and api_version.startswith(GROUP):
            name = ref.get("name")
            return str(name) if name else None
    return None


def _parse(body: Mapping[str, Any]) -> ModelStage | None:
    try:
        return ModelStage.from_object(body)
    except ValidationError:
        return None
