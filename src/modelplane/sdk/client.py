"""`Client`: the SDK's explicit API, as `mlflow.MlflowClient` is MLflow's.

A Client holds where things go: the namespace, the Kubernetes API client, the artifact root
and store settings, and how often runs flush. Nothing is contacted until a method needs it.
The fluent functions (`modelplane.start_run`, `modelplane.log_metric`, ...) run on a default
Client built from the environment (see `modelplane.sdk.config`); tests and multi-cluster code
build their own.

Starting a run records, before the Run object is created (its code and environment are
immutable once set, so they go in at creation):

* the code: git repository, commit, dirtiness and entry script (`modelplane.sdk.sources`);
* the environment: Python version, installed packages uploaded as
  ``environment/requirements.txt``, and the image digest in a pod
  (`modelplane.sdk.environments`); the platform goes into the tag ``modelplane.io/platform``.

Then it sets ``status`` to Running with startTime, heartbeatTime and artifactRoot, and starts
the run's flusher.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from modelplane.api import (
    ArtifactRef,
    Environment,
    Experiment,
    ExperimentSpec,
    ModelVersion,
    ModelVersionSpec,
    Objective,
    ObjectMeta,
    Run,
    RunSpec,
    model_version_name,
)
from modelplane.api.fields import Goal, ObjectName
from modelplane.sdk import layout
from modelplane.sdk.config import Settings
from modelplane.sdk.environments import (
    detect_image,
    installed_requirements,
    platform_name,
    python_version,
)
from modelplane.sdk.errors import (
    ConflictError,
    NotFoundError,
    RegistrationError,
    RunExistsError,
)
from modelplane.sdk.flushing import rfc3339, utcnow
from modelplane.sdk.histories import Metric, decode_points, is_chunk_name, metric_dir
from modelplane.sdk.kube import Objects, connect, default_namespace
from modelplane.sdk.models import ModelInfo, parse_model_tag
from modelplane.sdk.registering import DEFAULT_ATTEMPTS, create_next_version
from modelplane.sdk.runs import ActiveRun, RunInfo
from modelplane.sdk.sources import capture_code
from modelplane.store import ArtifactNotFound, ArtifactStore, StoreConfig, open_store, parse_digest

log = logging.getLogger(__name__)

RUNS = Run.crd.plural
EXPERIMENTS = Experiment.crd.plural
MODELVERSIONS = ModelVersion.crd.plural

_OBJECT_NAME: TypeAdapter[str] = TypeAdapter(ObjectName)

ModelSource = ModelInfo | ActiveRun | str


def generate_run_name(experiment: str) -> str:
    """``<experiment>-<UTC date>-<time>-<4 hex>``: sortable, readable, and unique enough."""
    stem = experiment[:40].rstrip("-.")
    return f"{stem}-{utcnow():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _default_source() -> Path | None:
    """The entry script, when the process runs one (not a REPL or a notebook)."""
    script = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    return script.resolve() if script is not None and script.is_file() else None


class Client:
    """Access to modelplane's Experiments, Runs and ModelVersions in one namespace.

    Every argument defaults to the environment (`modelplane.sdk.config`). ``source`` is the
    entry script whose git repository is recorded as a run's code (default: ``sys.argv[0]``,
    else the working directory's repository).
    """

    def __init__(
        self,
        namespace: str | None = None,
        *,
        artifact_root: str | None = None,
        kubeconfig: str | Path | None = None,
        context: str | None = None,
        api_client: Any = None,
        store_config: StoreConfig | None = None,
        flush_interval: float | None = None,
        flush_points: int | None = None,
        source: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        settings = Settings.from_env(self._environ)
        self.namespace = namespace or settings.namespace or default_namespace(kubeconfig, context)
        self.artifact_root = artifact_root or settings.artifact_root
        self.default_experiment = settings.experiment
        self.flush_interval = flush_interval or settings.flush_interval
        self.flush_points = flush_points or settings.flush_points
        self.source = Path(source) if source is not None else _default_source()
        self._kubeconfig = kubeconfig
        self._context = context
        self._api_client = api_client
        self._store_config = store_config
        self._objects: Objects | None = None

    def __repr__(self) -> str:
        return f"<Client namespace={self.namespace} artifact_root={self.artifact_root}>"

    @property
    def objects(self) -> Objects:
        if self._objects is None:
            if self._api_client is None:
                self._api_client = connect(self._kubeconfig, self._context)
            self._objects = Objects(self._api_client, self.namespace)
        return self._objects

    def open_store(self, uri: str) -> ArtifactStore:
        if self._store_config is None:
            self._store_config = StoreConfig.from_env(self._environ)
        return open_store(uri, self._store_config)

    # -- experiments ------------------------------------------------------------------------

    def get_experiment(self, name: str) -> Experiment | None:
        obj = self.objects.get(EXPERIMENTS, name)
        return Experiment.from_object(obj) if obj is not None else None

    def create_experiment(
        self,
        name: str,
        objective: str | Objective | None = None,
        goal: Goal = "maximize",
        *,
        description: str | None = None,
        artifact_root: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        """Create an Experiment; ``objective`` is the metric that ranks its runs, with
        ``goal``. Raises `ConflictError` when it exists."""
        if isinstance(objective, str):
            objective = Objective(metric=objective, goal=goal)
        experiment = Experiment(
            metadata=ObjectMeta(name=name, namespace=self.namespace),
            spec=ExperimentSpec(
                description=description,
                objective=objective,
                artifact_root=artifact_root,
                tags=dict(tags) if tags else None,
            ),
        )
        return Experiment.from_object(self.objects.create(EXPERIMENTS, experiment.to_manifest()))

    def set_experiment(
        self,
        name: str,
        objective: str | Objective | None = None,
        goal: Goal = "maximize",
        *,
        description: str | None = None,
        artifact_root: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Experiment:
        """The Experiment ``name``, created with these settings if it does not exist.

        An existing Experiment is left as it is (it may be managed by GitOps).
        """
        found = self.get_experiment(name)
        if found is None:
            try:
                return self.create_experiment(
                    name,
                    objective,
                    goal,
                    description=description,
                    artifact_root=artifact_root,
                    tags=tags,
                )
            except ConflictError:
                found = self.get_experiment(name)
        if found is None:
            raise NotFoundError(404, "NotFound", f"experiment {name} vanished while created")
        if objective is not None and found.spec.objective is None:
            log.warning("experiment %s exists without an objective; it is left unchanged", name)
        return found

    # -- runs -------------------------------------------------------------------------------

    def get_run(self, name: str) -> Run:
        obj = self.objects.get(RUNS, name)
        if obj is None:
            raise NotFoundError(404, "NotFound", f"run {name} not found in {self.namespace}")
        return Run.from_object(obj)

    def start_run(
        self,
        experiment: str | None = None,
        run_name: str | None = None,
        *,
        parent: str | None = None,
        evaluates: str | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> ActiveRun:
        """Create a Run in ``experiment`` (created if missing) and start it.

        ``run_name`` is the Run's object name and must be unique in the namespace (raises
        `RunExistsError`); without it a name is generated. ``parent`` names the parent run of
        a sweep, ``evaluates`` the ModelVersion an evaluation run evaluates.
        """
        found = self.set_experiment(experiment or self.default_experiment)
        experiment_name = found.metadata.name or ""
        name = _checked_name(run_name) if run_name else generate_run_name(experiment_name)
        root = layout.run_root(
            client_root=self.artifact_root,
            experiment_root=found.spec.artifact_root,
            namespace=self.namespace,
            experiment=experiment_name,
            run=name,
        )
        spec = _run_spec(experiment_name, parent, evaluates, tags)
        # Checked before anything is uploaded, so a taken name never has its files overwritten.
        if self.objects.get(RUNS, name) is not None:
            raise RunExistsError(_run_exists(name, self.namespace))
        store = self.open_store(root)
        spec.environment = self._record_environment(store, root)
        spec.code = capture_code(self.source.parent if self.source else Path.cwd(), self.source)
        run = Run(metadata=ObjectMeta(name=name, namespace=self.namespace), spec=spec)
        try:
            created = self.objects.create(RUNS, run.to_manifest())
        except ConflictError as error:
            raise RunExistsError(_run_exists(name, self.namespace)) from error
        now = utcnow()
        self.objects.patch_status(
            RUNS,
            name,
            {
                "phase": "Running",
                "startTime": rfc3339(now),
                "heartbeatTime": rfc3339(now),
                "artifactRoot": root,
            },
        )
        return ActiveRun(
            run=Run.from_object(created),
            root=root,
            start_time=now,
            objects=self.objects,
            store=store,
            open_store=self.open_store,
            flush_interval=self.flush_interval,
            flush_points=self.flush_points,
        )

    def _record_environment(self, store: ArtifactStore, root: str) -> Environment:
        requirements = layout.child_uri(root, layout.REQUIREMENTS_PATH)
        store.put_bytes(installed_requirements().encode(), requirements)
        return Environment(
            image=detect_image(self._environ, self.objects.read_pod),
            python=python_version(),
            requirements=requirements,
        )

    def _run_info_root(self, run: str | ActiveRun | RunInfo) -> tuple[str, str]:
        """(run name, artifact root) of a run given by name or object."""
        if isinstance(run, ActiveRun):
            return run.name, run.info.artifact_root
        if isinstance(run, RunInfo):
            return run.run_id, run.artifact_root
        status = self.get_run(run).status
        if status is None or not status.artifact_root:
            raise NotFoundError(404, "NotFound", f"run {run} has no status.artifactRoot")
        return run, status.artifact_root

    def load_metric_history(self, run: str | ActiveRun | RunInfo, key: str) -> list[Metric]:
        """Every stored point of metric ``key`` of ``run``, in logging order (as MLflow's
        `get_metric_history`). Points still in an active run's buffer are not included."""
        _, root = self._run_info_root(run)
        prefix = layout.child_uri(root, metric_dir(key), directory=True)
        with tempfile.TemporaryDirectory(prefix="modelplane-metrics-") as tmp:
            try:
                self.open_store(prefix).get_to_path(prefix, Path(tmp))
            except ArtifactNotFound:
                return []
            chunks = sorted(p for p in Path(tmp).iterdir() if is_chunk_name(p.name))
            return [point for chunk in chunks for point in decode_points(key, chunk.read_bytes())]

    # -- registry -------------------------------------------------------------------------

    def register_model(
        self,
        model: ModelSource,
        name: str,
        description: str | None = None,
        *,
        flavor: str | None = None,
        digest: str | None = None,
        run: str | None = None,
        max_attempts: int = DEFAULT_ATTEMPTS,
    ) -> ModelVersion:
        """Register ``model`` as the next version of model ``name``: ModelVersion
        ``<name>-v<N>``, N one more than the highest existing version.

        ``model`` is what `log_model` returned, an ActiveRun (its ``model``), a
        ``runs:/<run>/<path>`` URI, or an ``s3://`` / ``file://`` URI (then ``digest``
        defaults to the digest computed from the store, and ``run`` to none).
        Concurrent registrations get distinct, consecutive versions.
        """
        source = self._model_source(model, digest=digest, run=run)
        spec = ModelVersionSpec(
            model=name,
            version=1,
            run=source.run_id,
            artifact=ArtifactRef(uri=source.artifact_uri, digest=source.digest),
            flavor=flavor or source.flavor,
            description=description,
        )

        def create(version: int) -> ModelVersion:
            manifest = ModelVersion(
                metadata=ObjectMeta(
                    name=model_version_name(name, version), namespace=self.namespace
                ),
                spec=spec.model_copy(update={"version": version}),
            ).to_manifest()
            return ModelVersion.from_object(self.objects.create(MODELVERSIONS, manifest))

        return create_next_version(
            lambda: self._versions(name), create, model=name, max_attempts=max_attempts
        )

    def _versions(self, model: str) -> list[int]:
        return [
            int(item["spec"]["version"])
            for item in self.objects.list(MODELVERSIONS)
            if (item.get("spec") or {}).get("model") == model
        ]

    def _model_source(self, model: ModelSource, *, digest: str | None, run: str | None) -> _Source:
        if isinstance(model, ModelInfo):
            return _Source(model.artifact_uri, digest or model.digest, model.flavor, model.run_id)
        if isinstance(model, ActiveRun):
            model = f"runs:/{model.name}/{layout.DEFAULT_MODEL_PATH}"
        runs_uri = layout.parse_runs_uri(model)
        if runs_uri is not None:
            return self._logged_model(runs_uri, digest)
        return _Source(model, digest or self._store_digest(model), None, run)

    def _logged_model(self, uri: layout.RunsUri, digest: str | None) -> _Source:
        found = self.get_run(uri.run)
        root = found.status.artifact_root if found.status is not None else None
        if not root:
            raise RegistrationError(f"run {uri.run} has no artifact root; was it started?")
        artifact = layout.child_uri(root, f"{layout.ARTIFACTS_DIR}/{uri.path}", directory=True)
        recorded = parse_model_tag((found.spec.tags or {}).get(layout.model_tag(uri.path), ""))
        if recorded is None:
            # Logged with log_artifacts rather than log_model: digest what is stored now.
            return _Source(artifact, digest or self._store_digest(artifact), None, uri.run)
        return _Source(artifact, digest or recorded[0], recorded[1], uri.run)

    def _store_digest(self, uri: str) -> str:
        try:
            return str(self.open_store(uri).digest(uri).digest)
        except ArtifactNotFound as error:
            raise RegistrationError(f"no model to register at {uri}: {error}") from error


