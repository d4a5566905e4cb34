"""Base classes shared by the four kinds: the model configuration, object metadata, conditions.

Every model speaks the Kubernetes wire format: camelCase JSON names (`observedGeneration`) mapped
to snake_case attributes (`observed_generation`), both accepted on input. Optional fields default
to None and are left out when dumped, so a dumped model is a minimal manifest or merge patch: a
status patch built from `RunStatus(phase="Finished")` touches `phase` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "modelplane.io"
VERSION = "v1alpha1"
API_VERSION: Literal["modelplane.io/v1alpha1"] = "modelplane.io/v1alpha1"

# Printer columns and `kubectl get modelplane` group the kinds under this category.
CATEGORY = "modelplane"

ConditionStatus = Literal["True", "False", "Unknown"]


class KubeModel(BaseModel):
    """Base of every API model: camelCase on the wire, snake_case in Python."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        # Objects read from the API server carry fields this version may not know (and
        # metadata.managedFields, which nobody here needs); they must still parse.
        extra="ignore",
    )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready dict: wire names, datetimes as RFC 3339 strings, None fields left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class OwnerReference(KubeModel):
    """A reference to the object that owns this one (garbage collection and adoption)."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(KubeModel):
    """The parts of Kubernetes' ObjectMeta that modelplane reads or writes.

    It is not part of the generated CRD schemas: the API server owns metadata's schema.
    """

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: list[OwnerReference] | None = None


class Condition(KubeModel):
    """One aspect of the object's state, in the shape of Kubernetes' metav1.Condition."""

    # Set conditions with modelplane.core.conditions.set_condition, which keeps
    # lastTransitionTime stable while the status stays the same.

    type: str = Field(
        min_length=1,
        max_length=316,
        description="Aspect of the state this condition reports, in CamelCase "
        "(Ready, Reconciling, Stalled, ArtifactVerified, GatesPassed, RolledOut).",
    )
    status: ConditionStatus = Field(
        description="Whether the condition holds: True, False or Unknown."
    )
    reason: str = Field(
        min_length=1,
        max_length=1024,
        description="Machine-readable CamelCase reason for the last transition.",
    )
    message: str = Field(
        default="",
        max_length=32768,
        description="Human-readable details about the last transition.",
    )
    last_transition_time: datetime = Field(
        description="When the status last changed (not when the condition was last checked).",
    )
    observed_generation: int | None = Field(
        default=None,
        ge=0,
        description="The metadata.generation this condition was computed from.",
    )


# Room for Ready, Reconciling, Stalled and every kind-specific type, with headroom.
MAX_CONDITIONS = 16


def conditions_field() -> Any:
    """The `conditions` field of every status: a list keyed by `type`, as kstatus expects."""
    return Field(
        default=None,
        max_length=MAX_CONDITIONS,
        description="Current state as kstatus conditions: Ready on every kind, Reconciling and "
        "Stalled only while abnormal, plus kind-specific types. Keyed by type.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


def observed_generation_field() -> Any:
    """The `observedGeneration` field of every status."""
    return Field(
        default=None,
        ge=0,
        description="The metadata.generation the operator last reconciled; status is current "
        "when it equals metadata.generation.",
    )


@dataclass(frozen=True)
class PrinterColumn:
    """A column of `kubectl get` (additionalPrinterColumns)."""

    name: str
    json_path: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    description: str
    # 0 shows in `kubectl get`, 1 only in `kubectl get -o wide`.
    priority: int = 0


@dataclass(frozen=True)
class CrdInfo:
    """What a kind's CustomResourceDefinition needs besides its schema."""

    plural: str
    singular: str
    short_names: tuple[str, ...]
    columns: tuple[PrinterColumn, ...] = field(default_factory=tuple)


AGE = PrinterColumn(
    "Age", ".metadata.creationTimestamp", "date", "Time since the object was created."
)


class Resource(KubeModel):
    """Base of the four kinds: apiVersion, kind, metadata; subclasses add spec and status."""

    crd: ClassVar[CrdInfo]

    api_version: Literal["modelplane.io/v1alpha1"] = API_VERSION
    kind: str
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Self:
        """Parses an object read from the API server: a dict, or any mapping such as kopf's
        Body (nested mappings are read as they are, without copying to dicts first)."""
        return cls.model_validate(obj)

    def to_manifest(self) -> dict[str, Any]:
        """The object as a manifest for `kubectl apply` or the API: wire names, no None fields."""
        return self.to_dict()
