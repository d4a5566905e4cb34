"""The serving Deployment of a ModelStage: how it is built, what its state means, how it goes back.

**Building.** `desired_deployment` turns `spec.serving` and one model version into the
Deployment that serves it. The Deployment is named like its ModelStage
(`<model>-<stage in lower case>`), is controlled by it (ownerReference with `controller: true`,
so it is garbage-collected with it), and selects its pods by the labels `modelplane.io/model`
and `modelplane.io/stage` only, so the selector, which Kubernetes never lets change, stays the
same across versions. The user's pod template is kept as it is; modelplane adds:

- to every container (and init container): the environment `MODEL_NAME`, `MODEL_VERSION`,
  `MODEL_URI`, `MODEL_DIGEST` (when known) and `MODEL_STAGE`, replacing variables of the same
  names;
- to the pod: the labels `modelplane.io/model`, `modelplane.io/stage`, `modelplane.io/version`
  and the annotations `modelplane.io/model`, `modelplane.io/model-version`,
  `modelplane.io/model-uri`, `modelplane.io/model-digest`, plus `modelplane.io/template-hash`,
  a digest of the template that tells the operator whether the Deployment runs what the
  ModelStage asks for (comparing the templates themselves does not work: the API server fills
  in defaults);
- with the ModelStage annotation `modelplane.io/fetch-artifact: "true"`: an init container
  `modelplane-fetch` running `modelplane fetch $(MODEL_URI) /models` in the image named by the
  operator's environment variable `MODELPLANE_FETCH_IMAGE` (the command checks the download
  against `MODEL_DIGEST` before the server starts), an emptyDir volume
  `modelplane-model` mounted at `/models` in every container, and `MODEL_PATH=/models`. The
  ModelStage annotation `modelplane.io/fetch-credentials: <Secret name>` passes that Secret to
  the init container as environment (e.g. AWS_ACCESS_KEY_ID, MODELPLANE_S3_ENDPOINT_URL):
  credentials never live in the ModelStage.

**Observing.** `observe` reads a Deployment the way `kubectl rollout status` does: the
Deployment controller must have seen the latest spec (observedGeneration), then all replicas
must be updated and available and no old replica left; a Progressing condition with reason
ProgressDeadlineExceeded means the rollout failed.

**Going back.** A failed rollout is undone the way `kubectl rollout undo` does it: the pod
template of an earlier ReplicaSet of the Deployment is put back (`rollback_template`). It is the
ReplicaSet whose template last completed a rollout, which the operator stamps on the Deployment
(`modelplane.io/last-good-template`), so a rollback restores the template that served, not the
current `spec.serving.template` with the old version number in it (that template may be what
broke).

Everything here is pure: plain dicts in, plain dicts out.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.utils.quantity import parse_quantity

from modelplane.api import API_VERSION, ModelStage, OwnerReference, model_stage_name

MODEL_LABEL = "modelplane.io/model"
STAGE_LABEL = "modelplane.io/stage"
VERSION_LABEL = "modelplane.io/version"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "modelplane"

MODEL_ANNOTATION = "modelplane.io/model"
VERSION_ANNOTATION = "modelplane.io/model-version"
URI_ANNOTATION = "modelplane.io/model-uri"
DIGEST_ANNOTATION = "modelplane.io/model-digest"
TEMPLATE_HASH_ANNOTATION = "modelplane.io/template-hash"
LAST_GOOD_ANNOTATION = "modelplane.io/last-good-template"
FETCH_ANNOTATION = "modelplane.io/fetch-artifact"
FETCH_CREDENTIALS_ANNOTATION = "modelplane.io/fetch-credentials"

FETCH_IMAGE_ENV = "MODELPLANE_FETCH_IMAGE"
FETCH_CONTAINER = "modelplane-fetch"
MODEL_VOLUME = "modelplane-model"
MODEL_MOUNT_PATH = "/models"

# Set by the Deployment controller.
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"

REVISION_HISTORY_LIMIT = 10
"""ReplicaSets kept per Deployment: the templates a rollback can go back to."""

_HASH_LENGTH = 16

DeploymentPhase = Literal["Pending", "Progressing", "Complete", "Failed"]


class ServingError(ValueError):
    """`spec.serving` (or the fetch settings) cannot make a Deployment; the message says why."""


# -- building -------------------------------------------------------------------------------


def deployment_name(stage: ModelStage) -> str:
    """The serving Deployment's name: the ModelStage's own name."""
    return stage.metadata.name or model_stage_name(stage.spec.model, stage.spec.stage)


def owner_reference(stage: ModelStage) -> OwnerReference:
    """The reference that makes the ModelStage the controller of its Deployment."""
    if not stage.metadata.uid:
        raise ServingError("the ModelStage has no uid yet: it must be read from the API server")
    return OwnerReference(
        api_version=API_VERSION,
        kind="ModelStage",
        name=deployment_name(stage),
        uid=stage.metadata.uid,
        controller=True,
        block_owner_deletion=True,
    )


def selector_labels(stage: ModelStage) -> dict[str, str]:
    """The Deployment's selector: model and stage, never the version, so it never changes."""
    return {MODEL_LABEL: stage.spec.model, STAGE_LABEL: stage.spec.stage}


