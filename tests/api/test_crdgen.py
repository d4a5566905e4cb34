"""The generated CRDs: current on disk, structural, documented, bounded, and wired to the
status fields their printer columns read."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.api import crdgen
from modelplane.api.crds import KINDS, crd, file_name, rendered
from modelplane.api.schemas import PRESERVE_UNKNOWN, walk
from modelplane.api.validations import VALIDATIONS

REPO = Path(__file__).resolve().parents[2]
CRDS = {kind.__name__: crd(kind) for kind in KINDS}
SCHEMAS = {
    name: manifest["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for name, manifest in CRDS.items()
}
# Keywords of pydantic's JSON Schema that a structural schema must not keep.
LEFTOVERS = {"$ref", "$defs", "title", "anyOf", "allOf", "oneOf", "const", "nullable", "examples"}
# Nodes owned by the API server rather than by the models.
SERVER_OWNED = {".metadata"}


def _nodes() -> list[tuple[str, str, Mapping[str, Any]]]:
    return [(kind, path, node) for kind, schema in SCHEMAS.items() for path, node in walk(schema)]


def _model_nodes() -> list[tuple[str, str, Mapping[str, Any]]]:
    """Nodes under spec and status, where every rule of this module applies."""
    return [n for n in _nodes() if n[1].startswith((".spec", ".status"))]


def test_crds_directory_is_current() -> None:
    """Fails when crds/ is stale: run `uv run python -m modelplane.api.crdgen`."""
    assert crdgen.stale_files(REPO / "crds", rendered()) == []


def test_check_command_passes_on_the_repository() -> None:
    """`python -m modelplane.api.crdgen --check` exits 0 on the committed files."""
    result = subprocess.run(
        [sys.executable, "-m", "modelplane.api.crdgen", "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr


def test_check_fails_on_stale_missing_and_extra_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Writes every CRD, then reports an edited, a missing and a leftover file as stale."""
    assert crdgen.main(["--output", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--output", str(tmp_path)]) == 0
    runs = tmp_path / "modelplane.io_runs.yaml"
    runs.write_text(runs.read_text().replace("maxItems: 64", "maxItems: 65"))
    (tmp_path / "modelplane.io_experiments.yaml").unlink()
    (tmp_path / "modelplane.io_models.yaml").write_text("old kind\n")
    (tmp_path / "unrelated.yaml").write_text("not ours\n")
    capsys.readouterr()
    assert crdgen.main(["--check", "--output", str(tmp_path)]) == 1
    assert capsys.readouterr().err.count("stale:") == 3
    assert crdgen.main(["--output", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--output", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*rendered(), "unrelated.yaml"])


def test_check_fails_when_the_directory_is_missing(tmp_path: Path) -> None:
    """Reports every file stale when the directory does not exist."""
    assert crdgen.main(["--check", "--output", str(tmp_path / "absent")]) == 1


def test_files_are_the_manifests() -> None:
    """Writes each kind's CRD as YAML that loads back to the same manifest."""
    files = rendered()
    for kind in KINDS:
        assert yaml.safe_load(files[file_name(kind)]) == CRDS[kind.__name__]


@pytest.mark.parametrize(
    ("kind", "plural", "short"),
    [
        ("Experiment", "experiments", "exp"),
        ("Run", "runs", "run"),
        ("ModelVersion", "modelversions", "mv"),
        ("ModelStage", "modelstages", "ms"),
    ],
)
def test_names_scope_category_and_status_subresource(kind: str, plural: str, short: str) -> None:
    """Registers each kind namespaced in modelplane.io/v1alpha1, with its short name, the
    modelplane category and a status subresource."""
    spec = CRDS[kind]["spec"]
    assert CRDS[kind]["metadata"]["name"] == f"{plural}.modelplane.io"
    assert (spec["group"], spec["scope"]) == ("modelplane.io", "Namespaced")
    assert spec["names"]["kind"] == kind
    assert spec["names"]["plural"] == plural
    assert spec["names"]["shortNames"] == [short]
    assert spec["names"]["categories"] == ["modelplane"]
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}


def test_schemas_have_no_json_schema_leftovers() -> None:
    """Leaves no $ref, $defs, title, anyOf/allOf/oneOf, const or nullable anywhere."""
    found = [(k, p, sorted(LEFTOVERS & n.keys())) for k, p, n in _nodes() if LEFTOVERS & n.keys()]
    assert found == []


def test_every_node_has_a_type() -> None:
    """Gives every node a type (structural schema rule), including preserve-unknown ones."""
    untyped = [(k, p) for k, p, n in _nodes() if "type" not in n]
    assert untyped == []


def test_every_field_has_a_description() -> None:
    """Describes every field, so kubectl explain teaches the whole API."""
    undocumented = [
        (k, p)
        for k, p, n in _nodes()
        if p
        and p not in SERVER_OWNED
        and not n.get("description")
        # The items and values of lists and maps are described by the list or map itself.
        and not p.endswith(("[]", "{}"))
    ]
    assert undocumented == []


def test_every_string_list_and_map_is_bounded() -> None:
    """Bounds every string, list and map, as CEL's cost estimator and etcd's size limit need."""

    def bounded(node: Mapping[str, Any]) -> bool:
        if node.get(PRESERVE_UNKNOWN):
            return True
        if node["type"] == "string":
            return bool({"maxLength", "enum"} & node.keys()) or node.get("format") == "date-time"
        if node["type"] == "array":
            return "maxItems" in node
        if node["type"] == "object" and "additionalProperties" in node:
            return "maxProperties" in node
        return True

    unbounded = [(kind, path) for kind, path, node in _model_nodes() if not bounded(node)]
    assert unbounded == []


def test_only_the_pod_template_preserves_unknown_fields() -> None:
    """Keeps unknown fields only in ModelStage's serving.template, an embedded PodTemplateSpec."""
    preserving = [(k, p) for k, p, n in _nodes() if n.get(PRESERVE_UNKNOWN)]
    assert preserving == [("ModelStage", ".spec.serving.template")]
    template = SCHEMAS["ModelStage"]["properties"]["spec"]["properties"]["serving"]["properties"][
        "template"
    ]
    assert template["type"] == "object"
    assert template["x-kubernetes-embedded-resource"] is False


def test_maps_and_properties_are_exclusive() -> None:
    """Never combines properties with additionalProperties (forbidden in structural schemas)."""
    both = [(k, p) for k, p, n in _nodes() if "properties" in n and "additionalProperties" in n]
    assert both == []


def test_status_has_no_cel_rules() -> None:
    """Keeps CEL off status, so the operator can always write what it observed."""
    ruled = [(k, p) for k, p, n in _nodes() if p.startswith(".status") and VALIDATIONS in n]
    assert ruled == []


def test_every_rule_has_a_message() -> None:
    """Gives every CEL rule a message, which is what a rejected user reads."""
    rules = [r for _, _, n in _nodes() for r in n.get(VALIDATIONS, ())]
    assert rules
    assert all(set(r) == {"rule", "message"} and r["message"] for r in rules)


def _rules(kind: str, path: str = "") -> dict[str, str]:
    """{message: rule} of the node at `path` (e.g. `.spec`) of a kind's schema."""
    node = SCHEMAS[kind]
    for name in filter(None, path.split(".")):
        node = node["properties"][name]
    return {r["message"]: r["rule"] for r in node.get(VALIDATIONS, ())}


def test_model_version_spec_rule_covers_every_field_but_description() -> None:
    """Compares every ModelVersion spec field on update except description."""
    rule = _rules("ModelVersion", ".spec")["spec is immutable except description"]
    fields = SCHEMAS["ModelVersion"]["properties"]["spec"]["properties"]
    for name in fields:
        assert (f"oldSelf.{name}" in rule) == (name != "description"), name


def test_run_lineage_fields_have_transition_rules() -> None:
    """Guards each Run lineage field with its own rule and message."""
    rules = _rules("Run", ".spec")
    for name in ("experiment", "parent", "evaluates", "code", "environment"):
        assert f"oldSelf.{name}" in rules[f"{name} is immutable once set"]
    assert any(m.startswith("params are immutable once set") for m in rules)
    assert any(m.startswith("data is immutable once set") for m in rules)
    assert "tags" not in " ".join(rules.values())


def test_name_rules_sit_at_the_root() -> None:
    """Checks object names at the root, where CEL can read metadata.name."""
    assert "metadata.name must be <model>-v<version>" in _rules("ModelVersion")
    assert "metadata.name must be <model>-<stage in lower case>" in _rules("ModelStage")
    assert "a run cannot be its own parent" in _rules("Run")


def _resolve(schema: Mapping[str, Any], json_path: str) -> Mapping[str, Any] | None:
    node: Mapping[str, Any] = schema
    for name in json_path.strip(".").split("."):
        if name == "metadata":
            return {"type": "object"}  # the API server's own metadata fields
        properties = node.get("properties", {})
        if name not in properties:
            return None
        node = properties[name]
    return node


@pytest.mark.parametrize(
    ("kind", "columns"),
    [
        ("ModelStage", ["Model", "Stage", "Desired", "Live", "Gates", "Rollout", "Age"]),
        ("Run", ["Experiment", "Phase", "Parent", "Age"]),
        ("ModelVersion", ["Model", "Version", "Run", "Verified", "Stages", "Age"]),
        ("Experiment", ["Objective", "Runs", "Best Run", "Age"]),
    ],
)
def test_printer_columns_read_existing_fields(kind: str, columns: list[str]) -> None:
    """Shows the agreed columns by default, each reading a field that exists in the schema
    with the column's type."""
    [version] = CRDS[kind]["spec"]["versions"]
    printed = version["additionalPrinterColumns"]
    assert [c["name"] for c in printed if not c.get("priority")] == columns
    json_types = {"integer": "integer", "number": "number", "boolean": "boolean"}
    for column in printed:
        node = _resolve(SCHEMAS[kind], column["jsonPath"])
        assert node is not None, column
        if column["type"] in json_types:
            assert node["type"] == json_types[column["type"]], column
