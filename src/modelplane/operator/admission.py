"""Admission webhooks for ModelStages: who asked for a version, who approved it, and its gates.

Three webhooks (kopf registers each as its own entry of the `modelplane.io` webhook
configurations; `modelplane.operator.webhooks` serves them), each with a failure policy chosen
for what it protects:

- `stamp` (mutating, **fails closed**): on create, and whenever an update changes
  `spec.version`, sets `modelplane.io/requested-by` to the request's authenticated username,
  overwriting what the client sent; on every added or changed approval annotation, sets the
  approval's `at` to now. If the webhook cannot be reached, ModelStage writes are refused:
  a version change without its requester would let that person approve their own change.
- `identity` (validating, **fails closed**): refuses a hand edit of requested-by and every
  approval write that `modelplane.core.approvals` refuses (someone else's key or name, another
  version than spec.version, the requester approving their own version), and asks the API
  server with a SubjectAccessReview whether the user holds the verb `approve` on this
  ModelStage. An approval written while nobody checks it could not be trusted later, since
  nothing records who wrote an annotation; hence fail closed, and a failed review denies.
- `gates` (validating, **fails open**): when a write sets `spec.version` (a create, or an
  update that changes it), refuses it unless the ModelVersion exists, its artifact is verified,
  it is Ready, and it passes its metric and requireStage gates; the message names each failed
  gate and the observed value, e.g. `gate test_auc >= 0.82 failed: observed 0.79 (version 4)`.
  Approvals are not yet due at that moment, and a version live in the required stage but not
  yet for minDuration only needs time, so those add a warning and the promotion waits in
  status. Returning to the version already live in the stage (cancelling a
  pending promotion) is always admitted: nothing that serves changes. If the webhook cannot be
  reached, or reading the inputs fails, the write is admitted (with a warning when possible):
  the operator evaluates the same gates before it rolls anything out, so this webhook only
  makes refusals quick and visible.

The two that fail closed are `persistent`: they stay configured while the operator is down
(see `modelplane.operator.webhooks` for `local` mode, which removes them on a clean shutdown).

The webhook configurations apply to the whole cluster; in namespaces the operator does not
serve (`--namespace` patterns), the handlers do nothing and every write is admitted.

All three are coroutines that answer on the event loop, without waiting for a thread of the
pool that reconciliations keep busy. `stamp` and `identity` decide from the request alone (only
the SubjectAccessReview of an approval runs in a thread). `gates` judges from the watch cache
(`modelplane.operator.watchcache`) and admits what it admits; only to refuse, or when the
version is not cached, does it read the API server, in a thread. A cached copy admitted a
moment too early costs nothing: the operator evaluates the gates again before rolling out. The
decisions themselves are pure functions in `modelplane.core.approvals`,
`modelplane.core.gates` and `modelplane.core.gateverdicts`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client
from pydantic import ValidationError

from modelplane.api import GROUP, VERSION, ModelStage
from modelplane.core import approvals
from modelplane.core.gateverdicts import judge_version_change
from modelplane.operator import gateinputs, kube, webhooks

logger = logging.getLogger(__name__)

PLURAL = "modelstages"
OPERATIONS: tuple[kopf.Operation, ...] = ("CREATE", "UPDATE")
# Webhook calls time out after 30 seconds; an API read must give up well before that.
REQUEST_TIMEOUT = 10


def in_scope(namespace: str | None, memo: kopf.Memo, **_: Any) -> bool:
    """Whether the operator serves the object's namespace (the configurations are cluster-wide)."""
    return webhooks.config_of(memo).serves(namespace)


def _annotations(body: Mapping[str, Any] | None) -> dict[str, str]:
    if body is None:
        return {}
    return dict(body.get("metadata", {}).get("annotations") or {})


def _version(body: Mapping[str, Any] | None) -> Any:
    return None if body is None else body.get("spec", {}).get("version")


