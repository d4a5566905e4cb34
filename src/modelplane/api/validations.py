"""CEL validation rules that travel with the pydantic models into the CRD schemas.

The API server enforces the registry's rules (immutable records, name conventions, digests,
URI schemes) through `x-kubernetes-validations`. Declaring each rule next to the field it guards,
and generating the CEL text from the models, keeps the Python models the single source of truth:
a field added to a spec is covered by its kind's immutability rule without anyone editing CEL.

Two kinds of helpers live here:

* `Cel` — an annotation for a field's type. It adds a rule to the field's schema and, when given
  a Python predicate, checks the same rule when a model is built in Python, with the same message,
  so the SDK fails before it reaches the API server.
* `immutable_except` / `immutable_once_set` / `object_rules` — `json_schema_extra` callables for a
  model's own schema; they write the transition rules that compare `self` with `oldSelf`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

VALIDATIONS = "x-kubernetes-validations"

# Words that CEL reserves: a property with such a name must be written `__name__` in a rule.
# The generated rules refuse them rather than escape them, since no spec field needs one.
_CEL_RESERVED = frozenset(
    {
        *("as", "break", "const", "continue", "else", "false", "for", "function", "if"),
        *("import", "in", "let", "loop", "package", "namespace", "null", "return", "true"),
        *("var", "void", "while"),
    }
)

JsonSchemaExtra = Callable[[dict[str, Any], type[BaseModel]], None]


def cel_string(text: str) -> str:
    """Quotes text as a single-quoted CEL string literal (backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def rule(expression: str, message: str) -> dict[str, str]:
    """One `x-kubernetes-validations` entry; every rule carries a message naming what it checks."""
    return {"rule": expression, "message": message}


def add_rules(schema: dict[str, Any], *rules: Mapping[str, str]) -> None:
    """Appends rules to a schema node's `x-kubernetes-validations`, keeping earlier ones."""
    schema.setdefault(VALIDATIONS, []).extend(dict(r) for r in rules)


@dataclass(frozen=True)
class Cel:
    """A CEL rule on a field's type, optionally mirrored by a Python check with the same message.

    Use it inside `Annotated[...]`. `check` receives the already-validated value and returns
    whether it passes; without it the rule is enforced by the API server only.
    """

    expression: str
    message: str
    check: Callable[[Any], bool] | None = field(default=None, compare=False)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        schema = handler(source)
        if self.check is None:
            return schema
        check, message = self.check, self.message

        def validate(value: Any) -> Any:
            if not check(value):
                raise PydanticCustomError("modelplane_rule", message)
            return value

        return core_schema.no_info_after_validator_function(validate, schema)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        add_rules(json_schema, rule(self.expression, self.message))
        return json_schema


def matches(regex: str, message: str) -> Cel:
    """A string rule: the value matches `regex` (anchor it; CEL's `matches` searches).

    The regex must mean the same to RE2 (the API server) and to Python's `re`; keep to
    character classes, groups, alternation and counted repetition.
    """
    compiled = re.compile(regex)
    return Cel(
        f"self.matches({cel_string(regex)})",
        message,
        lambda value: compiled.search(value) is not None,
    )


def keys_match(regex: str, message: str) -> Cel:
    """A map rule: every key matches `regex`. OpenAPI cannot constrain map keys, CEL can."""
    compiled = re.compile(regex)
    return Cel(
        f"self.all(k, k.matches({cel_string(regex)}))",
        message,
        lambda value: all(compiled.search(key) is not None for key in value),
    )


def _properties(model: type[BaseModel]) -> list[tuple[str, bool]]:
    """The model's fields as (JSON name, required), in declaration order."""
    result = []
    for name, info in model.model_fields.items():
        json_name = info.alias or name
        if json_name in _CEL_RESERVED:
            raise ValueError(f"{model.__name__}.{name}: {json_name!r} is reserved in CEL")
        result.append((json_name, info.is_required()))
    return result


def unchanged(name: str, *, required: bool) -> str:
    """CEL that holds when property `name` is the same in `self` and `oldSelf`.

    For an optional property, being absent on both sides counts as unchanged, and adding or
    removing it counts as a change. `has()` guards the access: reading an absent field is an
    error in CEL, and `&&` absorbs that error when its other side is false.
    """
    if required:
        return f"self.{name} == oldSelf.{name}"
    return (
        f"has(self.{name}) == has(oldSelf.{name}) && "
        f"(!has(self.{name}) || self.{name} == oldSelf.{name})"
    )


def once_set(name: str, *, required: bool) -> str:
    """CEL that holds when property `name` may still be set but, once set, stays as it was.

    Written on the parent object rather than on the field itself: a transition rule on the
    field runs only when the field exists on both sides, so it would let an update remove it.
    """
    if required:
        return f"self.{name} == oldSelf.{name}"
    return f"!has(oldSelf.{name}) || (has(self.{name}) && self.{name} == oldSelf.{name})"


def immutable_except(*mutable: str, message: str) -> JsonSchemaExtra:
    """A model rule: on update, every property except `mutable` keeps its value.

    The rule is computed from the model's fields when the schema is generated, so fields added
    later are immutable by default.
    """

    def extra(schema: dict[str, Any], model: type[BaseModel]) -> None:
        clauses = [
            unchanged(name, required=required)
            for name, required in _properties(model)
            if name not in mutable
        ]
        add_rules(schema, rule(" && ".join(f"({c})" for c in clauses), message))

    return extra


def immutable_once_set(
    *names: str, message: str = "{name} is immutable once set"
) -> JsonSchemaExtra:
    """Model rules: each listed property, once it has a value, keeps it; one rule per property.

    `message` is formatted with the property's name, so a rejection says which field it was.
    """

    def extra(schema: dict[str, Any], model: type[BaseModel]) -> None:
        required = dict(_properties(model))
        unknown = set(names) - required.keys()
        if unknown:
            raise ValueError(f"{model.__name__} has no properties {sorted(unknown)}")
        add_rules(
            schema,
            *(rule(once_set(n, required=required[n]), message.format(name=n)) for n in names),
        )

    return extra


def object_rules(*rules: Mapping[str, str]) -> JsonSchemaExtra:
    """Fixed rules for a model's own schema (rules spanning several of its fields)."""

    def extra(schema: dict[str, Any], _model: type[BaseModel]) -> None:
        add_rules(schema, *rules)

    return extra


def combine(*extras: JsonSchemaExtra) -> JsonSchemaExtra:
    """Several `json_schema_extra` callables applied in order."""

    def extra(schema: dict[str, Any], model: type[BaseModel]) -> None:
        for each in extras:
            each(schema, model)

    return extra
