"""schemas.to_structural turns pydantic JSON Schema into structural OpenAPI, or says why not."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from modelplane.api.schemas import (
    UnsupportedSchemaError,
    strip_validations,
    to_structural,
    unwrap,
    walk,
)
from modelplane.api.validations import matches, object_rules, rule


class Inner(BaseModel):
    """Inner thing.

    Second paragraph, wrapped
    over two lines."""

    model_config = ConfigDict(json_schema_extra=object_rules(rule("self.a > 0", "a positive")))

    a: int = Field(gt=0, description="A number.")


class Outer(BaseModel):
    """Outer thing."""

    inner: Inner | None = Field(default=None, description="The inner one, optional.")
    required_inner: Annotated[Inner, matches("^$", "never")] = Field(description="Required.")
    items: list[Inner] = Field(default_factory=list, max_length=3, description="Some.")
    labels: dict[str, str] | None = Field(default=None, max_length=4, description="Labels.")
    kind: Literal["Outer"] = Field(default="Outer", description="Kind.")
    choice: Literal["a", "b"] = Field(default="a", description="Choice.")
    raw: Annotated[
        dict[str, Any],
        WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True}),
    ] = Field(default_factory=dict, description="Raw.")


def _structural() -> dict[str, Any]:
    return to_structural(Outer.model_json_schema(by_alias=True))


def test_inlines_references_with_the_field_description_on_top() -> None:
    """Inlines $ref'd models; the field's description replaces the model's docstring."""
    inner = _structural()["properties"]["inner"]
    assert inner["type"] == "object"
    assert inner["description"] == "The inner one, optional."
    assert inner["properties"]["a"]["description"] == "A number."


def test_optional_becomes_the_plain_type_without_default_null() -> None:
    """Turns Optional[X] into X: no anyOf, no null type, no default: null, not required."""
    schema = _structural()
    labels = schema["properties"]["labels"]
    assert labels == {
        "description": "Labels.",
        "type": "object",
        "maxProperties": 4,
        "additionalProperties": {"type": "string"},
    }
    assert "labels" not in schema.get("required", [])
    assert "required_inner" in schema["required"]


def test_keeps_rules_of_the_model_and_of_the_field() -> None:
    """Concatenates the model's own CEL rules with those the field adds."""
    rules = _structural()["properties"]["required_inner"]["x-kubernetes-validations"]
    assert [r["message"] for r in rules] == ["a positive", "never"]


def test_converts_keywords_to_openapi_3_0() -> None:
    """Converts numeric exclusiveMinimum to minimum + flag, const to enum; drops titles."""
    schema = _structural()
    a = schema["properties"]["items"]["items"]["properties"]["a"]
    assert (a["minimum"], a["exclusiveMinimum"]) == (0, True)
    assert schema["properties"]["kind"]["enum"] == ["Outer"]
    assert schema["properties"]["choice"]["enum"] == ["a", "b"]
    assert schema["properties"]["choice"]["default"] == "a"
    assert not [p for p, node in walk(schema) if "title" in node]


def test_unwraps_docstrings_into_paragraphs() -> None:
    """Joins wrapped docstring lines; keeps paragraphs apart."""
    description = _structural()["properties"]["items"]["items"]["description"]
    assert description == "Inner thing.\n\nSecond paragraph, wrapped over two lines."
    assert unwrap("  one\n  two\n\n\n  three  ") == "one two\n\nthree"


def test_orders_keywords_stably() -> None:
    """Writes description and type first, properties and required after the bounds."""
    keys = list(_structural()["properties"]["items"])
    assert keys[:3] == ["description", "type", "maxItems"]
    assert list(_structural())[:2] == ["description", "type"]


def test_passes_preserve_unknown_fields_nodes_through() -> None:
    """Keeps an explicitly raw node as given (type object, preserve unknown fields)."""
    raw = _structural()["properties"]["raw"]
    assert raw == {
        "description": "Raw.",
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }


def test_strips_cel_rules_everywhere() -> None:
    """Removes CEL rules at every depth and leaves the rest as it was."""
    stripped = strip_validations(_structural())
    assert not [p for p, node in walk(stripped) if "x-kubernetes-validations" in node]
    assert stripped["properties"]["labels"] == _structural()["properties"]["labels"]


class Union(BaseModel):
    value: int | str = Field(description="Either.")


class Node(BaseModel):
    children: list[Node] = Field(default_factory=list, max_length=2)


class Free(BaseModel):
    data: dict[str, Any] = Field(description="Anything.")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (Union, r"\.value: anyOf of 2 non-null schemas"),
        (Node, r"\.children\[\]: recursive type Node"),
        (Free, r"\.data: additionalProperties: true"),
    ],
)
def test_refuses_what_cannot_be_structural(model: type[BaseModel], message: str) -> None:
    """Refuses unions of types, recursive models and free-form maps, naming the field."""
    with pytest.raises(UnsupportedSchemaError, match=message):
        to_structural(model.model_json_schema())


def test_refuses_unknown_references_and_untyped_nodes() -> None:
    """Refuses a $ref to a missing definition and a node without a type."""
    with pytest.raises(UnsupportedSchemaError, match="unresolvable"):
        to_structural({"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}})
    with pytest.raises(UnsupportedSchemaError, match=r"\.x: no type"):
        to_structural({"type": "object", "properties": {"x": {"description": "?"}}})
    with pytest.raises(UnsupportedSchemaError, match="oneOf"):
        to_structural({"type": "object", "oneOf": [{"type": "object"}]})


def test_walks_properties_items_and_map_values() -> None:
    """Walks every node with a kubectl-explain-like path."""
    paths = [path for path, _ in walk(_structural())]
    assert ".items[].a" in paths
    assert ".labels{}" in paths
    assert paths[0] == ""
