"""The fluent API: MLflow's module-level functions, on a default `Client` and an active run.

As in MLflow, each thread has its own stack of active runs: `start_run` pushes, `end_run` (or
leaving the ``with`` block) pops, ``start_run(nested=True)`` makes the active run the new run's
parent, and the ``log_*`` functions log to the active run, starting one in the current
experiment when there is none. The current experiment (`set_experiment`) is process-wide.

At interpreter exit, runs still active are ended: Failed when the program is dying of an
unhandled exception, Killed on KeyboardInterrupt, else Finished (MLflow ends them Finished
regardless). A process killed outright (SIGKILL, OOM) cannot end its runs: their heartbeats
stop, and the operator marks them Failed after ``MODELPLANE_RUN_HEARTBEAT_TIMEOUT``.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelplane.api import DataInput, Experiment, ModelVersion, Objective
from modelplane.api.fields import Goal
from modelplane.sdk.client import Client, ModelSource
from modelplane.sdk.errors import RunStateError
from modelplane.sdk.histories import Metric
from modelplane.sdk.layout import DEFAULT_MODEL_PATH
from modelplane.sdk.models import ModelInfo
from modelplane.sdk.runs import ActiveRun, RunInfo

log = logging.getLogger(__name__)

_client: Client | None = None
_experiment: str | None = None
_lock = threading.Lock()
_local = threading.local()
# Every fluent run not yet ended, of any thread, for the exit handler.
_open_runs: dict[int, ActiveRun] = {}


def set_client(client: Client | None) -> None:
    """Use ``client`` for the fluent functions (None: a Client from the environment)."""
    global _client  # noqa: PLW0603 (the fluent API's one default client, as in MLflow)
    with _lock:
        _client = client


def get_client() -> Client:
    """The Client of the fluent functions, built from the environment on first use."""
    global _client  # noqa: PLW0603
    with _lock:
        if _client is None:
            _client = Client()
        return _client


def _stack() -> list[ActiveRun]:
    stack: list[ActiveRun] | None = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def set_experiment(
    name: str,
    objective: str | Objective | None = None,
    goal: Goal = "maximize",
    *,
    description: str | None = None,
    artifact_root: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Experiment:
    """Make ``name`` the current experiment, creating it (with ``objective``, the metric that
    ranks its runs, and ``goal``) if it does not exist."""
    global _experiment  # noqa: PLW0603
    experiment = get_client().set_experiment(
        name, objective, goal, description=description, artifact_root=artifact_root, tags=tags
    )
    with _lock:
        _experiment = experiment.metadata.name
    return experiment


def start_run(
    run_name: str | None = None,
    nested: bool = False,
    experiment: str | None = None,
    evaluates: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> ActiveRun:
    """Start a run and make it active; use it as a context manager to end it.

    ``nested=True`` makes the active run its parent (and is required when a run is active).
    ``experiment`` defaults to the current one, then ``MODELPLANE_EXPERIMENT``, then
    ``default``; ``evaluates`` names the ModelVersion an evaluation run evaluates.
    """
    stack = _stack()
    if stack and not nested:
        raise RunStateError(
            f"run {stack[-1].name!r} is already active. To start a new run, first end the "
            "current run with end_run(). To start a nested run, call start_run with nested=True"
        )
    parent = stack[-1].name if stack and nested else None
    run = get_client().start_run(
        experiment or _experiment,
        run_name,
        parent=parent,
        evaluates=evaluates,
        tags=tags,
    )
    stack.append(run)
    with _lock:
        _open_runs[id(run)] = run
    run.on_end(lambda ended: _forget(stack, ended))
    return run


def _forget(stack: list[ActiveRun], run: ActiveRun) -> None:
    if run in stack:
        stack.remove(run)
    with _lock:
        _open_runs.pop(id(run), None)


def active_run() -> ActiveRun | None:
    """The innermost active run of this thread, or None."""
    stack = _stack()
    return stack[-1] if stack else None


def end_run(status: str = "FINISHED") -> None:
    """End the active run with ``status``: FINISHED, FAILED or KILLED. No active run: no-op."""
    run = active_run()
    if run is not None:
        run.end(status)


def _run() -> ActiveRun:
    """The active run, or a new one, as MLflow's log functions do."""
    stack: list[ActiveRun] | None = getattr(_local, "stack", None)
    if stack:
        return stack[-1]
    return start_run()


def log_param(key: str, value: Any) -> Any:
    return _run().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _run().log_params(params)


def log_metric(
    key: str, value: float, step: int | None = None, timestamp: int | None = None
) -> None:
    """Buffer one point of metric ``key``; written to the store and the Run in batches."""
    _run().log_metric(key, value, step, timestamp)


def log_metrics(
    metrics: Mapping[str, float], step: int | None = None, timestamp: int | None = None
) -> None:
    _run().log_metrics(metrics, step, timestamp)


def set_tag(key: str, value: Any) -> None:
    _run().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _run().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> str:
    return _run().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> str:
    return _run().log_artifacts(local_dir, artifact_path)


def log_input(name: str, uri: str, digest: str | None = None) -> DataInput:
    return _run().log_input(name, uri, digest)


def log_model(
    path: str | Path, flavor: str | None = None, artifact_path: str = DEFAULT_MODEL_PATH
) -> ModelInfo:
    return _run().log_model(path, flavor, artifact_path)


def register_model(
    model_uri: ModelSource,
    name: str,
    description: str | None = None,
    *,
    flavor: str | None = None,
    digest: str | None = None,
) -> ModelVersion:
    """Register a logged model as the next version of model ``name`` (see
    `Client.register_model`)."""
    return get_client().register_model(model_uri, name, description, flavor=flavor, digest=digest)


def load_metric_history(run: str | ActiveRun | RunInfo, key: str) -> list[Metric]:
    return get_client().load_metric_history(run, key)


def _end_open_runs() -> None:
    """At exit: end every fluent run still open, innermost first."""
    dying = getattr(sys, "last_value", None)
    status = "FINISHED"
    if isinstance(dying, KeyboardInterrupt):
        status = "KILLED"
    elif dying is not None:
        status = "FAILED"
    with _lock:
        runs = list(_open_runs.values())
    for run in reversed(runs):
        try:
            run.end(status, raise_incomplete=False)
        # One run that cannot be ended (the API server is gone) must not keep the others open.
        except Exception:
            log.exception("could not end run %s at exit", run.name)


atexit.register(_end_open_runs)
