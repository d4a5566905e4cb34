"""SDK settings read from the environment; explicit `Client` arguments take precedence.

=============================== ==============================================================
variable                        meaning
=============================== ==============================================================
MODELPLANE_NAMESPACE            namespace of the SDK's objects; default: the kubeconfig
                                context's namespace, else the pod's, else ``default``
MODELPLANE_ARTIFACT_ROOT        where runs store artifacts and metric histories, e.g.
                                ``s3://mlruns``; an Experiment's ``spec.artifactRoot`` wins
MODELPLANE_EXPERIMENT           experiment of runs started without one (default ``default``)
MODELPLANE_FLUSH_INTERVAL       seconds between metric flushes and heartbeats (default 5); keep
                                it well under the operator's MODELPLANE_RUN_HEARTBEAT_TIMEOUT
MODELPLANE_FLUSH_POINTS         buffered points that trigger a flush early (default 10000)
MODELPLANE_IMAGE                the run's image pinned by digest (see sdk.environments)
KUBECONFIG                      the kubeconfig; without one, in a pod, the service account
MODELPLANE_S3_ENDPOINT_URL,     the artifact store (see modelplane.store.config)
AWS_*
=============================== ==============================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

DEFAULT_EXPERIMENT = "default"
DEFAULT_FLUSH_INTERVAL = 5.0
DEFAULT_FLUSH_POINTS = 10_000


@dataclass(frozen=True)
class Settings:
    """What the environment says; None means "not set"."""

    namespace: str | None = None
    artifact_root: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    flush_interval: float = DEFAULT_FLUSH_INTERVAL
    flush_points: int = DEFAULT_FLUSH_POINTS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Raises ValueError for a flush setting that is not a positive number."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(name, "").strip() or None

        interval = _positive(env, "MODELPLANE_FLUSH_INTERVAL", float, DEFAULT_FLUSH_INTERVAL)
        points = _positive(env, "MODELPLANE_FLUSH_POINTS", int, DEFAULT_FLUSH_POINTS)
        return cls(
            namespace=get("MODELPLANE_NAMESPACE"),
            artifact_root=get("MODELPLANE_ARTIFACT_ROOT"),
            experiment=get("MODELPLANE_EXPERIMENT") or DEFAULT_EXPERIMENT,
            flush_interval=interval,
            flush_points=points,
        )


_N = TypeVar("_N", int, float)


def _positive(env: Mapping[str, str], name: str, kind: type[_N], default: _N) -> _N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = kind(0)
    if value <= 0:
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {raw!r}")
    return value
