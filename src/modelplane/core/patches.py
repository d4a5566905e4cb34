"""JSON merge patches (RFC 7386) computed from an old and a new document.

The operator patches status with merge patches. A merge patch merges objects key by key, so
writing a new value over an old one is not enough when the new value lacks a key the old one
had: the patch must say `null` for it. `merge_patch` computes exactly that difference, and an
empty result means there is nothing to write.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch that turns `old` into `new`; `{}` when they are equal.

    Nested objects are diffed key by key, keys missing from `new` become None, and lists and
    scalars are replaced whole, as RFC 7386 prescribes.
    """
    patch: dict[str, Any] = {}
    for key, value in new.items():
        if key not in old:
            patch[key] = value
            continue
        previous = old[key]
        if isinstance(value, Mapping) and isinstance(previous, Mapping):
            nested = merge_patch(previous, value)
            if nested:
                patch[key] = nested
        elif value != previous or type(value) is not type(previous):
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
