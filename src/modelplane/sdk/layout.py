"""Where a run's files live in the artifact store, and how model URIs name them. No I/O.

A run's root (`status.artifactRoot`) is ``<experiment spec.artifactRoot>/<run>/`` when its
Experiment names a root, else ``<client root>/<namespace>/<experiment>/<run>/``, the client root
coming from ``MODELPLANE_ARTIFACT_ROOT``. Below it::

    artifacts/                  what log_artifact, log_artifacts and log_model upload
      model/                    log_model's default artifact_path ("runs:/<run>/model")
    environment/requirements.txt  the installed packages, as `pip freeze` lists them
    metrics/<key>/<seq>.jsonl   full metric histories (see modelplane.sdk.histories)

User artifacts sit under ``artifacts/`` (as in MLflow, whose run artifact URI ends in
``/artifacts``) so that no artifact path can collide with what the SDK writes itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelplane.store.manifests import check_relative_path
from modelplane.store.uris import parse_uri

ARTIFACTS_DIR = "artifacts"
REQUIREMENTS_PATH = "environment/requirements.txt"
DEFAULT_MODEL_PATH = "model"
# A Run tag records each model logged with log_model: its digest and flavor, for register_model.
MODEL_TAG_PREFIX = "modelplane.io/model/"
PLATFORM_TAG = "modelplane.io/platform"

_RUNS_URI = re.compile(r"^runs:/([^/]+)(?:/(.*))?$")


def child_uri(base: str, relative: str, *, directory: bool = False) -> str:
    """The URI of ``relative`` (``/``-separated) under the directory ``base``.

    Goes through the store's URI types so ``file://`` paths are percent-encoded correctly.
    """
    uri = parse_uri(base).child(relative).uri if relative else parse_uri(base).uri
    return uri if not directory or uri.endswith("/") else uri + "/"


def run_root(
    *,
    client_root: str | None,
    experiment_root: str | None,
    namespace: str,
    experiment: str,
    run: str,
) -> str:
    """The run's artifact root, ending in ``/``; the experiment's own root wins."""
    if experiment_root:
        return child_uri(experiment_root, run, directory=True)
    if not client_root:
        raise ValueError(
            "no artifact root: set MODELPLANE_ARTIFACT_ROOT (e.g. s3://mlruns), pass "
            "artifact_root= to Client, or set spec.artifactRoot on the Experiment"
        )
    return child_uri(client_root, f"{namespace}/{experiment}/{run}", directory=True)


def artifact_path(path: str | None) -> str:
    """A checked artifact path relative to the run's ``artifacts/`` (empty for its top)."""
    if path is None:
        return ""
    stripped = path.strip("/")
    return check_relative_path(stripped) if stripped else ""


def model_tag(path: str) -> str:
    """The Run tag that records the model logged at ``artifacts/<path>``."""
    return MODEL_TAG_PREFIX + path


@dataclass(frozen=True)
class RunsUri:
    """A parsed ``runs:/<run>/<artifact path>`` URI, MLflow's way to name a run's model."""

    run: str
    path: str


def parse_runs_uri(uri: str) -> RunsUri | None:
    """The run and path of a ``runs:/`` URI; None for any other URI. The path defaults to
    ``model``."""
    match = _RUNS_URI.match(uri)
    if match is None:
        return None
    return RunsUri(match.group(1), artifact_path(match.group(2)) or DEFAULT_MODEL_PATH)
