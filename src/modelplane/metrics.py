"""Prometheus metrics of the operator, served on the metrics port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

RECONCILES = Counter(
    "modelplane_reconciles_total",
    "Reconciliations by kind and result (success, retry, error).",
    ["kind", "result"],
)
RECONCILE_SECONDS = Histogram(
    "modelplane_reconcile_duration_seconds",
    "Time spent in one reconciliation, by kind.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
ARTIFACT_BYTES_VERIFIED = Counter(
    "modelplane_artifact_bytes_verified_total",
    "Bytes read from the artifact store to verify ModelVersion artifacts.",
)
ARTIFACT_VERIFICATION_FAILURES = Counter(
    "modelplane_artifact_verification_failures_total",
    "Artifact verifications that failed, by reason (mismatch, missing, unavailable).",
    ["reason"],
)
PROMOTIONS = Counter(
    "modelplane_promotions_total",
    "Promotions of a ModelStage to a new version, by model, stage and result.",
    ["model", "stage", "result"],
)
GATE_FAILURES = Counter(
    "modelplane_gate_failures_total",
    "Gate evaluations that failed, by model, stage and gate.",
    ["model", "stage", "gate"],
)
ROLLBACKS = Counter(
    "modelplane_rollbacks_total",
    "Automatic rollbacks of a serving Deployment, by model and stage.",
    ["model", "stage"],
)
LIVE_VERSION = Gauge(
    "modelplane_live_version",
    "The version live in each stage of each model.",
    ["namespace", "model", "stage"],
)


def serve(port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from the pod IP
    """Serve /metrics in a background thread."""
    start_http_server(port, addr=address)
