"""SDK cost: logging metric points and creating runs, modelplane's SDK beside MLflow's client.

In one process and one run, alternating the two:

- **points**: 100,000 metric points. modelplane's `ActiveRun.log_metric` only buffers (a
  background flusher writes history chunks to S3 and summaries to the Run's status); we time
  the calls, and separately the final `end()` that flushes what remains. MLflow:
  `MlflowClient.log_batch` in batches of 1,000 `Metric`s (its documented limit per call) into a
  sqlite backend in a temp dir, the fast path MLflow offers for many points.
- **runs**: 1,000 runs created and ended. modelplane: `Client.start_run` + `end()` (a Run
  object, its status, the environment file in S3); MLflow: `create_run` + `set_terminated`.

modelplane talks to the bench cluster's API server and MinIO; MLflow to a local sqlite file.
The operator is not running: this measures the client. Target: buffered logging <= 5 us/point.
"""

from __future__ import annotations

import contextlib
import secrets
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    DISTRIBUTION_HEADERS,
    Distribution,
    Results,
    api_client,
    arguments,
    bench_cluster,
    distribution_row,
    finish,
    table,
)

BUCKET = "bench-sdk"
BATCH = 1000
ROUNDS = 3
TARGET_US = 5.0


def modelplane_points(client: Any, experiment: str, points: int) -> tuple[float, float, float]:
    """Seconds spent in log_metric for `points` points, the process's CPU seconds meanwhile
    (the background flusher's included), and the seconds of the final end() (flush)."""
    run = client.start_run(experiment, f"points-{secrets.token_hex(4)}")
    log = run.log_metric
    cpu = time.process_time()
    started = time.perf_counter()
    for step in range(points):
        log("loss", 1.0 / (step + 1), step=step)
    logged = time.perf_counter() - started
    cpu = time.process_time() - cpu
    started = time.perf_counter()
    run.end()
    return logged, cpu, time.perf_counter() - started


def mlflow_points(client: Any, experiment_id: str, points: int) -> tuple[float, float]:
    """Seconds to log `points` points through log_batch (batches of 1,000), the Metric objects
    built inside the timed loop as a caller would."""
    from mlflow.entities import Metric  # noqa: PLC0415

    run_id = client.create_run(experiment_id).info.run_id
    now = int(time.time() * 1000)
    cpu = time.process_time()
    started = time.perf_counter()
    for offset in range(0, points, BATCH):
        batch = [
            Metric("loss", 1.0 / (step + 1), now, step)
            for step in range(offset, min(points, offset + BATCH))
        ]
        client.log_batch(run_id, metrics=batch, synchronous=True)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    client.set_terminated(run_id)
    return elapsed, cpu


def modelplane_runs(client: Any, experiment: str, count: int) -> list[float]:
    seconds = []
    prefix = secrets.token_hex(3)
    for index in range(count):
        started = time.perf_counter()
        run = client.start_run(experiment, f"r-{prefix}-{index}")
        run.end()
        seconds.append(time.perf_counter() - started)
    return seconds


