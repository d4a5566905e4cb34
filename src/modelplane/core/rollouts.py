"""The serving Deployment of a ModelStage: its labels and annotations, and how it is built.

`desired_deployment` turns `spec.serving` and one model version into the Deployment that
serves it. The Deployment is named like its ModelStage (`<model>-<stage in lower case>`), is
controlled by it (ownerReference with `controller: true`, so it is garbage-collected with it),
and selects its pods by the labels `modelplane.io/model` and `modelplane.io/stage` only, so
the selector, which Kubernetes never lets change, stays the same across versions. The user's pod
template is kept as it is; modelplane adds:

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

What a Deployment's state says about its rollout is read in `modelplane.core.deploymentstates`;
how a failed rollout goes back, in `modelplane.core.rollbacks`. Everything here is pure: plain
dicts in, plain dicts out.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

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
LAST_GOOD_LABEL = "modelplane.io/last-good-template"
"""On the Deployment: the template hash of its last complete rollout. A label, because the API
server bumps a Deployment's generation on every change of its annotations: marking it with an
annotation made each finished rollout look unobserved for a moment, and the stage's status went
back to Progressing and forward again."""
LAST_GOOD_ANNOTATION = LAST_GOOD_LABEL
"""Where releases before the label kept the mark; still read when no label is set."""
FETCH_ANNOTATION = "modelplane.io/fetch-artifact"
FETCH_CREDENTIALS_ANNOTATION = "modelplane.io/fetch-credentials"

FETCH_IMAGE_ENV = "MODELPLANE_FETCH_IMAGE"
FETCH_CONTAINER = "modelplane-fetch"
MODEL_VOLUME = "modelplane-model"
MODEL_MOUNT_PATH = "/models"

REVISION_HISTORY_LIMIT = 10
"""ReplicaSets kept per Deployment: the templates a rollback can go back to."""

_HASH_LENGTH = 16


class ServingError(ValueError):
    """`spec.serving` (or the fetch settings) cannot make a Deployment; the message says why."""


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
