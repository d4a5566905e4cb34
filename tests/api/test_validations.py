"""The CEL rule builders write the expressions the API server evaluates."""

from __future__ import annotations

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelplane.api.validations import (
    Cel,
    cel_string,
    immutable_except,
    immutable_once_set,
    keys_match,
    matches,
    once_set,
    unchanged,
)


def test_quotes_cel_strings() -> None:
    """Escapes backslashes and single quotes inside CEL string literals."""
    assert cel_string(r"^a\.b'c$") == r"'^a\\.b\'c$'"


def test_unchanged_treats_optional_fields_as_set_or_not() -> None:
    """Compares required fields directly; optional ones also by presence."""
    assert unchanged("model", required=True) == "self.model == oldSelf.model"
    optional = unchanged("flavor", required=False)
    assert optional.startswith("has(self.flavor) == has(oldSelf.flavor) && ")
    assert optional.endswith("(!has(self.flavor) || self.flavor == oldSelf.flavor)")


def test_once_set_allows_setting_but_not_changing_or_removing() -> None:
    """Lets an absent field be set, then requires it to stay present and equal."""
    assert once_set("code", required=False) == (
        "!has(oldSelf.code) || (has(self.code) && self.code == oldSelf.code)"
    )


class Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=lambda name: name.replace("_", ""),
        json_schema_extra=immutable_except("notes", message="frozen"),
    )

    model_name: str
    version: int
    notes: str | None = None
    extra_field: str | None = None


def test_immutable_except_covers_every_field_under_its_wire_name() -> None:
    """Writes one rule comparing every field but the mutable ones, by JSON name."""
    [generated] = Spec.model_json_schema(by_alias=True)["x-kubernetes-validations"]
    assert generated["message"] == "frozen"
    assert generated["rule"] == (
        "(self.modelname == oldSelf.modelname) && (self.version == oldSelf.version) && "
        "(has(self.extrafield) == has(oldSelf.extrafield) && "
        "(!has(self.extrafield) || self.extrafield == oldSelf.extrafield))"
    )


def test_immutable_once_set_writes_one_rule_per_field() -> None:
    """Writes a rule per field whose message names the field."""

    class Run(BaseModel):
        model_config = ConfigDict(json_schema_extra=immutable_once_set("a", "b"))
        a: str
        b: str | None = None

    rules = Run.model_json_schema()["x-kubernetes-validations"]
    assert [r["message"] for r in rules] == ["a is immutable once set", "b is immutable once set"]


def test_refuses_unknown_and_reserved_field_names() -> None:
    """Refuses a rule on a field the model lacks, or whose name CEL reserves."""

    class Typo(BaseModel):
        model_config = ConfigDict(json_schema_extra=immutable_once_set("missing"))
        present: str

    class Reserved(BaseModel):
        model_config = ConfigDict(json_schema_extra=immutable_except(message="m"))
        namespace: str

    with pytest.raises(ValueError, match="no properties"):
        Typo.model_json_schema()
    with pytest.raises(ValueError, match="reserved in CEL"):
        Reserved.model_json_schema()


class Checked(BaseModel):
    name: Annotated[str, matches("^[a-z]+$", "lower-case letters only")]
    labels: Annotated[dict[str, str], keys_match("^[a-z]+$", "keys: letters only")] = Field(
        default_factory=dict
    )
    server_only: Annotated[str, Cel("self != 'x'", "not x")] = "ok"


def test_matches_checks_in_python_and_in_the_schema() -> None:
    """Checks a regex rule in Python with the rule's message, and writes it as CEL."""
    assert Checked(name="abc").name == "abc"
    with pytest.raises(ValidationError, match="lower-case letters only"):
        Checked(name="ABC")
    with pytest.raises(ValidationError, match="keys: letters only"):
        Checked(name="a", labels={"A1": "v"})
    properties = Checked.model_json_schema()["properties"]
    assert properties["name"]["x-kubernetes-validations"] == [
        {"rule": "self.matches('^[a-z]+$')", "message": "lower-case letters only"}
    ]
    assert properties["labels"]["x-kubernetes-validations"] == [
        {"rule": "self.all(k, k.matches('^[a-z]+$'))", "message": "keys: letters only"}
    ]


def test_rules_without_a_python_check_are_left_to_the_server() -> None:
    """Accepts in Python what only the API server checks, and still writes the rule."""
    assert Checked(name="a", server_only="x").server_only == "x"
    rules = Checked.model_json_schema()["properties"]["server_only"]["x-kubernetes-validations"]
    assert rules == [{"rule": "self != 'x'", "message": "not x"}]
