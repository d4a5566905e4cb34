"""`ActiveRun`: a Run that this process is executing, and everything it logs.

An ActiveRun is made by `Client.start_run` once its Run object exists and is Running. It holds
the run's metric buffer and flusher (see `modelplane.sdk.flushing`), and writes everything else
at once:

* params (``spec.params``, merge patch): immutable, as in MLflow. Re-logging a param with the
  same value is a no-op; with another value it raises `ParamConflictError`, here before any
  request when this process logged it, else from the API server's CEL rule;
* tags (``spec.tags``, merge patch): mutable;
* data inputs (``spec.data``, a list the API server treats as a map by name): a
  read-modify-write with a resourceVersion precondition, retried on conflict, so concurrent
  writers never drop each other's inputs;
* artifacts and models: uploaded under the run's ``artifacts/`` (see `modelplane.sdk.layout`).

Ending the run stops the flusher, stores the remaining points, and writes phase, endTime and
the final summaries in one status patch. Used as a context manager, a run ends Finished, or
Failed when the block raises, or Killed on KeyboardInterrupt.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from pydantic import TypeAdapter, ValidationError

from modelplane.api import DataInput, Run
from modelplane.api.fields import MAX_PARAMS, MAX_TAGS, ParamMap, TagMap
from modelplane.sdk import layout
from modelplane.sdk.buffers import MetricBuffer, Summary
from modelplane.sdk.errors import (
    ArtifactExistsError,
    ConflictError,
    InputConflictError,
    InvalidObjectError,
    MetricsNotStoredError,
    ParamConflictError,
    RunStateError,
)
from modelplane.sdk.flushing import Flusher, rfc3339, utcnow
from modelplane.sdk.inputs import data_digest
from modelplane.sdk.kube import Objects
from modelplane.sdk.layout import ARTIFACTS_DIR, DEFAULT_MODEL_PATH, child_uri, model_tag
from modelplane.sdk.models import ModelInfo, check_flavor, local_model_digest, model_tag_value
from modelplane.store import ArtifactStore

log = logging.getLogger(__name__)

RUNS = Run.crd.plural
Phase = Literal["Finished", "Failed", "Killed"]

# MLflow's RunStatus names, and ours, for end_run(status=...).
_END_STATUSES: dict[str, Phase] = {
    "FINISHED": "Finished",
    "FAILED": "Failed",
    "KILLED": "Killed",
}
_PARAMS: TypeAdapter[dict[str, str]] = TypeAdapter(ParamMap)
_TAGS: TypeAdapter[dict[str, str]] = TypeAdapter(TagMap)
INPUT_ATTEMPTS = 10


def end_phase(status: str) -> Phase:
    """The phase for MLflow's ``FINISHED``/``FAILED``/``KILLED`` (any case)."""
    try:
        return _END_STATUSES[status.upper()]
    except KeyError:
        raise ValueError(f"status must be FINISHED, FAILED or KILLED, got {status!r}") from None


@dataclass(frozen=True)
class RunInfo:
    """Identity and places of a run, as MLflow's `RunInfo` (``run_id`` is the object name)."""

    run_id: str
    run_name: str
    experiment: str
    namespace: str
    artifact_root: str
    """The run's root in the store (its ``status.artifactRoot``), ending in ``/``."""
    artifact_uri: str
    """Where its artifacts go: ``<artifact_root>artifacts/``."""
    start_time: datetime


def _invalid(what: str, error: ValidationError) -> ValueError:
    problems = "; ".join(e["msg"] for e in error.errors())
    return ValueError(f"invalid {what}: {problems}")


