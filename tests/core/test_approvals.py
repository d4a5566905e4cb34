"""Approval annotations: keys bound to users, parsing, and what admission admits."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from modelplane.core.approvals import (
    APPROVAL_PREFIX,
    REQUESTED_BY_ANNOTATION,
    ApprovalChange,
    ApprovalError,
    Verdict,
    approval_changes,
    approval_key,
    approvals_of,
    decode_approval,
    encode_approval,
    judge_approval_change,
    judge_requested_by,
    requested_by,
    stamp_approval,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
# An annotation name's part after the prefix: at most 63 characters, alphanumeric at both ends.
ANNOTATION_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


@pytest.mark.parametrize(
    "user", ["alice", "system:serviceaccount:ml:promoter", "bob@example.com", "Ünïcode user"]
)
def test_an_approval_key_is_a_valid_annotation_name_stable_per_user(user: str) -> None:
    key = approval_key(user)
    assert key.startswith(APPROVAL_PREFIX)
    assert ANNOTATION_NAME.match(key.removeprefix(APPROVAL_PREFIX))
    assert approval_key(user) == key
    assert approval_key(user + "x") != key


def test_an_encoded_approval_decodes_to_the_same_approval() -> None:
    key, value = encode_approval("bob", 4, comment="looks good", at=NOW)
    approval = decode_approval(key, value)
    assert (approval.user, approval.version, approval.comment, approval.at) == (
        "bob",
        4,
        "looks good",
        NOW,
    )


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("not json", "is not JSON"),
        ("[1]", "must hold a JSON object"),
        ('{"user": "bob", "at": "2025-03-01T12:00:00Z"}', "integer version"),
        ('{"user": "bob", "version": "4", "at": "2025-03-01T12:00:00Z"}', "integer version"),
        ('{"user": "bob", "version": true, "at": "2025-03-01T12:00:00Z"}', "integer version"),
        ('{"user": "bob", "version": 0, "at": "2025-03-01T12:00:00Z"}', "invalid approval"),
        ('{"user": "bob", "version": 4}', "invalid approval (at)"),
        ('{"user": "", "version": 4, "at": "2025-03-01T12:00:00Z"}', "invalid approval (user)"),
    ],
)
def test_a_malformed_approval_is_refused_with_the_reason(value: str, error: str) -> None:
    with pytest.raises(ApprovalError, match=re.escape(error)):
        decode_approval(approval_key("bob"), value)


def test_an_approval_under_another_users_key_is_refused() -> None:
    _, value = encode_approval("bob", 4, at=NOW)
    with pytest.raises(ApprovalError, match="does not belong to user 'bob'"):
        decode_approval(approval_key("carol"), value)


def test_stamping_sets_the_time_of_the_write() -> None:
    _, value = encode_approval("bob", 4, at=NOW - timedelta(days=3))
    stamped = stamp_approval(value, NOW)
    assert stamped is not None
    assert json.loads(stamped)["at"] == NOW.isoformat()
    assert json.loads(stamped)["user"] == "bob"
    assert stamp_approval("oops", NOW) is None
    assert stamp_approval('"a string"', NOW) is None


def test_approvals_are_read_from_annotations_oldest_first_skipping_bad_ones() -> None:
    annotations = dict(
        [
            encode_approval("carol", 4, at=NOW),
            encode_approval("bob", 4, at=NOW - timedelta(minutes=5)),
            encode_approval("dave", 3, at=NOW),
            (approval_key("erin"), "broken"),
            (approval_key("frank"), encode_approval("mallory", 4, at=NOW)[1]),
            ("other.io/annotation", "x"),
        ]
    )
    assert [a.user for a in approvals_of(annotations)] == ["bob", "carol", "dave"]
    assert [a.user for a in approvals_of(annotations, version=4)] == ["bob", "carol"]
    assert approvals_of(None) == []


def test_the_requester_comes_from_its_annotation() -> None:
    assert requested_by({REQUESTED_BY_ANNOTATION: "alice"}) == "alice"
    assert requested_by({REQUESTED_BY_ANNOTATION: ""}) is None
    assert requested_by(None) is None


def test_changes_list_added_changed_and_removed_approvals_only() -> None:
    old = {"a": "1", approval_key("bob"): "x", approval_key("carol"): "y"}
    new = {"a": "2", approval_key("bob"): "x2", approval_key("dave"): "z"}
    changes = approval_changes(old, new)
    assert sorted(changes, key=lambda c: c.after or "") == [
        ApprovalChange(approval_key("carol"), "y", None),
        ApprovalChange(approval_key("bob"), "x", "x2"),
        ApprovalChange(approval_key("dave"), None, "z"),
    ]
    assert approval_changes(old, old) == []
    assert approval_changes(None, None) == []


def added(user: str, version: int = 4, key_user: str | None = None) -> ApprovalChange:
    _, value = encode_approval(user, version, at=NOW)
    return ApprovalChange(approval_key(key_user or user), None, value)


@pytest.mark.parametrize(
    ("change", "username", "requester", "verdict"),
    [
        # An approval of one's own, by someone else than the requester: RBAC decides.
        (added("bob"), "bob", "alice", Verdict(needs_approve_verb=True)),
        (added("bob"), "bob", None, Verdict(needs_approve_verb=True)),
        # The requester approving their own change.
        (
            added("alice"),
            "alice",
            "alice",
            Verdict(denied="'alice' requested version 4 and cannot approve their own change"),
        ),
        # Writing an approval in someone else's name, under their key or one's own.
        (
            added("bob"),
            "mallory",
            "alice",
            Verdict(denied="'mallory' cannot write an approval in the name of 'bob'"),
        ),
        (
            added("bob", key_user="mallory"),
            "mallory",
            "alice",
            Verdict(
                denied=f"annotation {approval_key('mallory')} does not belong to user 'bob': "
                f"their approval key is {approval_key('bob')}"
            ),
        ),
        # Approving a version that is not the desired one.
        (
            added("bob", version=3),
            "bob",
            "alice",
            Verdict(
                denied="the approval is for version 3, but spec.version is 4: only the desired "
                "version can be approved"
            ),
        ),
        # Withdrawing one's own approval, or someone else's.
        (ApprovalChange(approval_key("bob"), "{}", None), "bob", "alice", Verdict()),
        (
            ApprovalChange(approval_key("bob"), "{}", None),
            "carol",
            "alice",
            Verdict(needs_approve_verb=True),
        ),
        (
            ApprovalChange(approval_key("bob"), None, "nope"),
            "bob",
            "alice",
            Verdict(denied=f"annotation {approval_key('bob')} is not JSON: Expecting value"),
        ),
    ],
)
def test_admission_judges_each_approval_change_by_the_authenticated_user(
    change: ApprovalChange, username: str, requester: str | None, verdict: Verdict
) -> None:
    assert (
        judge_approval_change(change, username=username, spec_version=4, requester=requester)
        == verdict
    )


@pytest.mark.parametrize(
    ("old", "new", "version_set", "refused"),
    [
        # Stamped with the writer when spec.version is set.
        (None, "alice", True, False),
        ("bob", "alice", True, False),
        # ... with anyone else: refused.
        ("bob", "bob", True, True),
        (None, "mallory", True, True),
        (None, None, True, True),
        # Unchanged while spec.version stays.
        ("bob", "bob", False, False),
        (None, None, False, False),
        # Edited, added or removed by hand.
        ("bob", "alice", False, True),
        (None, "alice", False, True),
        ("bob", None, False, True),
    ],
)
def test_requested_by_names_the_writer_of_spec_version_and_nobody_edits_it(
    old: str | None, new: str | None, version_set: bool, refused: bool
) -> None:
    before = {REQUESTED_BY_ANNOTATION: old} if old is not None else {}
    after = {REQUESTED_BY_ANNOTATION: new} if new is not None else {}
    reason = judge_requested_by(before, after, version_set=version_set, username="alice")
    assert (reason is not None) is refused
    if refused:
        assert reason is not None
        assert REQUESTED_BY_ANNOTATION in reason