def sets_version(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether the write sets spec.version: a create, or an update that changes it."""
    return old is None or _version(old) != _version(new)


# -- mutating ------------------------------------------------------------------------------


@kopf.on.mutate(
    GROUP, VERSION, PLURAL, id="stamp", operations=OPERATIONS, persistent=True, when=in_scope
)
async def stamp(
    *,
    body: kopf.Body,
    userinfo: kopf.UserInfo,
    patch: kopf.Patch,
    old: kopf.Body | None = None,
    **_: Any,
) -> None:
    """Stamp requested-by on a version change and the time on new or changed approvals."""
    annotations: dict[str, str | None] = {}
    if sets_version(old, body):
        annotations[approvals.REQUESTED_BY_ANNOTATION] = str(userinfo.get("username", ""))
    now = datetime.now(UTC).replace(microsecond=0)
    for change in approvals.approval_changes(_annotations(old), _annotations(body)):
        if change.after is None:
            continue
        stamped = approvals.stamp_approval(change.after, now)
        if stamped is not None:
            annotations[change.key] = stamped
    if annotations:
        patch.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)


# -- validating: identity ------------------------------------------------------------------


@kopf.on.validate(
    GROUP, VERSION, PLURAL, id="identity", operations=OPERATIONS, persistent=True, when=in_scope
)
async def check_identity(
    *,
    body: kopf.Body,
    userinfo: kopf.UserInfo,
    old: kopf.Body | None = None,
    **_: Any,
) -> None:
    """Refuse hand edits of requested-by and approvals the writer may not make."""
    username = str(userinfo.get("username", ""))
    before, after = _annotations(old), _annotations(body)
    refused = approvals.judge_requested_by(
        before, after, version_set=sets_version(old, body), username=username
    )
    if refused is not None:
        raise kopf.AdmissionError(refused, code=403)
    changes = approvals.approval_changes(before, after)
    if not changes:
        return
    version = _version(body)
    requester = approvals.requested_by(after)
    needs_verb = False
    for change in changes:
        verdict = approvals.judge_approval_change(
            change, username=username, spec_version=version, requester=requester
        )
        if verdict.denied is not None:
            raise kopf.AdmissionError(verdict.denied, code=403)
        needs_verb = needs_verb or verdict.needs_approve_verb
    metadata = body.get("metadata", {})
    namespace, name = metadata.get("namespace"), metadata.get("name")
    if needs_verb and not await asyncio.to_thread(may_approve, userinfo, namespace, name):
        raise kopf.AdmissionError(
            f"{username!r} may not approve ModelStage {namespace}/{name}: RBAC does not grant "
            f"the verb {approvals.APPROVE_VERB!r} on {PLURAL}.{GROUP}",
            code=403,
        )


def may_approve(userinfo: Mapping[str, Any], namespace: str, name: str) -> bool:
    """Whether RBAC grants the user the verb `approve` on this ModelStage (SubjectAccessReview).

    An error from the API server propagates, and kopf then refuses the write: fail closed.
    """
    spec: dict[str, Any] = {
        "user": userinfo.get("username"),
        "groups": list(userinfo.get("groups") or []),
        "resourceAttributes": {
            "namespace": namespace,
            "verb": approvals.APPROVE_VERB,
            "group": GROUP,
            "resource": PLURAL,
            "name": name,
        },
    }
    if userinfo.get("uid"):
        spec["uid"] = userinfo["uid"]
    if userinfo.get("extra"):
        spec["extra"] = dict(userinfo["extra"])
    review = client.AuthorizationV1Api(kube.api_client()).create_subject_access_review(
        {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec},
        _request_timeout=REQUEST_TIMEOUT,
    )
    return bool(review.status and review.status.allowed)


# -- validating: gates ---------------------------------------------------------------------


@kopf.on.validate(
    GROUP, VERSION, PLURAL, id="gates", operations=OPERATIONS, ignore_failures=True, when=in_scope
)
async def check_gates(
    *,
    body: kopf.Body,
    warnings: list[str],
    old: kopf.Body | None = None,
    **_: Any,
) -> None:
    """Refuse a new spec.version that is missing, unverified or fails a metric or stage gate.

    The watch cache answers first, on the event loop: what it admits is admitted. A refusal
    is made only from the API server's copies, read in a thread, since a refusal made from a
    copy a moment old would be final for the writer."""
    if not sets_version(old, body):
        return
    try:
        stage = ModelStage.from_object(body)
    except ValidationError:
        return  # The CRD's schema has the last word on shape; nothing to check here.
    if stage.status is not None and stage.status.live_version == stage.spec.version:
        return
    namespace = stage.metadata.namespace or ""
    cached = gateinputs.cached_admission_reads(namespace, stage)
    if cached is not None:
        verdict = judge_version_change(stage, *cached, now=datetime.now(UTC))
        if verdict.admitted:
            warnings.extend(verdict.warnings)
            return
    try:
        fresh = await asyncio.to_thread(
            gateinputs.fetch_admission_reads,
            namespace,
            stage,
            timeout=REQUEST_TIMEOUT,
            keep=cached is None,
        )
    except client.ApiException as exc:
        logger.warning(
            "gates of %s/%s not checked at admission: %s", namespace, stage.metadata.name, exc
        )
        warnings.append(
            f"the gates of version {stage.spec.version} were not checked at admission "
            f"({exc.reason}); the operator checks them before rolling out"
        )
        return
    verdict = judge_version_change(stage, *fresh, now=datetime.now(UTC))
    if verdict.refusal is not None:
        raise kopf.AdmissionError(verdict.refusal, code=403)
    warnings.extend(verdict.warnings)


@kopf.on.cleanup()
def remove_local_webhooks(memo: kopf.Memo, **_: Any) -> None:
    """In local mode, delete the webhook configurations: their endpoint dies with us."""
    if webhooks.config_of(memo).mode == "local":
        webhooks.delete_configurations(kube.api_client())
