"""How a failed rollout of a serving Deployment goes back to the template that last served.

A failed rollout is undone the way `kubectl rollout undo` does it: the pod template of an
earlier ReplicaSet of the Deployment is put back (`rollback_template`, then
`rollback_deployment`). It is the ReplicaSet whose template last completed a rollout, which the
operator labels the Deployment with (`modelplane.io/last-good-template`), so a rollback restores
the template that served, not the current `spec.serving.template` with the old version number in
it (that template may be what broke).

Everything here is pure: plain dicts in, plain dicts out.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from modelplane.core.deploymentstates import (
    REVISION_ANNOTATION,
    DeploymentState,
    controller_uid,
    int_or_none,
    template_annotation,
)
from modelplane.core.rollouts import TEMPLATE_HASH_ANNOTATION, VERSION_ANNOTATION

# Set by the Deployment controller on the ReplicaSets it makes.
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"


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
        and int_or_none(template_annotation(_rs_template(rs), VERSION_ANNOTATION)) == live_version
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


def rollback_deployment(desired: Mapping[str, Any], template: Mapping[str, Any]) -> dict[str, Any]:
    """`desired` with an earlier pod template put back (replicas and deadline stay current)."""
    body = copy.deepcopy(dict(desired))
    body["spec"]["template"] = copy.deepcopy(dict(template))
    version = template_annotation(template, VERSION_ANNOTATION)
    annotations = body["metadata"].setdefault("annotations", {})
    if version is not None:
        annotations[VERSION_ANNOTATION] = version
    return body


def _rs_template(rs: Mapping[str, Any]) -> Mapping[str, Any]:
    return (rs.get("spec") or {}).get("template") or {}


def _rs_hash(rs: Mapping[str, Any]) -> str | None:
    return template_annotation(_rs_template(rs), TEMPLATE_HASH_ANNOTATION)


def _rs_revision(rs: Mapping[str, Any]) -> int:
    annotations = (rs.get("metadata") or {}).get("annotations") or {}
    return int_or_none(annotations.get(REVISION_ANNOTATION)) or 0