def mlflow_runs(client: Any, experiment_id: str, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        run_id = client.create_run(experiment_id).info.run_id
        client.set_terminated(run_id)
        seconds.append(time.perf_counter() - started)
    return seconds


def compare_points(
    ours: Any, theirs: Any, experiment_id: str, points: int
) -> dict[str, list[float]]:
    """Seconds per point of each path, ROUNDS rounds, alternating which goes first."""
    samples: dict[str, list[float]] = {
        "modelplane log_metric (buffered)": [],
        "modelplane log_metric + end() flush": [],
        "mlflow log_batch (sqlite)": [],
        "modelplane log_metric, process CPU": [],
        "mlflow log_batch, process CPU": [],
    }
    for index in range(ROUNDS):
        order = ["ours", "theirs"] if index % 2 == 0 else ["theirs", "ours"]
        for who in order:
            if who == "ours":
                logged, cpu, flushed = modelplane_points(ours, "bench", points)
                samples["modelplane log_metric (buffered)"].append(logged / points)
                samples["modelplane log_metric, process CPU"].append(cpu / points)
                samples["modelplane log_metric + end() flush"].append((logged + flushed) / points)
            else:
                wall, cpu = mlflow_points(theirs, experiment_id, points)
                samples["mlflow log_batch (sqlite)"].append(wall / points)
                samples["mlflow log_batch, process CPU"].append(cpu / points)
        print(
            f"points round {index + 1}: "
            + ", ".join(f"{k} {v[-1] * 1e6:.2f} us" for k, v in samples.items())
        )
    return samples


RUN_BLOCK = 50


def compare_runs(
    ours: Any, theirs: Any, experiment_id: str, runs: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Seconds per run of each client, interleaved in blocks so both see the same load; and
    the total seconds each spent."""
    samples: dict[str, list[float]] = {"modelplane": [], "mlflow (sqlite)": []}
    spent = {"modelplane": 0.0, "mlflow (sqlite)": 0.0}
    for _ in range(0, runs, RUN_BLOCK):
        started = time.perf_counter()
        samples["modelplane"] += modelplane_runs(ours, "bench", RUN_BLOCK)
        spent["modelplane"] += time.perf_counter() - started
        started = time.perf_counter()
        samples["mlflow (sqlite)"] += mlflow_runs(theirs, experiment_id, RUN_BLOCK)
        spent["mlflow (sqlite)"] += time.perf_counter() - started
    return samples, spent


def main() -> None:
    args = arguments(__doc__)
    from kubernetes import client as k8s  # noqa: PLC0415
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    from modelplane.sdk import Client  # noqa: PLC0415
    from modelplane.store import StoreConfig  # noqa: PLC0415
    from modelplane.store.s3 import make_client  # noqa: PLC0415

    points = 10_000 if args.quick else 100_000
    runs = 100 if args.quick else 1000
    cluster = bench_cluster()
    s3_env = cluster.s3().env()
    config = StoreConfig.from_env(s3_env)
    with contextlib.suppress(Exception):  # there from an earlier run
        make_client(config).create_bucket(Bucket=BUCKET)
    namespace = f"bench-sdk-{secrets.token_hex(3)}"
    api = api_client(cluster)
    k8s.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    ours = Client(
        namespace,
        artifact_root=f"s3://{BUCKET}",
        api_client=api,
        store_config=config,
        source=Path(__file__),
    )
    ours.set_experiment("bench", "loss", "minimize")

    with tempfile.TemporaryDirectory() as tmp:
        theirs = MlflowClient(tracking_uri=f"sqlite:///{tmp}/mlflow.db")
        experiment_id = theirs.create_experiment("bench", artifact_location=f"{tmp}/artifacts")

        point_samples = compare_points(ours, theirs, experiment_id, points)
        run_samples, spent = compare_runs(ours, theirs, experiment_id, runs)

    print(f"\nper metric point, {points:,} points x {ROUNDS} alternating rounds (microseconds)\n")
    point_rows = []
    for name, values in point_samples.items():
        us = sorted(v * 1e6 for v in values)
        point_rows.append([name, len(us), us[0], us[len(us) // 2], us[-1]])
    print(table(["path", "rounds", "min", "median", "max"], point_rows))
    print(f"\nruns created and ended, {runs:,} each, interleaved in blocks of {RUN_BLOCK}\n")
    run_rows = []
    run_summary: dict[str, Any] = {}
    for name, values in run_samples.items():
        ms = Distribution.of(values).scaled(1000)
        rate = len(values) / spent[name]
        run_rows.append([name, rate, *distribution_row(ms)])
        run_summary[name] = {"runs_per_s": rate, "latency_ms": ms}
    print(
        table(
            ["client", "runs/s", *(h if h == "n" else f"{h} ms" for h in DISTRIBUTION_HEADERS)],
            run_rows,
        )
    )

    buffered = sorted(point_samples["modelplane log_metric (buffered)"])
    median_us = buffered[len(buffered) // 2] * 1e6
    verdict = "met" if median_us <= TARGET_US else "NOT met"
    print(f"\nbuffered logging: {median_us:.2f} us/point (median); target <= 5 us: {verdict}")
    results = Results("sdk_logging", args.quick)
    results.data = {
        "points": points,
        "rounds": ROUNDS,
        "runs": runs,
        "seconds_per_point": point_samples,
        "runs_summary": run_summary,
        "buffered_us_per_point_median": median_us,
        "target_us": TARGET_US,
        "met": median_us <= TARGET_US,
    }
    results.write()
    k8s.CoreV1Api(api).delete_namespace(namespace)
    finish(cluster, args)


if __name__ == "__main__":
    main()
