"""When each ModelVersion is looked at again: the schedule that replaced a timer per object."""

from __future__ import annotations

from datetime import timedelta

from modelplane.core.artifacts import VerificationPolicy
from modelplane.core.rechecks import Rechecks, next_look
from tests.core.test_modelversions import (
    MISMATCH,
    NOW,
    RECORDED,
    RUNNING,
    UNREACHABLE,
    VERIFIED,
    assemble,
    version,
)

POLICY = VerificationPolicy(timedelta(hours=24), timedelta(minutes=5))
INTERVAL = 30.0


def test_the_next_look_is_read_from_the_object() -> None:
    """Pending work is due now; verdicts are due when they are old enough; deletion never."""
    assert next_look(version(None), now=NOW, policy=POLICY) == NOW
    assert next_look(version(assemble(RUNNING, VERIFIED)), now=NOW, policy=POLICY) == NOW
    assert next_look(version(assemble(RECORDED, UNREACHABLE)), now=NOW, policy=POLICY) == NOW
    verified = version(assemble(RECORDED, VERIFIED))
    assert next_look(verified, now=NOW, policy=POLICY) == NOW + POLICY.reverify_after
    failed = version(assemble(RECORDED, MISMATCH))
    assert next_look(failed, now=NOW, policy=POLICY) == NOW + POLICY.retry_failed_after
    requested = version(
        assemble(RECORDED, VERIFIED), annotations={"modelplane.io/verify-requested": "1"}
    )
    assert next_look(requested, now=NOW, policy=POLICY) == NOW
    deleting = version(assemble(RECORDED, VERIFIED), deletionTimestamp=NOW.isoformat())
    assert next_look(deleting, now=NOW, policy=POLICY) is None


def test_only_due_versions_are_taken_in_time_order() -> None:
    rechecks = Rechecks[str](INTERVAL)
    rechecks.plan("late", 50.0, now=0.0)
    rechecks.plan("soon", 10.0, now=0.0)
    rechecks.plan("never", None, now=0.0)
    assert rechecks.take_due(5.0) == []
    assert rechecks.take_due(60.0) == ["soon", "late"]
    assert rechecks.take_due(60.0) == []  # being looked at until `done`
    assert len(rechecks) == 2


def test_planning_again_moves_a_version_and_forgetting_drops_it() -> None:
    rechecks = Rechecks[str](INTERVAL)
    rechecks.plan("a", 100.0, now=0.0)
    rechecks.plan("a", 20.0, now=0.0)
    rechecks.plan("b", 10.0, now=0.0)
    rechecks.forget("b")
    assert rechecks.take_due(30.0) == ["a"]
    assert rechecks.take_due(200.0) == []
    assert len(rechecks) == 1


def test_a_version_looked_at_is_not_looked_at_again_within_the_interval() -> None:
    """A look's own status write comes back as an event: a Running run's lineage is looked at
    every interval, not in a loop."""
    rechecks = Rechecks[str](INTERVAL)
    rechecks.plan("a", 0.0, now=0.0)
    assert rechecks.take_due(0.0) == ["a"]
    assert rechecks.done("a", 1.0, now=1.0) == 1.0 + INTERVAL
    rechecks.plan("a", 2.0, now=2.0)  # the event of the look's write: still pending
    assert rechecks.due_at("a") == 1.0 + INTERVAL
    rechecks.plan("a", 5000.0, now=3.0)  # verified now: looked at when the verdict is old
    assert rechecks.due_at("a") == 5000.0


def test_an_outage_backs_off_whatever_the_events_say() -> None:
    rechecks = Rechecks[str](INTERVAL)
    rechecks.plan("a", 0.0, now=0.0)
    delays = []
    now = 0.0
    for _ in range(8):
        assert rechecks.take_due(now) == ["a"]
        planned = rechecks.done("a", now, now=now, outage=True)
        assert planned is not None
        delays.append(planned - now)
        rechecks.plan("a", now, now=now)  # ArtifactVerified=Unknown: pending, but backing off
        assert rechecks.due_at("a") == planned
        now = planned
    assert delays == [5, 10, 20, 40, 80, 160, 300, 300]

    assert rechecks.take_due(now) == ["a"]
    assert rechecks.done("a", now + 86400, now=now) == now + 86400  # reached: a verdict
    assert rechecks.take_due(now + 6) == []


def test_a_verdict_seen_in_an_event_ends_the_backoff() -> None:
    rechecks = Rechecks[str](INTERVAL)
    rechecks.plan("a", 0.0, now=0.0)
    rechecks.take_due(0.0)
    rechecks.done("a", 0.0, now=0.0, outage=True)
    rechecks.plan("a", 3600.0, now=1.0)  # verified on request meanwhile
    assert rechecks.due_at("a") == 3600.0
    rechecks.plan("a", 2.0, now=2.0)  # and requested again: no backoff left, only the interval
    assert rechecks.due_at("a") == INTERVAL


def test_a_version_gone_during_its_look_is_not_planned_again() -> None:
    rechecks = Rechecks[str](INTERVAL)
    rechecks.plan("a", 0.0, now=0.0)
    rechecks.take_due(0.0)
    rechecks.forget("a")
    assert rechecks.done("a", 10.0, now=1.0) is None
    assert len(rechecks) == 0
    rechecks.plan("b", 0.0, now=0.0)
    rechecks.take_due(0.0)
    assert rechecks.done("b", None, now=1.0) is None  # being deleted
    assert len(rechecks) == 0


def test_stale_heap_items_are_dropped() -> None:
    rechecks = Rechecks[int](INTERVAL)
    for step in range(50):
        for key in range(10):
            rechecks.plan(key, 1000.0 + step, now=0.0)
    assert len(rechecks._heap) <= 2 * len(rechecks) + 64 + 1
    assert sorted(rechecks.take_due(2000.0)) == list(range(10))
