"""Scale: an operator restarted over 10,000 ModelVersions and 1,000 ModelStages.

Setup, with no operator running: MODELS models of VERSIONS versions each, all pointing at one
small verified S3 object, and one ModelStage (stage Production, version 1, a serving Deployment of 0
replicas, so the Deployments exist without 1,000 pods) per model; created with a thread pool.
Then the operator starts and brings everything to Ready (the initial sync); we wait until its
reconcile counters are still. The operator runs without its admission webhooks here: they play
no part in a restart, and while the operator is busy with an initial sync of thousands of
objects its fail-closed webhooks answer too slowly (see BENCHMARKS.md).

Then the operator is stopped (SIGTERM) and started again, and we measure:

- **time to re-check everything**: from the new process's start until its
  `modelplane_reconciles_total` has counted at least one reconciliation per object of each kind
  (ModelVersion: kopf's resume handler reconciles each one; ModelStage: the initial listing's
  events do) *and* the counters then stay still for QUIET seconds (idle). The counter counts
  reconciliations, not distinct objects, so "at least N" is necessary rather than sufficient;
  the operator's log is also checked for errors.
- **objects written**: every ModelVersion, ModelStage and Deployment of the namespace is
  listed before the restart and after idle; an object whose resourceVersion moved was written
  (a write that changed nothing does not count, as it changes nothing). Events posted in the
  namespace since the restart are counted too. This is scoped to the benchmark's namespace, so
  other work on the cluster does not inflate it. The API server's own
  `apiserver_request_total` deltas for mutating verbs are reported as well, but they are
  cluster-wide and include whatever else ran at the time.
- **RSS**: VmRSS of the operator process once idle, from /proc/<pid>/status.

Targets: re-check <= 30 s; writes to <= 1 % of the objects when nothing changed; RSS <= 250 MiB.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    Operator,
    Results,
    api_client,
    arguments,
    bench_cluster,
    cluster_option,
    finish,
    parse_prometheus,
    process_cpu_seconds,
    small_artifact,
    sum_samples,
    table,
)

GROUP, VERSION = "modelplane.io", "v1alpha1"
BUCKET = "bench-scale"
QUIET = 10.0
POLL = 1.0
"""Seconds between two reads of the operator's metrics. Each read renders every series (one per
model and stage at the full size), which cost the operator about a tenth of its CPU at a restart
when read four times a second; Prometheus reads every 15 to 60 seconds."""
VERSIONS = 10
"""ModelVersions per model."""
STEADY_TIMEOUT = 3600.0
RESTART_TIMEOUT = 900.0
WRITE_VERBS = ("POST", "PUT", "PATCH", "DELETE", "APPLY")
TARGET_SECONDS = 30.0
TARGET_WRITE_SHARE = 0.01
TARGET_RSS_MIB = 250.0


def model_version(model: str, version: int, uri: str, digest: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"{model}-v{version}"},
        "spec": {
            "model": model,
            "version": version,
            "artifact": {"uri": uri, "digest": digest},
        },
    }


def model_stage(model: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelStage",
        "metadata": {"name": f"{model}-production"},
        "spec": {
            "model": model,
            "stage": "Production",
            "version": 1,
            "serving": {
                "replicas": 0,
                "template": {
                    "spec": {"containers": [{"name": "server", "image": "example.com/m:1"}]}
                },
            },
        },
    }


def create_all(custom: Any, namespace: str, plural: str, bodies: list[dict[str, Any]]) -> float:
    """Create every object with a thread pool; returns the seconds it took."""

    def create(body: dict[str, Any]) -> None:
        for attempt in range(5):
            try:
                custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)
                return
            except Exception as error:
                if getattr(error, "status", None) == 409:  # there from a retried attempt
                    return
                if attempt == 4:
                    raise
                time.sleep(1 + attempt)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(create, bodies))
    return time.monotonic() - started


def count_ready(custom: Any, namespace: str, plural: str) -> int:
    """Objects of `plural` that are Ready at their current generation (paged list)."""
    ready, token = 0, None
    while True:
        page = custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, limit=500, _continue=token
        )
        for obj in page["items"]:
            status = obj.get("status") or {}
            current = status.get("observedGeneration") == obj["metadata"].get("generation")
            conditions = status.get("conditions") or []
            if current and any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                ready += 1
        token = page["metadata"].get("continue")
        if not token:
            return ready


def reconciles(operator: Operator) -> dict[str, float]:
    for attempt in range(5):  # the metrics endpoint can be slow to answer on a loaded machine
        try:
            samples = operator.metrics()
            break
        except OSError:
            if attempt == 4:
                raise

    return {
        kind: sum_samples(samples, "modelplane_reconciles_total", kind=kind)
        for kind in ("ModelVersion", "ModelStage")
    }


def apiserver_requests(kubectl: list[str]) -> dict[str, float]:
    """Requests served so far, by "resource[/subresource] VERB", from the API server's
    `apiserver_request_total`."""
    text = subprocess.run(  # noqa: S603 - our own kubectl with fixed arguments
        [*kubectl, "get", "--raw", "/metrics"], check=True, capture_output=True, text=True
    ).stdout
    requests: dict[str, float] = {}
    for key, value in parse_prometheus(text).items():
        if not key.startswith("apiserver_request_total{"):
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', key))
        name = labels.get("resource", "")
        if labels.get("subresource"):
            name += "/" + labels["subresource"]
        name += f" {labels.get('verb', '')}"
        requests[name] = requests.get(name, 0.0) + value
    return requests


def request_deltas(
    before: dict[str, float], after: dict[str, float]
) -> dict[str, dict[str, float]]:
    """The requests served between two `apiserver_requests` readings, split into writes
    (mutating verbs) and reads."""
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    split: dict[str, dict[str, float]] = {"writes": {}, "reads": {}}
    for key, value in sorted(delta.items()):
        if value > 0:
            verb = key.rpartition(" ")[2]
            split["writes" if verb in WRITE_VERBS else "reads"][key] = value
    return split


def wait_idle(
    operator: Operator, started: float, needs: dict[str, int], timeout: float
) -> dict[str, float]:
    """Poll the reconcile counters until each kind has counted `needs[kind]` and they stayed
    still for QUIET seconds. Returns times (from `started`) and counts."""
    last = reconciles(operator)
    last_change = time.monotonic()
    reached: float | None = None
    while time.monotonic() - started < timeout:
        time.sleep(POLL)
        now = reconciles(operator)
        at = time.monotonic()
        if now != last:
            last, last_change = now, at
        if reached is None and all(now[kind] >= n for kind, n in needs.items()):
            reached = at - started
        if reached is not None and at - last_change >= QUIET:
            return {
                "all_reconciled_s": reached,
                "idle_s": last_change - started,
                **{f"reconciles_{k}": v for k, v in now.items()},
            }
    raise TimeoutError(f"the operator was not idle after {timeout} s: {last}")


def populate(
    cluster: Any, custom: Any, namespace: str, models: int
) -> tuple[int, int, dict[str, float]]:
    """Create the objects; returns the counts and the seconds creation took."""
    uri, digest = small_artifact(cluster, BUCKET, b"scale model\n" * 100)
    names = [f"m{index:04d}" for index in range(models)]
    mvs = [model_version(m, v, uri, digest) for m in names for v in range(1, VERSIONS + 1)]
    stages = [model_stage(m) for m in names]
    created = {
        "modelversions_s": create_all(custom, namespace, "modelversions", mvs),
        "modelstages_s": create_all(custom, namespace, "modelstages", stages),
    }
    print(
        f"created {len(mvs)} ModelVersions in {created['modelversions_s']:.0f} s, "
        f"{len(stages)} ModelStages in {created['modelstages_s']:.0f} s"
    )
    return len(mvs), len(stages), created


def wait_all_ready(custom: Any, namespace: str, n_mv: int, n_ms: int) -> float:
    started = time.monotonic()
    while time.monotonic() - started < STEADY_TIMEOUT:
        ready = {p: count_ready(custom, namespace, p) for p in ("modelversions", "modelstages")}
        print(f"  {time.monotonic() - started:.0f} s: Ready {ready}")
        if ready["modelversions"] >= n_mv and ready["modelstages"] >= n_ms:
            return time.monotonic() - started
        time.sleep(10)
    raise TimeoutError("the objects did not all become Ready")


def versions(api: Any, namespace: str) -> dict[str, str]:
    """resourceVersion of every object the operator may write in the namespace."""
    from kubernetes import client as k8s  # noqa: PLC0415

    custom = k8s.CustomObjectsApi(api)
    found: dict[str, str] = {}
    for plural in ("modelversions", "modelstages"):
        token = None
        while True:
            page = custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, limit=500, _continue=token
            )
            for obj in page["items"]:
                found[f"{plural}/{obj['metadata']['name']}"] = obj["metadata"]["resourceVersion"]
            token = page["metadata"].get("continue")
            if not token:
                break
    for deployment in k8s.AppsV1Api(api).list_namespaced_deployment(namespace).items:
        found[f"deployments/{deployment.metadata.name}"] = deployment.metadata.resource_version
    return found


def events_since(api: Any, namespace: str, since: datetime) -> int:
    from kubernetes import client as k8s  # noqa: PLC0415

    count = 0
    for event in k8s.CoreV1Api(api).list_namespaced_event(namespace).items:
        at = event.last_timestamp or event.event_time or event.metadata.creation_timestamp
        if at is not None and at >= since:
            count += 1
    return count


def start_profiler(pid: int, path: Path, mode: str) -> subprocess.Popen[bytes]:
    """py-spy sampling `pid` into `path` in its "raw" (collapsed stacks) format: every busy
    thread (`mode` wall) or the thread holding the GIL (gil). `uv run --with py-spy` puts
    py-spy on the PATH."""
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: uv run --with py-spy python -m bench.scale ...")
    return subprocess.Popen(  # noqa: S603 - py-spy from PATH with fixed arguments
        [
            py_spy,
            "record",
            "--pid",
            str(pid),
            "--format",
            "raw",
            "--rate",
            "50",
            "-o",
            str(path),
            *(["--gil"] if mode == "gil" else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop_profiler(profiler: subprocess.Popen[bytes]) -> None:
    """Stops py-spy the way Ctrl-C does, so that it writes its file."""
    profiler.send_signal(signal.SIGINT)
    try:
        profiler.wait(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        profiler.wait()


def restart_and_measure(
    cluster: Any,
    custom: Any,
    namespace: str,
    log: Path,
    needs: dict[str, int],
    *,
    env: dict[str, str],
    profile: Path | None,
    profile_mode: str = "wall",
) -> dict[str, Any]:
    """Start a fresh operator over the settled objects and measure its re-check."""
    kubectl = [str(cluster.kubectl_path()), f"--kubeconfig={cluster.kubeconfig}"]
    api = custom.api_client
    requests_before = apiserver_requests(kubectl)
    versions_before = versions(api, namespace)
    since = datetime.now(UTC).replace(microsecond=0)
    log_offset = log.stat().st_size
    restart = Operator(cluster, log, webhook=False, namespace=namespace, env=env)
    restarted = time.monotonic()
    live_s = restart.start()
    profiler = start_profiler(restart.pid, profile, profile_mode) if profile is not None else None
    try:
        idle = wait_idle(restart, restarted, needs, RESTART_TIMEOUT)
        rss = restart.rss_mib()
        peak = restart.peak_rss_mib()
        cpu = process_cpu_seconds(restart.pid)
        if profiler is not None:
            stop_profiler(profiler)
        requests_after = apiserver_requests(kubectl)
        versions_after = versions(api, namespace)
        events = events_since(api, namespace, since)
        still_ready = {
            p: count_ready(custom, namespace, p) for p in ("modelversions", "modelstages")
        }
    finally:
        restart.stop()
    errors = [
        line
        for line in log.read_text(errors="replace")[log_offset:].splitlines()
        if " ERROR " in line
    ]
    delta = request_deltas(requests_before, requests_after)
    changed = sorted(k for k, v in versions_after.items() if versions_before.get(k) != v)
    by_kind: dict[str, int] = {}
    for key in changed:
        kind = key.split("/")[0]
        by_kind[kind] = by_kind.get(kind, 0) + 1
    return {
        "objects_changed": len(changed),
        "objects_changed_by_kind": by_kind,
        "objects_changed_examples": changed[:10],
        "events_posted": events,
        "restart": {"live_s": live_s, "operator_cpu_s": cpu, **idle},
        "cluster_writes_by_resource": delta["writes"],
        "cluster_reads_by_resource": delta["reads"],
        "rss_mib": rss,
        "peak_rss_mib": peak,
        "ready_after_restart": still_ready,
        "operator_errors_after_restart": errors[:20],
    }


def options(parser: argparse.ArgumentParser) -> None:
    cluster_option(parser)
    parser.add_argument(
        "--results",
        default=None,
        metavar="NAME",
        help="write bench/results/NAME.json (default: scale, or scale_quick with --quick)",
    )
    parser.add_argument(
        "--operator-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for the operator processes (repeatable), e.g. "
        "MALLOC_ARENA_MAX=2",
    )
    parser.add_argument(
        "--models",
        type=int,
        default=None,
        metavar="M",
        help="M models of 10 versions and one stage each (default: 1000, or 100 with --quick), "
        "e.g. an intermediate size to measure how memory grows with the number of objects",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the namespace and its objects at the end, for --reuse",
    )
    parser.add_argument(
        "--reuse",
        default=None,
        metavar="NAMESPACE",
        help="measure only a restart, over the settled objects a --keep run left in NAMESPACE "
        "(no creation, no initial sync); the namespace is kept",
    )
    parser.add_argument(
        "--profile",
        choices=("wall", "gil"),
        default=None,
        help="sample the restarted operator with py-spy into /tmp/<namespace>-restart.pyspy "
        "(collapsed stacks): every busy thread (wall) or only the one holding the GIL (gil, "
        "close to the Python code's CPU); needs `uv run --with py-spy`",
    )


def main() -> None:
    args = arguments(__doc__, options)
    from kubernetes import client as k8s  # noqa: PLC0415

    models = args.models or (100 if args.quick else 1000)
    env = dict(item.split("=", 1) for item in args.operator_env)
    cluster = bench_cluster(args.cluster)
    api = api_client(cluster)
    custom = k8s.CustomObjectsApi(api)
    namespace = args.reuse or f"bench-scale-{secrets.token_hex(3)}"
    log = Path(tempfile.gettempdir()) / f"{namespace}-operator.log"
    profile = Path(tempfile.gettempdir()) / f"{namespace}-restart.pyspy" if args.profile else None
    if not args.reuse:
        k8s.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    try:
        if args.reuse:
            n_mv, n_ms = (len(list_names(custom, namespace, p)) for p in PLURALS)
            models = n_ms
            initial: dict[str, Any] = {"reused_namespace": namespace}
        else:
            n_mv, n_ms, initial = populate_and_sync(
                cluster, custom, namespace, models, log=log, env=env
            )
        measured = restart_and_measure(
            cluster,
            custom,
            namespace,
            log,
            {"ModelVersion": n_mv, "ModelStage": n_ms},
            env=env,
            profile=profile,
            profile_mode=args.profile or "wall",
        )
        report(
            args.results or ("scale_quick" if args.quick else "scale"),
            args.quick,
            {
                "cluster": args.cluster,
                "operator_env": env,
                # Set to run another copy of the code (e.g. a snapshot of an earlier commit).
                "pythonpath": os.environ.get("PYTHONPATH"),
                "models": models,
                "modelversions": n_mv,
                "modelstages": n_ms,
                **initial,
                "operator_log": str(log),
                "profile": str(profile) if profile is not None else None,
                **measured,
            },
        )
    finally:
        if args.keep or args.reuse:
            print(f"namespace {namespace} kept (--reuse {namespace} measures another restart)")
        else:
            delete_namespace(api, namespace)
    finish(cluster, args)


PLURALS = ("modelversions", "modelstages")


def list_names(
    custom: Any, namespace: str, plural: str, *, finalized_only: bool = False
) -> list[str]:
    """The names of the objects of `plural` in the namespace (paged): all of them, or those
    with finalizers."""
    names: list[str] = []
    token = None
    while True:
        page = custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, limit=500, _continue=token
        )
        names += [
            obj["metadata"]["name"]
            for obj in page["items"]
            if obj["metadata"].get("finalizers") or not finalized_only
        ]
        token = page["metadata"].get("continue")
        if not token:
            return names


def populate_and_sync(
    cluster: Any, custom: Any, namespace: str, models: int, *, log: Path, env: dict[str, str]
) -> tuple[int, int, dict[str, Any]]:
    """Creates the objects and lets a first operator bring them to Ready; returns the counts
    and what the initial sync measured."""
    n_mv, n_ms, created = populate(cluster, custom, namespace, models)
    operator = Operator(cluster, log, webhook=False, namespace=namespace, env=env)
    operator.start()
    print(f"operator pid {operator.pid}, log {log}")
    try:
        first_ready_s = wait_all_ready(custom, namespace, n_mv, n_ms)
        wait_idle(operator, time.monotonic(), {}, STEADY_TIMEOUT)
        return (
            n_mv,
            n_ms,
            {
                "create_seconds": created,
                "first_ready_s": first_ready_s,
                "rss_mib_before_restart": operator.rss_mib(),
                "peak_rss_mib_before_restart": operator.peak_rss_mib(),
                "operator_cpu_s_before_restart": process_cpu_seconds(operator.pid),
            },
        )
    finally:
        operator.stop()


def delete_namespace(api: Any, namespace: str) -> None:
    """Deletes the benchmark's namespace, and the finalizers that would hold it with no
    operator running (kopf's, on objects with timers), so the cluster stays usable."""
    from kubernetes import client as k8s  # noqa: PLC0415

    print(f"deleting namespace {namespace}")
    k8s.CoreV1Api(api).delete_namespace(namespace)
    custom = k8s.CustomObjectsApi(api)

    def release(plural: str, name: str) -> None:
        with contextlib.suppress(Exception):  # gone meanwhile
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, name, {"metadata": {"finalizers": None}}
            )

    for plural in PLURALS:
        held = list_names(custom, namespace, plural, finalized_only=True)
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda name, p=plural: release(p, name), held))
        print(f"  released {len(held)} {plural}")


