"""Builds each kind's CustomResourceDefinition from its pydantic model.

The schema comes from the model (`schemas.to_structural`); names, short names, the category and
printer columns come from the kind's `crd` class attribute. `metadata`, `apiVersion` and `kind`
get the standard schema every CRD has, since the API server owns them. Status is generated from
the same models without CEL rules (see `schemas.strip_validations`).
"""

from __future__ import annotations

from typing import Any

import yaml

from modelplane.api.bases import CATEGORY, GROUP, VERSION, Resource
from modelplane.api.experiments import Experiment
from modelplane.api.modelstages import ModelStage
from modelplane.api.modelversions import ModelVersion
from modelplane.api.runs import Run
from modelplane.api.schemas import strip_validations, to_structural

KINDS: tuple[type[Resource], ...] = (Experiment, Run, ModelVersion, ModelStage)

HEADER = (
    "# Generated from the pydantic models in src/modelplane/api by\n"
    "#   uv run python -m modelplane.api.crdgen\n"
    "# Do not edit: change the models and regenerate.\n"
)

_API_VERSION = {
    "description": "APIVersion defines the versioned schema of this representation of an "
    "object. Servers should convert recognized schemas to the latest internal value, and may "
    "reject unrecognized values. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
    "type": "string",
}
_KIND = {
    "description": "Kind is a string value representing the REST resource this object "
    "represents. Servers may infer this from the endpoint the client submits requests to. "
    "Cannot be updated. In CamelCase. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
    "type": "string",
}


def crd_name(kind: type[Resource]) -> str:
    """The CRD's object name, `<plural>.<group>`."""
    return f"{kind.crd.plural}.{GROUP}"


def file_name(kind: type[Resource]) -> str:
    """The file the CRD is written to inside crds/ (kubebuilder's `<group>_<plural>.yaml`)."""
    return f"{GROUP}_{kind.crd.plural}.yaml"


def open_api_schema(kind: type[Resource]) -> dict[str, Any]:
    """The kind's structural openAPIV3Schema."""
    schema = to_structural(kind.model_json_schema(by_alias=True, mode="validation"))
    properties = schema["properties"]
    properties["apiVersion"] = dict(_API_VERSION)
    properties["kind"] = dict(_KIND)
    properties["metadata"] = {"type": "object"}
    properties["status"] = strip_validations(properties["status"])
    schema["required"] = ["spec"]
    return schema


def crd(kind: type[Resource]) -> dict[str, Any]:
    """The kind's CustomResourceDefinition manifest."""
    info = kind.crd
    kind_name = kind.model_fields["kind"].default
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": crd_name(kind),
            "labels": {"app.kubernetes.io/part-of": "modelplane"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind_name,
                "listKind": f"{kind_name}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": column.name,
                            "type": column.type,
                            "jsonPath": column.json_path,
                            "description": column.description,
                            **({"priority": column.priority} if column.priority else {}),
                        }
                        for column in info.columns
                    ],
                    "schema": {"openAPIV3Schema": open_api_schema(kind)},
                }
            ],
        },
    }


class _Dumper(yaml.SafeDumper):
    """Writes multi-paragraph descriptions as literal blocks, which read like the docstrings."""


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def render(manifest: dict[str, Any]) -> str:
    """The manifest as YAML with the generated-file header; stable for a given model."""
    body = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return HEADER + body


def rendered() -> dict[str, str]:
    """Every kind's CRD file: {file name: YAML text}."""
    return {file_name(kind): render(crd(kind)) for kind in KINDS}
