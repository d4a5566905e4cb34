"""When to verify a ModelVersion's artifact, and what a check means for its status.

The store streams the whole artifact through sha256 (or the manifest of a directory), so a
check is not free; it runs when it is **due**:

- the version has no verdict yet (just created, or created while the operator was down);
- the last attempt could not reach the store (`ArtifactVerified=Unknown`, `StoreUnreachable`):
  the caller retries with a growing, capped delay (`retry_delay`);
- someone asked, by setting the annotation `modelplane.io/verify-requested` to a new value
  (`kubectl annotate --overwrite mv/NAME modelplane.io/verify-requested="$(date +%s)"`); the
  operator copies the value to `modelplane.io/verify-handled` once it has tried;
- the last verdict was a failure (missing, mismatching) and is older than
  `retry_failed_after` (default 5m), so an artifact that has been fixed up becomes verified
  without anyone asking;
- the last verdict was a success and is older than `reverify_after` (default 24h), which
  catches an artifact changed or deleted behind the registry's back.

A restart does not re-read every artifact: it checks what is due by these rules. A store that
cannot be reached yields no verdict: the condition becomes Unknown and `status.artifact.verified`
false, never true, whatever an earlier check said.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from modelplane.api import ArtifactStatus, ConditionStatus, ModelVersionStatus, parse_duration
from modelplane.core.conditions import ConditionType, Reason, find_condition

# A request is pending while the two values differ. kopf's diff ignores every annotation under
# the prefix it stores its own state in (modelplane.io/) once it has marked the object, so a
# change of verify-requested fires no update handler; comparing it with verify-handled is
# level-based instead, and a request made while the operator is down is still seen.
VERIFY_REQUESTED_ANNOTATION = "modelplane.io/verify-requested"
VERIFY_HANDLED_ANNOTATION = "modelplane.io/verify-handled"

REVERIFY_INTERVAL_ENV = "MODELPLANE_REVERIFY_INTERVAL"
RETRY_FAILED_INTERVAL_ENV = "MODELPLANE_VERIFY_RETRY_INTERVAL"


@dataclass(frozen=True)
class VerificationPolicy:
    """How often verdicts are checked again."""

    reverify_after: timedelta = timedelta(hours=24)
    retry_failed_after: timedelta = timedelta(minutes=5)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> VerificationPolicy:
        """Reads MODELPLANE_REVERIFY_INTERVAL and MODELPLANE_VERIFY_RETRY_INTERVAL (e.g. 24h, 5m).

        Raises ValueError for a value that is not a duration.
        """
        defaults = cls()
        return cls(
            reverify_after=_duration(environ, REVERIFY_INTERVAL_ENV, defaults.reverify_after),
            retry_failed_after=_duration(
                environ, RETRY_FAILED_INTERVAL_ENV, defaults.retry_failed_after
            ),
        )


class DueReason(enum.StrEnum):
    """Why a verification is due now."""

    FIRST = "no verdict yet"
    REQUESTED = "verification requested"
    STORE_UNREACHABLE = "the last attempt could not reach the store"
    RETRY_FAILED = "the last verdict was a failure"
    PERIODIC = "the last verification is old"


@dataclass(frozen=True)
class ArtifactCheck:
    """A verdict from the store: the artifact matches, or it is definitely wrong."""

    verified: bool
    reason: str
    message: str
    size: int | None = None
    digest: str | None = None


@dataclass(frozen=True)
class StoreOutage:
    """No verdict: the store could not be asked."""

    message: str


@dataclass(frozen=True)
class ArtifactOutcome:
    """What the artifact part of a ModelVersion's status should be."""

    artifact: ArtifactStatus | None
    status: ConditionStatus
    reason: str
    message: str


def verification_due(
    status: ModelVersionStatus | None,
    *,
    now: datetime,
    policy: VerificationPolicy,
    requested: str | None = None,
    handled: str | None = None,
) -> DueReason | None:
    """Why the artifact should be verified now, or None when it need not be."""
    if requested is not None and requested != handled:
        return DueReason.REQUESTED
    condition = find_condition(
        status.conditions if status is not None else None, ConditionType.ARTIFACT_VERIFIED
    )
    verified_at = status.artifact.verified_at if status and status.artifact else None
    if condition is None or condition.status == "Unknown" or verified_at is None:
        unreachable = condition is not None and condition.reason == Reason.STORE_UNREACHABLE
        return DueReason.STORE_UNREACHABLE if unreachable else DueReason.FIRST
    if condition.status == "True":
        return DueReason.PERIODIC if now - verified_at >= policy.reverify_after else None
    return DueReason.RETRY_FAILED if now - verified_at >= policy.retry_failed_after else None


def outcome_of(
    check: ArtifactCheck | StoreOutage, previous: ArtifactStatus | None, *, now: datetime
) -> ArtifactOutcome:
    """The status after a check: a verdict, or Unknown for an outage (never verified)."""
    if isinstance(check, StoreOutage):
        kept = (
            previous.model_copy(update={"verified": False})
            if previous is not None
            else ArtifactStatus(verified=False)
        )
        message = f"cannot reach the artifact store, retrying with backoff: {check.message}"
        return ArtifactOutcome(kept, "Unknown", Reason.STORE_UNREACHABLE, message)
    artifact = ArtifactStatus(
        verified=check.verified,
        size=check.size,
        digest=check.digest,
        verified_at=now.replace(microsecond=0),
    )
    if check.verified:
        return ArtifactOutcome(artifact, "True", Reason.ARTIFACT_VERIFIED, check.message)
    return ArtifactOutcome(artifact, "False", check.reason, check.message)


def unchanged(previous: ModelVersionStatus | None) -> ArtifactOutcome:
    """The status when no check was made: the last one stands, or verification is pending."""
    condition = find_condition(
        previous.conditions if previous is not None else None, ConditionType.ARTIFACT_VERIFIED
    )
    artifact = previous.artifact if previous is not None else None
    if condition is None:
        return ArtifactOutcome(
            artifact, "Unknown", Reason.VERIFYING, "the artifact has not been verified yet"
        )
    return ArtifactOutcome(artifact, condition.status, condition.reason, condition.message)


def retry_delay(retry: int, *, base: float = 5.0, cap: float = 300.0) -> float:
    """Seconds to wait before retry number `retry` (0 first): doubling from `base`, capped."""
    return min(cap, base * 2.0 ** min(retry, 32))


def _duration(environ: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_duration(raw)
    except ValueError as error:
        raise ValueError(f"{name}: {error}") from None
