"""Approvals of a ModelStage's version, bound to the identity the API server authenticated.

An approval is never a free-text field that anyone able to edit the object could fill in. It
lives in an annotation that only its author can write, and the admission webhook checks every
write against the request's authenticated `userInfo`:

- `modelplane.io/requested-by` names who set `spec.version` to its current value. The mutating
  webhook stamps it from `userInfo.username` on create and whenever `spec.version` changes,
  overwriting whatever the client sent; the validating webhook refuses any other change to it.
- An approval is the annotation `approval.modelplane.io/<hash of the approver's username>`
  (`approval_key`), one per approver, holding JSON
  `{"user": "bob", "version": 4, "comment": "...", "at": "..."}`. The mutating webhook stamps
  `at`; the validating webhook admits a new or changed approval only when the key is the hash
  of the requester's own username, `user` is that username, `version` is the stage's
  `spec.version`, the author is not the one who requested that version, and a
  SubjectAccessReview grants the author the custom verb `approve` on this ModelStage
  (group modelplane.io, resource modelstages), the way CertificateSigningRequests are approved.
  Withdrawing one's own approval (deleting the annotation) needs nothing more; removing
  someone else's needs the `approve` verb.

Approving a later version overwrites the approver's earlier annotation, so the annotations stay
bounded by the number of approvers. The gates count, for the desired version, distinct approvers
other than the requester (`modelplane.core.gates`).

These annotations are trustworthy only while the webhook guards every write, which is why its
identity checks fail closed (see `modelplane.operator.admission`). This module is pure: it
parses and checks; the webhook supplies the user and the SubjectAccessReview's answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from modelplane.api import GROUP, Approval
from modelplane.api.modelstages import MAX_APPROVALS

REQUESTED_BY_ANNOTATION = f"{GROUP}/requested-by"
APPROVAL_PREFIX = f"approval.{GROUP}/"
APPROVE_VERB = "approve"
"""The RBAC verb on `modelstages` that lets a user approve (see examples/rbac/approvers.yaml)."""

# 20 hex digits (80 bits): short enough for an annotation name, far beyond guessing a collision.
_HASH_LENGTH = 20


class ApprovalError(ValueError):
    """An approval annotation that does not hold a well-formed approval."""


def approval_key(user: str) -> str:
    """The annotation key of `user`'s approval: `approval.modelplane.io/<sha256 prefix>`.

    Usernames may hold characters an annotation name cannot (`system:serviceaccount:ns:sa`,
    `alice@example.com`), so the key holds a stable hash and the value names the user.
    """
    digest = hashlib.sha256(user.encode("utf-8")).hexdigest()[:_HASH_LENGTH]
    return APPROVAL_PREFIX + digest


def is_approval_key(key: str) -> bool:
    return key.startswith(APPROVAL_PREFIX)


def encode_approval(
    user: str, version: int, *, comment: str | None = None, at: datetime | None = None
) -> tuple[str, str]:
    """The annotation (key, value) recording `user`'s approval of `version`."""
    value: dict[str, Any] = {"user": user, "version": version}
    if comment:
        value["comment"] = comment
    if at is not None:
        value["at"] = at.isoformat()
    return approval_key(user), json.dumps(value, separators=(",", ":"))


def decode_approval(key: str, value: str) -> Approval:
    """The approval an annotation holds; ApprovalError says what is wrong with it.

    The key must be the hash of the value's user, so an approval cannot pose as another's.
    """
    try:
        raw = json.loads(value)
    except json.JSONDecodeError as exc:
        raise ApprovalError(f"annotation {key} is not JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise ApprovalError(f"annotation {key} must hold a JSON object")
    if not isinstance(raw.get("version"), int) or isinstance(raw.get("version"), bool):
        raise ApprovalError(f"annotation {key} must hold an integer version")
    try:
        approval = Approval.model_validate(raw)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors(include_url=False))
        raise ApprovalError(f"annotation {key} holds an invalid approval ({fields})") from None
    if key != approval_key(approval.user):
        raise ApprovalError(
            f"annotation {key} does not belong to user {approval.user!r}: "
            f"their approval key is {approval_key(approval.user)}"
        )
    return approval