class ActiveRun:
    """A run in progress: log params, metrics, tags, inputs, artifacts and models to it."""

    def __init__(
        self,
        *,
        run: Run,
        root: str,
        start_time: datetime,
        objects: Objects,
        store: ArtifactStore,
        open_store: Callable[[str], ArtifactStore],
        flush_interval: float,
        flush_points: int,
    ) -> None:
        name = run.metadata.name or ""
        self.info = RunInfo(
            run_id=name,
            run_name=name,
            experiment=run.spec.experiment,
            namespace=objects.namespace,
            artifact_root=root,
            artifact_uri=child_uri(root, ARTIFACTS_DIR, directory=True),
            start_time=start_time,
        )
        self._objects = objects
        self._store = store
        self._open_store = open_store
        self._params: dict[str, str] = dict(run.spec.params or {})
        self._tags: dict[str, str] = dict(run.spec.tags or {})
        self._lock = threading.Lock()
        self._ended = False
        self._end_callbacks: list[Callable[[ActiveRun], None]] = []
        self._buffer = MetricBuffer(flush_points=flush_points, on_full=self._wake_flusher)
        self._flusher = Flusher(
            self._buffer,
            store_chunk=self._store_chunk,
            patch_status=self._patch_status,
            interval=flush_interval,
            name=name,
        )
        self._flusher.start()

    def _wake_flusher(self) -> None:
        # A method rather than the flusher's own, which does not exist yet when the buffer
        # is made.
        self._flusher.wake()

    # -- identity ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.info.run_id

    @property
    def run_id(self) -> str:
        return self.info.run_id

    @property
    def ended(self) -> bool:
        return self._ended

    def __repr__(self) -> str:
        return f"<ActiveRun {self.info.namespace}/{self.name} experiment={self.info.experiment}>"

    # -- params and tags ----------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> Any:
        """Log one param (stored as ``str(value)``); returns ``value``, as MLflow does."""
        self.log_params({key: value})
        return value

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log params in one request. Raises `ParamConflictError` when one was logged before
        with another value, ValueError for a bad name, a value over 500 characters, or more
        than 256 params."""
        self._check_active()
        values = {str(key): str(value) for key, value in params.items()}
        try:
            _PARAMS.validate_python(values)
        except ValidationError as error:
            raise _invalid("params", error) from None
        with self._lock:
            new = {}
            for key, value in values.items():
                old = self._params.get(key)
                if old is not None and old != value:
                    raise ParamConflictError(self._param_conflict(key, old, value))
                if old is None:
                    new[key] = value
            if not new:
                return
            if len(self._params) + len(new) > MAX_PARAMS:
                raise ValueError(f"a run holds at most {MAX_PARAMS} params")
            try:
                updated = self._objects.patch(RUNS, self.name, {"spec": {"params": new}})
            except InvalidObjectError as error:
                if "params are immutable" in error.message:
                    raise self._server_param_conflict(new) from error
                raise
            self._params = dict(updated.get("spec", {}).get("params") or {})

    def _param_conflict(self, key: str, old: str, new: str) -> str:
        return (
            f"Changing param values is not allowed. Param with key={key!r} was already logged "
            f"with value={old!r} for run {self.name!r}. Attempted logging new value {new!r}."
        )

    def _server_param_conflict(self, new: Mapping[str, str]) -> ParamConflictError:
        """The conflict the API server found: another writer logged one of ``new`` first."""
        current = (self._objects.get(RUNS, self.name) or {}).get("spec", {}).get("params") or {}
        self._params = dict(current)
        for key, value in new.items():
            if key in current and current[key] != value:
                return ParamConflictError(self._param_conflict(key, current[key], value))
        return ParamConflictError(f"the API server refused params {sorted(new)} as changes")

    @property
    def params(self) -> dict[str, str]:
        with self._lock:
            return dict(self._params)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Set tags (stored as strings); unlike params they may change."""
        self._check_active()
        values = {str(key): str(value) for key, value in tags.items()}
        try:
            _TAGS.validate_python(values)
        except ValidationError as error:
            raise _invalid("tags", error) from None
        with self._lock:
            if len(self._tags.keys() | values.keys()) > MAX_TAGS:
                raise ValueError(f"a run holds at most {MAX_TAGS} tags")
            updated = self._objects.patch(RUNS, self.name, {"spec": {"tags": values}})
            self._tags = dict(updated.get("spec", {}).get("tags") or {})

    @property
    def tags(self) -> dict[str, str]:
        with self._lock:
            return dict(self._tags)

    # -- metrics --------------------------------------------------------------------------------

    def log_metric(
        self, key: str, value: float, step: int | None = None, timestamp: int | None = None
    ) -> None:
        """Buffer one point (no I/O); ``step`` defaults to 0, ``timestamp`` (ms) to now."""
        self._buffer.add(key, value, step, timestamp)

    def log_metrics(
        self, metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
    ) -> None:
        add = self._buffer.add
        for key, value in metrics.items():
            add(key, value, step, timestamp)

    def metric_summaries(self) -> dict[str, Summary]:
        """Every metric's summary so far, including points not yet flushed."""
        return self._buffer.summaries()

    def flush(self) -> bool:
        """Flush metrics and send a heartbeat now; True when the whole history is stored."""
        self._check_active()
        return self._flusher.flush()

    def _store_chunk(self, path: str, data: bytes) -> None:
        self._store.put_bytes(data, child_uri(self.info.artifact_root, path))

    def _patch_status(self, status: dict[str, Any]) -> Mapping[str, Any]:
        return self._objects.patch_status(RUNS, self.name, status)

    # -- inputs, artifacts, models --------------------------------------------------------

    def log_input(self, name: str, uri: str, digest: str | None = None) -> DataInput:
        """Record a data set the run reads, pinned by digest (see `modelplane.sdk.inputs` for
        the accepted forms). Without ``digest`` the SDK streams the data from the store and
        records its sha256 (the manifest digest for a directory)."""
        self._check_active()
        if digest is None:
            digest = str(self._open_store(uri).digest(uri).digest)
        try:
            entry = DataInput(name=name, uri=uri, digest=data_digest(digest))
        except ValidationError as error:
            raise _invalid("data input", error) from None
        for _ in range(INPUT_ATTEMPTS):
            if self._add_input(entry):
                return entry
        raise ConflictError(409, "Conflict", f"run {self.name} kept changing; input not recorded")

    def _add_input(self, entry: DataInput) -> bool:
        """One read-modify-write of spec.data; False when the run changed meanwhile."""
        obj = self._objects.get(RUNS, self.name) or {}
        data = list(obj.get("spec", {}).get("data") or [])
        for existing in data:
            if existing.get("name") != entry.name:
                continue
            if DataInput.model_validate(existing) == entry:
                return True
            raise InputConflictError(
                f"data input {entry.name!r} of run {self.name!r} is already recorded as "
                f"{existing.get('uri')} ({existing.get('digest')}); inputs cannot change"
            )
        patch = {
            "metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]},
            "spec": {"data": [*data, entry.to_dict()]},
        }
        try:
            self._objects.patch(RUNS, self.name, patch)
        except ConflictError:
            return False
        return True

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> str:
        """Upload a file to ``artifacts/<artifact_path>/<file name>``; returns its URI."""
        self._check_active()
        source = Path(local_path)
        relative = "/".join(p for p in (layout.artifact_path(artifact_path), source.name) if p)
        uri = child_uri(self.info.artifact_uri, relative)
        self._store.put_file(source, uri)
        return uri

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> str:
        """Upload a directory's files under ``artifacts/<artifact_path>/``; returns its URI."""
        self._check_active()
        uri = child_uri(self.info.artifact_uri, layout.artifact_path(artifact_path), directory=True)
        self._store.put_directory(Path(local_dir), uri)
        return uri

    def log_model(
        self,
        path: str | Path,
        flavor: str | None = None,
        artifact_path: str = DEFAULT_MODEL_PATH,
    ) -> ModelInfo:
        """Upload a model file or directory to ``artifacts/<artifact_path>/`` and record its
        manifest digest; raises `ArtifactExistsError` if something is stored there already."""
        self._check_active()
        check_flavor(flavor)
        source = Path(path)
        relative = layout.artifact_path(artifact_path) or DEFAULT_MODEL_PATH
        uri = child_uri(self.info.artifact_uri, relative, directory=True)
        if self._store.stat(uri).exists:
            raise ArtifactExistsError(
                f"a model is already logged at {uri}; logged models never change, so log this "
                "one under another artifact_path"
            )
        digest = local_model_digest(source)
        if source.is_dir():
            self._store.put_directory(source, uri)
        else:
            self._store.put_file(source, child_uri(uri, source.name))
        self.set_tag(model_tag(relative), model_tag_value(str(digest.digest), flavor))
        return ModelInfo(
            run_id=self.name,
            artifact_path=relative,
            model_uri=f"runs:/{self.name}/{relative}",
            artifact_uri=uri,
            digest=str(digest.digest),
            size=digest.size,
            flavor=flavor,
        )

    # -- ending -----------------------------------------------------------------------------------

    def _check_active(self) -> None:
        if self._ended:
            raise RunStateError(f"run {self.name!r} has ended")

    def on_end(self, callback: Callable[[ActiveRun], None]) -> None:
        """Call ``callback(run)`` once the run has ended (the fluent API pops its stack)."""
        self._end_callbacks.append(callback)

    def end(self, status: str = "FINISHED", *, raise_incomplete: bool = True) -> None:
        """End the run: store the remaining metrics, then write phase, endTime and summaries.

        Ending twice does nothing. Raises `MetricsNotStoredError` (after the phase is written)
        when some points could not be stored, unless ``raise_incomplete`` is false.
        """
        phase = end_phase(status)
        with self._lock:
            if self._ended:
                return
            self._ended = True
        self._buffer.close()
        try:
            complete = self._flusher.close()
            now = utcnow()
            summaries = self._buffer.summaries()
            self._patch_status(
                {
                    "phase": phase,
                    "endTime": rfc3339(now),
                    "heartbeatTime": rfc3339(now),
                    "metrics": {key: summary.to_dict() for key, summary in summaries.items()},
                }
            )
        finally:
            for callback in self._end_callbacks:
                callback(self)
        if not complete:
            message = (
                f"run {self.name}: {self._flusher.unstored_chunks} metric history chunks could "
                "not be stored; the summaries in its status are complete, its history is not"
            )
            if raise_incomplete:
                raise MetricsNotStoredError(message)
            log.error(message)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.end("FINISHED")
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end("KILLED", raise_incomplete=False)
        elif issubclass(exc_type, SystemExit) and exc is not None and exc.args in ((), (0,)):
            self.end("FINISHED", raise_incomplete=False)
        else:
            self.end("FAILED", raise_incomplete=False)
