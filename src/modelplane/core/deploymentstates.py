"""What a serving Deployment, as the API server returns it, says about its rollout.

`observe` reads a Deployment the way `kubectl rollout status` does: the Deployment controller
must have seen the latest spec (observedGeneration), then all replicas must be updated and
available and no old replica left; a Progressing condition with reason ProgressDeadlineExceeded
means the rollout failed. `matches` tells whether the Deployment runs what the ModelStage asks
for (the desired Deployment built by `modelplane.core.rollouts`), comparing with `covers`, which
allows for the defaults the API server fills in.

Everything here is pure: plain dicts in, plain values out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kubernetes.utils.quantity import parse_quantity

from modelplane.core.rollouts import (
    LAST_GOOD_ANNOTATION,
    LAST_GOOD_LABEL,
    TEMPLATE_HASH_ANNOTATION,
    VERSION_ANNOTATION,
)

# Set by the Deployment controller.
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"

DeploymentPhase = Literal["Pending", "Progressing", "Complete", "Failed"]


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
    """The template that last completed a rollout (label modelplane.io/last-good-template)."""
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
        version=int_or_none(template_annotation(template, VERSION_ANNOTATION)),
        template_hash=template_annotation(template, TEMPLATE_HASH_ANNOTATION),
        good_hash=(metadata.get("labels") or {}).get(LAST_GOOD_LABEL)
        or (metadata.get("annotations") or {}).get(LAST_GOOD_ANNOTATION),
        revision=int_or_none((metadata.get("annotations") or {}).get(REVISION_ANNOTATION)),
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
        state.template_hash == template_annotation(spec["template"], TEMPLATE_HASH_ANNOTATION)
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
    return template_annotation(desired["spec"]["template"], TEMPLATE_HASH_ANNOTATION)


def controller_uid(metadata: Mapping[str, Any]) -> str | None:
    """uid of an object's controller, from its ownerReferences."""
    for ref in metadata.get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller"):
            uid = ref.get("uid")
            return str(uid) if uid else None
    return None


def template_annotation(template: Mapping[str, Any], key: str) -> str | None:
    """An annotation of a pod template (or of any object), as a string; None when unset."""
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(key) if isinstance(annotations, Mapping) else None
    return str(value) if value is not None else None


def int_or_none(value: str | None) -> int | None:
    """An annotation's value as a whole number; None when it is unset or not a number."""
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