def stamp_approval(value: str, at: datetime) -> str | None:
    """`value` with `at` set to the time of the write, or None when it is not a JSON object.

    The mutating webhook stamps the time so that an approval says when it was given.
    """
    try:
        raw = json.loads(value)
    except json.JSONDecodeError:
        return None
    if not isinstance(raw, dict):
        return None
    raw["at"] = at.isoformat()
    return json.dumps(raw, separators=(",", ":"))


def approvals_of(
    annotations: Mapping[str, str] | None, version: int | None = None
) -> list[Approval]:
    """The well-formed approvals among `annotations`, oldest first, at most MAX_APPROVALS.

    With `version`, only approvals of that version. Malformed ones are skipped: the webhook
    refuses them, so they can only predate it.
    """
    found: list[Approval] = []
    for key, value in (annotations or {}).items():
        if not is_approval_key(key):
            continue
        try:
            approval = decode_approval(key, value)
        except ApprovalError:
            continue
        if version is None or approval.version == version:
            found.append(approval)
    found.sort(key=lambda approval: (approval.at, approval.user))
    return found[-MAX_APPROVALS:]


def requested_by(annotations: Mapping[str, str] | None) -> str | None:
    """Who set spec.version to its current value, as the webhook stamped it; None if unknown."""
    value = (annotations or {}).get(REQUESTED_BY_ANNOTATION)
    return value or None


# -- admission decisions -------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovalChange:
    """An approval annotation that a write adds (`before` None), changes, or removes."""

    key: str
    before: str | None
    after: str | None


def approval_changes(
    old: Mapping[str, str] | None, new: Mapping[str, str] | None
) -> list[ApprovalChange]:
    """The approval annotations that differ between `old` and `new`, sorted by key."""
    old, new = old or {}, new or {}
    keys = {key for key in (*old, *new) if is_approval_key(key)}
    return [
        ApprovalChange(key, old.get(key), new.get(key))
        for key in sorted(keys)
        if old.get(key) != new.get(key)
    ]


@dataclass(frozen=True)
class Verdict:
    """What admission decides about one approval change before asking RBAC.

    `denied` is the reason to refuse at once; otherwise the change is admitted if
    `needs_approve_verb` is False or a SubjectAccessReview grants the verb.
    """

    denied: str | None = None
    needs_approve_verb: bool = False


def judge_approval_change(
    change: ApprovalChange, *, username: str, spec_version: int, requester: str | None
) -> Verdict:
    """Whether `username` may make `change` on a ModelStage at `spec_version`.

    `requester` is who requested `spec_version` (the requested-by annotation after this write).
    """
    own_key = approval_key(username)
    if change.after is None:
        # Withdrawing one's own approval is always allowed; someone else's needs the verb.
        return Verdict(needs_approve_verb=change.key != own_key)
    try:
        approval = decode_approval(change.key, change.after)
    except ApprovalError as exc:
        return Verdict(denied=str(exc))
    if approval.user != username:
        return Verdict(
            denied=f"{username!r} cannot write an approval in the name of {approval.user!r}"
        )
    if approval.version != spec_version:
        return Verdict(
            denied=f"the approval is for version {approval.version}, but spec.version is "
            f"{spec_version}: only the desired version can be approved"
        )
    if requester is not None and requester == username:
        return Verdict(
            denied=f"{username!r} requested version {spec_version} and cannot approve their "
            "own change"
        )
    return Verdict(needs_approve_verb=True)


def judge_requested_by(
    old: Mapping[str, str] | None,
    new: Mapping[str, str] | None,
    *,
    version_set: bool,
    username: str,
) -> str | None:
    """Why the write's requested-by annotation is refused, or None when it is as it must be.

    After the mutating webhook it must name the writer when this write sets spec.version
    (`version_set`: a create, or an update that changes it), and be unchanged otherwise.
    """
    before = (old or {}).get(REQUESTED_BY_ANNOTATION)
    after = (new or {}).get(REQUESTED_BY_ANNOTATION)
    expected = username if version_set else before
    if after == expected:
        return None
    return (
        f"annotation {REQUESTED_BY_ANNOTATION} is set by modelplane from the authenticated "
        "user who changes spec.version and cannot be written by hand"
    )