@dataclass(frozen=True)
class _Source:
    """Where a model to register is, its digest and flavor, and the run that made it."""

    artifact_uri: str
    digest: str
    flavor: str | None
    run_id: str | None

    def __post_init__(self) -> None:
        # Normalized and checked here, so a bad digest fails before any version is taken.
        object.__setattr__(self, "digest", str(parse_digest(self.digest)))


def _checked_name(name: str) -> str:
    try:
        return _OBJECT_NAME.validate_python(name)
    except ValidationError:
        raise ValueError(
            f"invalid run name {name!r}: run names are Kubernetes object names (lower-case "
            "letters, digits, '-' and '.', at most 253 characters)"
        ) from None


def _run_spec(
    experiment: str, parent: str | None, evaluates: str | None, tags: Mapping[str, Any] | None
) -> RunSpec:
    all_tags = {layout.PLATFORM_TAG: platform_name()}
    all_tags.update({str(key): str(value) for key, value in (tags or {}).items()})
    try:
        return RunSpec(experiment=experiment, parent=parent, evaluates=evaluates, tags=all_tags)
    except ValidationError as error:
        problems = "; ".join(e["msg"] for e in error.errors())
        raise ValueError(f"invalid run: {problems}") from None


def _run_exists(name: str, namespace: str) -> str:
    return (
        f"run {name!r} already exists in namespace {namespace!r}; run names are unique: pick "
        "another run_name, or omit it to get a generated one"
    )
