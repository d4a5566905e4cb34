"""Merge patches computed from two documents."""

from __future__ import annotations

from typing import Any

from modelplane.core.patches import merge_patch


def apply(target: Any, patch: Any) -> Any:
    """RFC 7386's MergePatch, to check that the computed patch does what it claims."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = apply(result.get(key), value)
    return result


def test_equal_documents_need_no_patch() -> None:
    doc = {"a": 1, "b": {"c": [1, 2]}}
    assert merge_patch(doc, dict(doc)) == {}


def test_changed_nested_values_are_patched_key_by_key() -> None:
    old = {"lineage": {"run": "r1", "params": {"a": "1"}}, "other": 1}
    new = {"lineage": {"run": "r1", "params": {"a": "2"}}, "other": 1}
    assert merge_patch(old, new) == {"lineage": {"params": {"a": "2"}}}


def test_removed_keys_become_null() -> None:
    old = {"lineage": {"run": "r1", "metrics": {"auc": 1}}, "artifact": {"size": 3}}
    new = {"lineage": {"run": "r1"}}
    patch = merge_patch(old, new)
    assert patch == {"lineage": {"metrics": None}, "artifact": None}
    assert apply(old, patch) == new


def test_lists_are_replaced_whole() -> None:
    old = {"conditions": [{"type": "Ready"}, {"type": "Stalled"}]}
    new = {"conditions": [{"type": "Ready"}]}
    assert merge_patch(old, new) == new


def test_a_type_change_is_a_change() -> None:
    assert merge_patch({"v": 1}, {"v": 1.0}) == {"v": 1.0}
    assert merge_patch({"v": {"a": 1}}, {"v": [1]}) == {"v": [1]}


def test_applying_the_patch_gives_the_new_document() -> None:
    old = {"a": {"b": 1, "c": {"d": 2}}, "e": [1], "f": "x"}
    new = {"a": {"c": {"d": 3, "g": 4}}, "e": [2], "h": True}
    assert apply(old, merge_patch(old, new)) == new