def report(name: str, quick: bool, data: dict[str, Any]) -> None:
    objects = data["modelversions"] + data["modelstages"]
    restart = data["restart"]
    share = data["objects_changed"] / objects
    checks = {
        "re-check time": (
            restart["idle_s"] <= TARGET_SECONDS,
            f"{restart['idle_s']:.1f} s",
            "<= 30 s",
        ),
        "objects written": (
            share <= TARGET_WRITE_SHARE,
            f"{data['objects_changed']} ({share:.2%} of {objects})",
            "<= 1 %",
        ),
        "operator RSS": (
            data["rss_mib"] <= TARGET_RSS_MIB,
            f"{data['rss_mib']:.0f} MiB",
            "<= 250 MiB",
        ),
    }
    print(f"\n{data['modelversions']} ModelVersions, {data['modelstages']} ModelStages\n")
    created = data.get("create_seconds")
    rows = []
    if created is not None:
        rows += [
            ["create ModelVersions (16 threads)", f"{created['modelversions_s']:.1f} s"],
            ["create ModelStages", f"{created['modelstages_s']:.1f} s"],
            ["all Ready after creation", f"{data['first_ready_s']:.0f} s"],
        ]
    else:
        rows += [["objects", f"reused from namespace {data['reused_namespace']}"]]
    rows += [
        ["restart: operator live", f"{restart['live_s']:.1f} s"],
        ["restart: every object reconciled (counter >= N)", f"{restart['all_reconciled_s']:.1f} s"],
        ["restart: last reconciliation (then idle)", f"{restart['idle_s']:.1f} s"],
        [
            "restart: reconciliations (ModelVersion, ModelStage)",
            f"{restart['reconciles_ModelVersion']:.0f}, {restart['reconciles_ModelStage']:.0f}",
        ],
        [
            "restart: objects changed (resourceVersion moved)",
            f"{data['objects_changed']} {data['objects_changed_by_kind']}",
        ],
        ["restart: Events posted in the namespace", str(data["events_posted"])],
        [
            "RSS after the initial sync / after the restart's re-check",
            f"{_mib(data.get('rss_mib_before_restart'))} / {_mib(data['rss_mib'])}",
        ],
        [
            "peak RSS (VmHWM) in the initial sync / in the restart",
            f"{_mib(data.get('peak_rss_mib_before_restart'))} / {_mib(data['peak_rss_mib'])}",
        ],
        [
            "operator CPU: initial sync / restart until idle",
            f"{_seconds(data.get('operator_cpu_s_before_restart'))} / "
            f"{_seconds(restart['operator_cpu_s'])}",
        ],
        ["Ready after restart", str(data["ready_after_restart"])],
    ]
    print(table(["measure", "value"], rows))
    print("\nrequests during the restart window, whole cluster (API server counter deltas;")
    print("they include anything else running on the cluster at the time):")
    print(table(["resource verb (writes)", "count"], data["cluster_writes_by_resource"].items()))
    print(table(["resource verb (reads)", "count"], data["cluster_reads_by_resource"].items()))
    print()
    print(
        table(
            ["target", "measured", "target", "met"],
            [[k, m, t, "yes" if ok else "NO"] for k, (ok, m, t) in checks.items()],
        )
    )
    if data["operator_errors_after_restart"]:
        print("operator errors after restart:", *data["operator_errors_after_restart"], sep="\n")
    results = Results(name, quick)
    results.data = {**data, "met": {k: ok for k, (ok, _, _) in checks.items()}}
    results.write()


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} MiB"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
