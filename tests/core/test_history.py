"""A ModelStage's history: bounded, oldest first, and the same transition recorded once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelplane.api import HistoryEntry
from modelplane.api.modelstages import MAX_HISTORY
from modelplane.core.history import MAX_MESSAGE, append, same_transition, transition

NOW = datetime(2025, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


def entry(version: int, *, generation: int = 1, at: datetime = NOW) -> HistoryEntry:
    return transition(
        version=version,
        from_version=version - 1 if version > 1 else None,
        result="Succeeded",
        generation=generation,
        at=at,
        requested_by="alice",
        detail=f"version {version} is live",
    )


def test_transition_names_the_generation_and_keeps_whole_seconds() -> None:
    made = entry(3, generation=7)
    assert made.message == "generation 7: version 3 is live"
    assert made.at == NOW.replace(microsecond=0)
    assert made.from_version == 2
    assert made.to_dict()["from"] == 2
    assert made.requested_by == "alice"


def test_transition_cuts_a_long_message_to_the_crd_bound() -> None:
    made = transition(
        version=1,
        from_version=None,
        result="Failed",
        generation=1,
        at=NOW,
        requested_by=None,
        detail="x" * 5000,
    )
    assert made.message is not None
    assert len(made.message) == MAX_MESSAGE
    assert made.message.endswith("...")


def test_append_adds_at_the_end_without_changing_the_input() -> None:
    history = [entry(1)]
    result = append(history, entry(2))
    assert [item.version for item in result] == [1, 2]
    assert [item.version for item in history] == [1]


def test_append_keeps_only_the_last_entries() -> None:
    history: list[HistoryEntry] = []
    for version in range(1, MAX_HISTORY + 11):
        history = append(history, entry(version))
    assert len(history) == MAX_HISTORY
    assert history[0].version == 11
    assert history[-1].version == MAX_HISTORY + 10


def test_the_same_transition_decided_again_later_is_recorded_once() -> None:
    """An operator restarted mid-transition decides it again, a few seconds later."""
    first = append(None, entry(2))
    again = append(first, entry(2, at=NOW + timedelta(seconds=30)))
    assert again == first


def test_the_same_change_at_a_new_generation_is_a_new_entry() -> None:
    first = append(None, entry(2, generation=3))
    retried = append(first, entry(2, generation=5))
    assert len(retried) == 2


def test_only_the_last_entry_counts_as_a_repeat() -> None:
    """Going back to a version that was live before is a new transition."""
    history = append(append(None, entry(1)), entry(2))
    history = append(history, entry(1))
    assert [item.version for item in history] == [1, 2, 1]


def test_same_transition_ignores_only_the_time() -> None:
    assert same_transition(entry(2), entry(2, at=NOW + timedelta(hours=1)))
    assert not same_transition(entry(2), entry(3))
    assert not same_transition(entry(2, generation=1), entry(2, generation=2))


def test_append_refuses_a_limit_below_one() -> None:
    with pytest.raises(ValueError, match="limit"):
        append(None, entry(1), limit=0)