def wants_fetch(stage: ModelStage) -> bool:
    """Whether the ModelStage asks for the artifact-fetching init container."""
    value = (stage.metadata.annotations or {}).get(FETCH_ANNOTATION, "")
    return value.strip().lower() == "true"


def desired_deployment(
    stage: ModelStage,
    version: int,
    artifact_uri: str,
    owner: OwnerReference,
    *,
    artifact_digest: str | None = None,
    fetch_image: str | None = None,
) -> dict[str, Any]:
    """The Deployment serving `version` (whose artifact is at `artifact_uri`, with
    `artifact_digest`) for `stage`.

    Raises ServingError when the stage has no serving, when its template is not shaped like a
    pod template, or when it asks for the fetch init container and `fetch_image` is unset.
    """
    serving = stage.spec.serving
    if serving is None:
        raise ServingError("spec.serving is not set: the stage has no serving Deployment")
    artifact = _Artifact(artifact_uri, artifact_digest)
    template = _pod_template(stage, version, artifact, fetch_image=fetch_image)
    name = deployment_name(stage)
    labels = {**selector_labels(stage), MANAGED_BY_LABEL: MANAGED_BY}
    metadata: dict[str, Any] = {
        "name": name,
        "labels": labels,
        "annotations": {VERSION_ANNOTATION: str(version)},
        "ownerReferences": [owner.to_dict()],
    }
    if stage.metadata.namespace:
        metadata["namespace"] = stage.metadata.namespace
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": serving.replicas,
            "selector": {"matchLabels": selector_labels(stage)},
            "template": template,
            "progressDeadlineSeconds": serving.progress_deadline_seconds,
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
        },
    }


