"""Turns pydantic's JSON Schema into a structural OpenAPI v3 schema for a CRD.

pydantic writes JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3.0 schema:
every node has a `type`, nothing is reached through `$ref`, there are no `anyOf`/`oneOf` of
differing types, and a few keywords differ. The conversion here is pure (dict in, dict out):

* `$ref` (alone, or wrapped in a one-element `allOf`) is replaced by the referenced definition,
  and sibling keywords of the reference (the field's `description`, its validations) win over
  the definition's, except that validation lists are concatenated;
* `Optional[X]` (`anyOf: [X, {type: null}]`) becomes plain `X`: absence means "not set", and the
  models never send null;
* `title`, `$defs`, `examples` and `default: null` are dropped; `const` becomes a one-value
  `enum`; JSON Schema's numeric `exclusiveMinimum`/`exclusiveMaximum` become OpenAPI 3.0's
  `minimum` + `exclusiveMinimum: true`;
* descriptions (docstrings) are unwrapped into paragraphs, since kubectl explain wraps text
  itself, and each node's keywords are put in one fixed order so the generated files read well
  and diff cleanly.

Anything else that cannot be made structural raises `UnsupportedSchemaError` naming the path,
so a model change that the API server would refuse fails at generation time instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from modelplane.api.validations import VALIDATIONS

PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"

_DROPPED = frozenset({"title", "$defs", "examples"})
_UNSUPPORTED = frozenset({"oneOf", "not", "prefixItems", "patternProperties", "$schema"})

# Keywords first in this order, then any others (x-kubernetes-*) alphabetically.
_ORDER = (
    "description",
    "type",
    "format",
    "enum",
    "default",
    "minimum",
    "exclusiveMinimum",
    "maximum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "properties",
    "required",
    "items",
    "additionalProperties",
)
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


class UnsupportedSchemaError(ValueError):
    """The JSON Schema uses a construct that has no structural OpenAPI equivalent."""


def to_structural(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Converts a pydantic JSON Schema (with its `$defs`) into a structural OpenAPI schema."""
    return _convert(schema, schema.get("$defs", {}), path="", resolving=())


def strip_validations(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the schema without CEL rules, for status, which only the operator writes.

    The status types reuse spec types (a lineage snapshot holds a run's code and data), but a
    rule that rejects a status update would leave the operator unable to report anything.
    """
    result: dict[str, Any] = {}
    for key, value in schema.items():
        if key == VALIDATIONS:
            continue
        if key == "properties":
            result[key] = {name: strip_validations(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, Mapping):
            result[key] = strip_validations(value)
        else:
            result[key] = value
    return result


def walk(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yields (path, node) for a structural schema and every schema below it.

    Paths read like kubectl explain's: `.spec.gates.metrics[]`, `.spec.params{}`.
    """
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), Mapping):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), Mapping):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


def _convert(
    node: Mapping[str, Any],
    defs: Mapping[str, Any],
    *,
    path: str,
    resolving: tuple[str, ...],
) -> dict[str, Any]:
    node, resolving = _resolve(dict(node), defs, path=path, resolving=resolving)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or (key == "default" and value is None):
            continue
        if key == "const":
            result["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            result["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            result[key] = True
        elif key == "properties":
            result[key] = {
                name: _convert(sub, defs, path=f"{path}.{name}", resolving=resolving)
                for name, sub in value.items()
            }
        elif key == "items":
            result[key] = _convert(value, defs, path=f"{path}[]", resolving=resolving)
        elif key == "additionalProperties":
            if value is False:
                # pydantic's extra="forbid"; pruning unknown fields is already the default, and
                # an explicit false is not allowed next to properties.
                continue
            if not isinstance(value, Mapping):
                raise UnsupportedSchemaError(
                    f"{path or '<root>'}: additionalProperties: true; "
                    f"use {PRESERVE_UNKNOWN} via WithJsonSchema"
                )
            result[key] = _convert(value, defs, path=f"{path}{{}}", resolving=resolving)
        elif key == "description":
            result[key] = unwrap(value)
        else:
            result[key] = value

    if "type" not in result and not result.get(PRESERVE_UNKNOWN):
        raise UnsupportedSchemaError(f"{path or '<root>'}: no type")
    return _ordered(result)


def _resolve(
    node: dict[str, Any],
    defs: Mapping[str, Any],
    *,
    path: str,
    resolving: tuple[str, ...],
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Unwraps `allOf`, `$ref` and Optional's `anyOf` until a plain node is left.

    The wrapper's own keywords (a field's description) are merged on top of what it wraps.
    Returns the node and the chain of definitions entered, to detect recursive types.
    """
    where = path or "<root>"
    while True:
        if unsupported := _UNSUPPORTED & node.keys():
            raise UnsupportedSchemaError(f"{where}: unsupported {sorted(unsupported)}")
        if "allOf" in node:
            # A lone allOf is how older pydantic versions attach a description to a $ref.
            parts = node.pop("allOf")
            if len(parts) != 1:
                raise UnsupportedSchemaError(f"{where}: allOf with {len(parts)} schemas")
            node = _merge(parts[0], node)
        elif "$ref" in node:
            ref = node.pop("$ref")
            name = ref.removeprefix("#/$defs/")
            if name == ref or name not in defs:
                raise UnsupportedSchemaError(f"{where}: unresolvable $ref {ref}")
            if name in resolving:
                raise UnsupportedSchemaError(f"{where}: recursive type {name}")
            resolving = (*resolving, name)
            node = _merge(defs[name], node)
        elif "anyOf" in node:
            options = [o for o in node.pop("anyOf") if o != {"type": "null"}]
            if len(options) != 1:
                raise UnsupportedSchemaError(f"{where}: anyOf of {len(options)} non-null schemas")
            node = _merge(options[0], node)
        else:
            return node, resolving


def unwrap(text: str) -> str:
    """Joins the lines of each paragraph of a docstring; paragraphs stay apart."""
    paragraphs = _PARAGRAPH_BREAK.split(text.strip())
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    rank = {key: i for i, key in enumerate(_ORDER)}
    return dict(sorted(node.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `override`'s keys on top; validation rules from both are kept."""
    merged = {**base, **override}
    if VALIDATIONS in base and VALIDATIONS in override:
        merged[VALIDATIONS] = [*base[VALIDATIONS], *override[VALIDATIONS]]
    return merged
