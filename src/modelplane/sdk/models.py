"""Logged models: what `log_model` returns, and the digest a model gets before it is uploaded.

A logged model is always a directory in the store, as in MLflow: a directory is uploaded as
it is, a single file becomes the only file of the directory. Its digest is the directory's
manifest digest (`modelplane.store.manifests`), computed from the local files with the same
code the operator runs on the stored copy (`ArtifactStore.digest`), so a ModelVersion
registered from it verifies without anyone reading the upload back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from modelplane.store import LocalStore, Manifest, ManifestEntry, file_uri
from modelplane.store.artifacts import DigestResult

# Mirrors ModelVersionSpec.flavor, so a bad flavor fails at log_model, not at registration.
_FLAVOR = re.compile(r"^[a-z][a-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class ModelInfo:
    """A model logged by a run, as MLflow's `ModelInfo`: pass it to `register_model`."""

    run_id: str
    artifact_path: str
    """Path under the run's ``artifacts/``, e.g. ``model``."""
    model_uri: str
    """``runs:/<run>/<artifact_path>``."""
    artifact_uri: str
    """Where the model directory is stored, ending in ``/``."""
    digest: str
    """``sha256:<hex>`` manifest digest of the model directory."""
    size: int
    flavor: str | None = None


def check_flavor(flavor: str | None) -> str | None:
    if flavor is not None and _FLAVOR.match(flavor) is None:
        raise ValueError(
            f"invalid flavor {flavor!r}: use an MLflow flavor name such as sklearn, xgboost, "
            "pytorch, onnx or pyfunc (lower-case letters, digits, '_', '.', '-')"
        )
    return flavor


def local_model_digest(path: Path) -> DigestResult:
    """The manifest digest the model at ``path`` will have once uploaded as a directory."""
    store = LocalStore()
    if path.is_dir():
        return store.digest(file_uri(path.resolve(), directory=True))
    single = store.digest(file_uri(path.resolve()))
    manifest = Manifest.build([ManifestEntry(path.name, single.size, single.digest.hex)])
    return DigestResult(
        uri=single.uri,
        digest=manifest.digest,
        size=single.size,
        is_directory=True,
        bytes_read=single.bytes_read,
        reads=single.reads,
        manifest=manifest,
    )


def model_tag_value(digest: str, flavor: str | None) -> str:
    """What the Run tag of a logged model holds (JSON), read back by `register_model`."""
    return json.dumps({"digest": digest, "flavor": flavor}, separators=(",", ":"))


def parse_model_tag(value: str) -> tuple[str, str | None] | None:
    """(digest, flavor) from a model tag, or None when it is not one the SDK wrote."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    if not isinstance(parsed, dict) or not isinstance(parsed.get("digest"), str):
        return None
    flavor = parsed.get("flavor")
    return parsed["digest"], flavor if isinstance(flavor, str) else None