def template_hash(template: Mapping[str, Any]) -> str:
    """A digest of a pod template, leaving out the hash annotation itself."""
    stripped = copy.deepcopy(dict(template))
    annotations = (stripped.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(TEMPLATE_HASH_ANNOTATION, None)
    text = json.dumps(stripped, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_LENGTH]


@dataclass(frozen=True)
class _Artifact:
    uri: str
    digest: str | None


def _pod_template(
    stage: ModelStage, version: int, artifact: _Artifact, *, fetch_image: str | None
) -> dict[str, Any]:
    assert stage.spec.serving is not None  # noqa: S101 - checked by the caller
    template = copy.deepcopy(stage.spec.serving.template)
    metadata = _object(template, "metadata", "spec.serving.template.metadata")
    spec = _object(template, "spec", "spec.serving.template.spec")
    containers = _containers(spec, "containers")
    if not containers:
        raise ServingError("spec.serving.template.spec.containers must list at least one container")
    init_containers = _containers(spec, "initContainers")
    env = _model_env(stage, version, artifact)
    fetch = wants_fetch(stage)
    if fetch:
        if not fetch_image:
            raise ServingError(
                f"annotation {FETCH_ANNOTATION} asks for the artifact to be fetched, but the "
                f"operator has no image for it: set {FETCH_IMAGE_ENV} in its environment"
            )
        env = [*env, {"name": "MODEL_PATH", "value": MODEL_MOUNT_PATH}]
        _add_model_volume(spec)
        init_containers.insert(0, _fetch_container(stage, fetch_image))
        spec["initContainers"] = init_containers
    for container in [*init_containers, *containers]:
        container["env"] = _merge_env(container.get("env"), env)
        if fetch:
            _mount_model(container, read_only=container.get("name") != FETCH_CONTAINER)
    labels = _object(metadata, "labels", "spec.serving.template.metadata.labels")
    labels.update({**selector_labels(stage), VERSION_LABEL: str(version)})
    annotations = _object(metadata, "annotations", "spec.serving.template.metadata.annotations")
    annotations.update(
        {
            MODEL_ANNOTATION: stage.spec.model,
            VERSION_ANNOTATION: str(version),
            URI_ANNOTATION: artifact.uri,
        }
    )
    if artifact.digest:
        annotations[DIGEST_ANNOTATION] = artifact.digest
    annotations[TEMPLATE_HASH_ANNOTATION] = template_hash(template)
    return template


def _object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = parent.setdefault(key, {})
    if value is None:
        value = parent[key] = {}
    if not isinstance(value, dict):
        raise ServingError(f"{where} must be an object")
    return value


def _containers(spec: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = spec.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ServingError(f"spec.serving.template.spec.{key} must be a list of containers")
    return value


def _model_env(stage: ModelStage, version: int, artifact: _Artifact) -> list[dict[str, str]]:
    env = [
        {"name": "MODEL_NAME", "value": stage.spec.model},
        {"name": "MODEL_VERSION", "value": str(version)},
        {"name": "MODEL_URI", "value": artifact.uri},
    ]
    if artifact.digest:
        env.append({"name": "MODEL_DIGEST", "value": artifact.digest})
    env.append({"name": "MODEL_STAGE", "value": stage.spec.stage})
    return env


def _merge_env(current: Any, added: Sequence[dict[str, str]]) -> list[Any]:
    """The container's environment with `added` replacing variables of the same names."""
    names = {item["name"] for item in added}
    kept = [
        item
        for item in (current if isinstance(current, list) else [])
        if not (isinstance(item, dict) and item.get("name") in names)
    ]
    return [*kept, *(dict(item) for item in added)]


def _add_model_volume(spec: dict[str, Any]) -> None:
    volumes = spec.get("volumes")
    if not isinstance(volumes, list):
        volumes = []
    volumes = [v for v in volumes if not (isinstance(v, dict) and v.get("name") == MODEL_VOLUME)]
    volumes.append({"name": MODEL_VOLUME, "emptyDir": {}})
    spec["volumes"] = volumes


def _mount_model(container: dict[str, Any], *, read_only: bool) -> None:
    mounts = container.get("volumeMounts")
    if not isinstance(mounts, list):
        mounts = []
    mounts = [m for m in mounts if not (isinstance(m, dict) and m.get("name") == MODEL_VOLUME)]
    mounts.append({"name": MODEL_VOLUME, "mountPath": MODEL_MOUNT_PATH, "readOnly": read_only})
    container["volumeMounts"] = mounts


def _fetch_container(stage: ModelStage, image: str) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": FETCH_CONTAINER,
        "image": image,
        # $(MODEL_URI) is expanded by the kubelet from the container's environment.
        "command": ["modelplane", "fetch", "$(MODEL_URI)", MODEL_MOUNT_PATH],
    }
    secret = (stage.metadata.annotations or {}).get(FETCH_CREDENTIALS_ANNOTATION)
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    return container


def rollback_deployment(desired: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """`desired` with an earlier pod template put back (replicas and deadline stay current)."""
    body = copy.deepcopy(dict(desired))
    body["spec"]["template"] = copy.deepcopy(dict(template))
    version = _annotation(template, VERSION_ANNOTATION)
    annotations = body["metadata"].setdefault("annotations", {})
    if version is not None:
        annotations[VERSION_ANNOTATION] = version
    return body


def replacement(desired: Mapping[str, Any], current: Mapping[str, Any]) -> dict[str, Any]:
    """The body that replaces `current` with `desired` (a PUT guarded by its resourceVersion).

    Labels and annotations that others put on the Deployment (the Deployment controller's
    revision, our last-good mark) are kept; ours win where both set one.
    """
    body = copy.deepcopy(dict(desired))
    metadata = body["metadata"]
    current_meta = current.get("metadata") or {}
    metadata["resourceVersion"] = current_meta.get("resourceVersion")
    for key in ("labels", "annotations"):
        merged = {**(current_meta.get(key) or {}), **(metadata.get(key) or {})}
        if merged:
            metadata[key] = merged
    return body


# -- observing ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeploymentState:
    """What a Deployment says about the rollout, read like `kubectl rollout status`."""

    name: str
    controller_uid: str | None
    """uid of the object whose ownerReference has `controller: true`."""
    version: int | None
    """The model version its pod template serves (annotation modelplane.io/model-version)."""
    template_hash: str | None
    good_hash: str | None
    """The template that last completed a rollout (annotation modelplane.io/last-good-template)."""
    revision: int | None
    replicas: int
    updated_replicas: int
    available_replicas: int
    phase: DeploymentPhase
    message: str
    labels: Mapping[str, str]
    progress_deadline_seconds: int | None
    revision_history_limit: int | None
    template: Mapping[str, Any]
    """The pod template as the API server holds it (with its defaults filled in)."""


def observe(deployment: Mapping[str, Any]) -> DeploymentState:
    """The rollout state of a Deployment as read from the API server."""
    metadata = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    template = spec.get("template") or {}
    replicas = _int(spec.get("replicas"), 1)
    updated = _int(status.get("updatedReplicas"), 0)
    available = _int(status.get("availableReplicas"), 0)
    total = _int(status.get("replicas"), 0)
    phase, message = _phase(
        metadata, status, replicas=replicas, updated=updated, available=available, total=total
    )
    return DeploymentState(
        name=str(metadata.get("name", "")),
        controller_uid=controller_uid(metadata),
        version=_version(_annotation(template, VERSION_ANNOTATION)),
        template_hash=_annotation(template, TEMPLATE_HASH_ANNOTATION),
        good_hash=(metadata.get("annotations") or {}).get(LAST_GOOD_ANNOTATION),
        revision=_version((metadata.get("annotations") or {}).get(REVISION_ANNOTATION)),
        replicas=replicas,
        updated_replicas=updated,
        available_replicas=available,
        phase=phase,
        message=message,
        labels=dict(metadata.get("labels") or {}),
        progress_deadline_seconds=spec.get("progressDeadlineSeconds"),
        revision_history_limit=spec.get("revisionHistoryLimit"),
        template=template,
    )


def _phase(
    metadata: Mapping[str, Any],
    status: Mapping[str, Any],
    *,
    replicas: int,
    updated: int,
    available: int,
    total: int,
) -> tuple[DeploymentPhase, str]:
    generation = _int(metadata.get("generation"), 0)
    observed = _int(status.get("observedGeneration"), 0)
    if observed < generation:
        return "Pending", "waiting for the Deployment controller to take the new spec"
    progressing = next(
        (c for c in status.get("conditions") or () if c.get("type") == "Progressing"), None
    )
    if progressing is not None and progressing.get("reason") == DEADLINE_EXCEEDED:
        detail = progressing.get("message") or "the rollout made no progress in time"
        return "Failed", f"{DEADLINE_EXCEEDED}: {detail}"
    if updated < replicas:
        return "Progressing", f"{updated} of {replicas} replicas updated"
    if total > updated:
        return "Progressing", f"{total - updated} old replicas pending termination"
    if available < updated:
        return "Progressing", f"{available} of {updated} updated replicas available"
    return "Complete", f"{available} of {replicas} replicas available"


def matches(state: DeploymentState, desired: Mapping[str, Any]) -> bool:
    """Whether the Deployment runs what `desired` asks: same template, replicas and settings.

    The template must carry the desired hash and hold every value the desired template sets
    (`covers`), so an edit of the Deployment's template (an image, MODEL_VERSION) is noticed
    even when it leaves the hash annotation in place.
    """
    spec = desired["spec"]
    wanted_labels = desired["metadata"].get("labels") or {}
    return (
        state.template_hash == _annotation(spec["template"], TEMPLATE_HASH_ANNOTATION)
        and covers(state.template, spec["template"])
        and state.replicas == spec["replicas"]
        and state.progress_deadline_seconds == spec["progressDeadlineSeconds"]
        and state.revision_history_limit == spec["revisionHistoryLimit"]
        and all(state.labels.get(key) == value for key, value in wanted_labels.items())
    )


def covers(actual: Any, desired: Any, *, quantities: bool = False) -> bool:
    """Whether `actual` (as the API server returns it) holds every value `desired` sets.

    The API server fills in defaults and leaves out empty values, so the comparison is not
    equality: objects are compared key by key and may hold more keys; lists element by element
    and must be as long; a missing value equals an empty or zero one (false, 0, "", [], {});
    resource quantities compare by value (`1000m` is `1`).
    """
    if isinstance(desired, Mapping):
        return _covers_object(actual, desired, quantities=quantities)
    if isinstance(desired, list):
        return _covers_list(actual, desired, quantities=quantities)
    if desired is None or (actual is None and desired in (False, 0, "")):
        return True
    if actual == desired and type(actual) is type(desired):
        return True
    return quantities and _same_quantity(actual, desired)


def _covers_object(actual: Any, desired: Mapping[str, Any], *, quantities: bool) -> bool:
    if actual is None:
        actual = {}
    if not isinstance(actual, Mapping):
        return False
    return all(
        covers(actual.get(key), value, quantities=quantities or key in _QUANTITY_KEYS)
        for key, value in desired.items()
    )


def _covers_list(actual: Any, desired: list[Any], *, quantities: bool) -> bool:
    if actual is None:
        actual = []
    if not isinstance(actual, list) or len(actual) != len(desired):
        return False
    return all(covers(a, d, quantities=quantities) for a, d in zip(actual, desired, strict=True))


# Keys whose values (or values below them) are resource quantities.
_QUANTITY_KEYS = frozenset({"resources", "overhead", "sizeLimit"})


def _same_quantity(actual: Any, desired: Any) -> bool:
    try:
        return bool(parse_quantity(actual) == parse_quantity(desired))
    except (ValueError, TypeError):
        return False


def desired_hash(desired: Mapping[str, Any]) -> str | None:
    """The template hash a desired Deployment carries."""
    return _annotation(desired["spec"]["template"], TEMPLATE_HASH_ANNOTATION)


def controller_uid(metadata: Mapping[str, Any]) -> str | None:
    """uid of an object's controller, from its ownerReferences."""
    for ref in metadata.get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


# -- going back -----------------------------------------------------------------------------


def rollback_template(
    replicasets: Sequence[Mapping[str, Any]],
    state: DeploymentState,
    *,
    deployment_uid: str,
    live_version: int,
) -> dict[str, Any] | None:
    """The pod template to put back after a failed rollout, or None when there is none.

    It is the template of the Deployment's ReplicaSet that last completed a rollout; when that
    mark is missing, the newest other ReplicaSet serving `live_version`. The ReplicaSet's
    `pod-template-hash` label is removed, as `kubectl rollout undo` does.
    """
    owned = [rs for rs in replicasets if controller_uid(rs.get("metadata") or {}) == deployment_uid]
    candidates = [
        rs
        for rs in owned
        if _rs_hash(rs) != state.template_hash
        and _version(_annotation(_rs_template(rs), VERSION_ANNOTATION)) == live_version
    ]
    chosen = next((rs for rs in candidates if _rs_hash(rs) == state.good_hash), None)
    if chosen is None and candidates:
        chosen = max(candidates, key=_rs_revision)
    if chosen is None:
        return None
    template = copy.deepcopy(dict(_rs_template(chosen)))
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(POD_TEMPLATE_HASH_LABEL, None)
    return template


def _rs_template(rs: Mapping[str, Any]) -> Mapping[str, Any]:
    return (rs.get("spec") or {}).get("template") or {}


def _rs_hash(rs: Mapping[str, Any]) -> str | None:
    return _annotation(_rs_template(rs), TEMPLATE_HASH_ANNOTATION)


def _rs_revision(rs: Mapping[str, Any]) -> int:
    annotations = (rs.get("metadata") or {}).get("annotations") or {}
    return _version(annotations.get(REVISION_ANNOTATION)) or 0


# -- helpers --------------------------------------------------------------------------------


def _annotation(template: Mapping[str, Any], key: str) -> str | None:
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(key) if isinstance(annotations, Mapping) else None
    return str(value) if value is not None else None


def _version(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
