"""Status patches that touch only the fields their writer owns, and only when something changed.

Several writers share one status: on a Run the SDK owns phase, times and metrics while the
operator owns conditions and observedGeneration. A writer therefore never replaces a status
wholesale; it sends a JSON merge patch of its own fields, with every owned field present (a field
that should be gone is sent as null), and sends nothing at all when the object already shows the
desired values, so an unchanged world causes no write and no new resourceVersion.

Also here: reading conditions out of a status that may not parse, and a short, readable message
for a pydantic validation error, so a half-formed object ends in a condition instead of a crash.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from modelplane.api import Condition, KubeModel
from modelplane.core.conditions import ConditionType, Reason, find_condition, set_condition

# Enough for several field errors; a condition message may be much longer, an Event's shorter.
MAX_ERROR_MESSAGE = 1024


@dataclass(frozen=True)
class Note:
    """A Kubernetes Event the operator should post about an object (a transition people see)."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


def owned_patch(
    current: Mapping[str, Any] | None, desired: KubeModel, fields: Sequence[str]
) -> dict[str, Any] | None:
    """The merge patch that makes `current`'s owned `fields` (wire names) equal `desired`'s.

    Returns None when they are equal already. Otherwise every owned field is in the patch, with
    None (JSON null, which deletes) for a field `desired` leaves out; other fields are untouched.
    Both sides are compared after parsing into `desired`'s model, so `1` and `1.0`, or two
    spellings of the same time, are equal.
    """
    wanted = desired.to_dict()
    patch = {name: wanted.get(name) for name in fields}
    if current is None:
        return patch
    try:
        seen = type(desired).model_validate(dict(current)).to_dict()
    except ValidationError:
        return patch
    if all(seen.get(name) == wanted.get(name) for name in fields):
        return None
    return patch


def conditions_of(status: Mapping[str, Any] | None) -> list[Condition]:
    """The conditions in a raw status, skipping any entry that does not parse."""
    raw = (status or {}).get("conditions")
    if not isinstance(raw, list):
        return []
    result: list[Condition] = []
    for item in raw:
        try:
            result.append(Condition.model_validate(item))
        except ValidationError:
            continue
    return result


def describe_error(error: ValidationError) -> str:
    """A one-line summary of a validation error: `spec.objective.goal: Input should be ...`."""
    parts = []
    for detail in error.errors(include_url=False):
        location = ".".join(str(part) for part in detail["loc"]) or "object"
        parts.append(f"{location}: {detail['msg']}")
    message = "; ".join(parts) or str(error)
    if len(message) > MAX_ERROR_MESSAGE:
        message = message[: MAX_ERROR_MESSAGE - 3] + "..."
    return message


@dataclass(frozen=True)
class StatusPlan:
    """What a reconciliation decided: a status merge patch (None: already current), and Events.

    The operator posts the notes only once the patch is applied, so a write that loses a race
    posts nothing; the next reconciliation, working from newer data, decides again.
    """

    patch: dict[str, Any] | None = None
    notes: tuple[Note, ...] = ()


class ConditionsStatus(KubeModel):
    """The part of every kind's status that holds its conditions and observed generation."""

    observed_generation: int | None = None
    conditions: list[Condition] | None = None


CONDITION_FIELDS = ("observedGeneration", "conditions")


def generation_of(obj: Mapping[str, Any]) -> int | None:
    """metadata.generation of a raw object, or None when it is missing or not a number."""
    metadata = obj.get("metadata")
    generation = metadata.get("generation") if isinstance(metadata, Mapping) else None
    return generation if isinstance(generation, int) and generation >= 0 else None


def status_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The raw status of an object, or None."""
    status = obj.get("status")
    return status if isinstance(status, Mapping) else None


def plan_invalid(obj: Mapping[str, Any], error: str, *, now: datetime) -> StatusPlan:
    """The status of an object that does not parse: Stalled and not Ready, with the reason.

    Only conditions and observedGeneration are written, so whatever else the status holds (a
    Run's phase and metrics) is kept. A Warning is posted when the problem is new or different.
    """
    status = status_of(obj)
    current = conditions_of(status)
    generation = generation_of(obj)
    message = f"the object does not match the modelplane API: {error}"
    conditions = set_condition(
        current,
        type=ConditionType.STALLED,
        status="True",
        reason=Reason.INVALID_SPEC,
        message=message,
        observed_generation=generation,
        now=now,
    )
    conditions = set_condition(
        conditions,
        type=ConditionType.READY,
        status="False",
        reason=Reason.INVALID_SPEC,
        message=message,
        observed_generation=generation,
        now=now,
    )
    desired = ConditionsStatus(observed_generation=generation, conditions=conditions)
    stalled = find_condition(current, ConditionType.STALLED)
    is_new = stalled is None or stalled.status != "True" or stalled.message != message
    notes = (Note("Warning", Reason.INVALID_SPEC, message),) if is_new else ()
    return StatusPlan(owned_patch(status, desired, CONDITION_FIELDS), notes)
