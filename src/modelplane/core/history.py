"""A ModelStage's history: promotions and rollbacks, oldest first, bounded and idempotent.

`status.history` is what people read to learn what was live when, and what the `requireStage`
gate reads to learn how long a version served in an earlier stage. It stays small (the last
`MAX_HISTORY` entries) and it must not repeat itself when the operator restarts in the middle of
a transition and decides the same transition again.

The operator appends an entry in the same status write that records the transition (the new
`liveVersion`, the failed `rollout`, the failed gates), guarded by the object's resourceVersion,
so a transition is written at most once. `append` adds a second guard that needs no such care:
an entry equal to the last one but for its time is the same transition decided again, and is
dropped. Entry messages name the ModelStage generation they were decided for (`transition`),
so a later attempt at the same change, which comes with a new generation, is a new entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from modelplane.api import HistoryEntry, HistoryResult
from modelplane.api.modelstages import MAX_HISTORY

# HistoryEntry.message's bound in the CRD.
MAX_MESSAGE = 1024
_ELLIPSIS = "..."


def transition(
    *,
    version: int,
    from_version: int | None,
    result: HistoryResult,
    generation: int | None,
    at: datetime,
    requested_by: str | None,
    detail: str,
) -> HistoryEntry:
    """One history entry; its message is `detail` prefixed with the generation it was for."""
    prefix = f"generation {generation}: " if generation is not None else ""
    message = prefix + detail
    if len(message) > MAX_MESSAGE:
        message = message[: MAX_MESSAGE - len(_ELLIPSIS)] + _ELLIPSIS
    return HistoryEntry(
        version=version,
        from_version=from_version,
        at=at.replace(microsecond=0),
        result=result,
        requested_by=requested_by,
        message=message,
    )


def same_transition(a: HistoryEntry, b: HistoryEntry) -> bool:
    """Whether two entries record the same transition: equal in everything but their time."""
    return a.model_dump(exclude={"at"}) == b.model_dump(exclude={"at"})


def append(
    history: Sequence[HistoryEntry] | None, entry: HistoryEntry, *, limit: int = MAX_HISTORY
) -> list[HistoryEntry]:
    """`history` with `entry` at the end, keeping the last `limit` entries.

    When the last entry already records the same transition, `history` is returned unchanged
    (as a new list), so deciding a transition twice records it once. The input is not modified.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    entries = [item.model_copy() for item in history or ()]
    if entries and same_transition(entries[-1], entry):
        return entries
    entries.append(entry)
    return entries[-limit:]
