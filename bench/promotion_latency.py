"""Promotion latency: from the patch of a ModelStage's spec.version to (a) the serving
Deployment's pod template carrying the new MODEL_VERSION and (b) status.liveVersion naming it
(the rollout complete, `RolledOut`).

Setup: one model with two verified ModelVersions, STAGES ModelStages (no gates; one replica
each; the admission webhooks on, as in a real install), all live at version 1. Then promotions
are issued on a fixed schedule, at 1 and at 20 per second, round-robin over the stages, each
stage toggling between versions 1 and 2; each patch is sent from a small thread pool so a slow
answer does not delay the schedule.

Timing uses two watches (Deployments and ModelStages of the namespace), whose events are
stamped on arrival: a promotion is done for (a) when the Deployment's MODEL_VERSION changes to
its version, for (b) when status.liveVersion changes to it. A promotion overtaken by the next
promotion of the same stage before it was seen is *superseded*: its latency is counted as
infinite (it exceeded the stage's period), so it can only make the percentiles worse.
Target: p99 <= 0.5 s to the Deployment at 20 changes/s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import (
    CLUSTER_NAME,
    DISTRIBUTION_HEADERS,
    Distribution,
    Operator,
    Results,
    api_client,
    arguments,
    bench_cluster,
    distribution_row,
    finish,
    small_artifact,
    table,
)

GROUP, VERSION = "modelplane.io", "v1alpha1"
MODEL = "bench"
STAGES = 20
BUCKET = "bench-promotion"
TARGET_S = 0.5
SETTLE_TIMEOUT = 180.0
TEMPLATE = {
    "metadata": {"labels": {"app": "bench-server"}},
    "spec": {"containers": [{"name": "server", "image": "registry.example.com/bench:1.0"}]},
}


@dataclass
class Promotion:
    stage: str
    version: int
    sent: float
    patched: float | None = None
    generation: int | None = None
    """metadata.generation the patch produced: the operator has acted on this promotion once
    status.observedGeneration reaches it."""
    deployed: float | None = None
    live: float | None = None
    superseded: bool = False


@dataclass
class Tracker:
    """Matches watch events to the promotion pending for each stage."""

    pending: dict[str, Promotion] = field(default_factory=dict)
    done: list[Promotion] = field(default_factory=list)
    served: dict[str, int | None] = field(default_factory=dict)
    live: dict[str, int | None] = field(default_factory=dict)
    # The last status seen per stage: (liveVersion, observedGeneration, arrival time).
    statuses: dict[str, tuple[int | None, int, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, promotion: Promotion) -> None:
        with self.lock:
            previous = self.pending.get(promotion.stage)
            if previous is not None and (previous.deployed is None or previous.live is None):
                previous.superseded = True
            self.pending[promotion.stage] = promotion
            self.done.append(promotion)

    def deployment(self, stage: str, version: int | None, at: float) -> None:
        with self.lock:
            if self.served.get(stage) == version:
                return
            self.served[stage] = version
            promotion = self.pending.get(stage)
            if promotion and promotion.version == version and promotion.deployed is None:
                promotion.deployed = at

    def status(self, stage: str, version: int | None, observed: int, at: float) -> None:
        """A ModelStage status event. A promotion is live once the status names its version
        as live at a generation at least the one its patch produced: a promotion back to the
        version still live (its predecessor never went live) counts too."""
        with self.lock:
            self.live[stage] = version
            self.statuses[stage] = (version, observed, at)
            promotion = self.pending.get(stage)
            if promotion is not None:
                self._check_live(promotion)

    def answered(self, promotion: Promotion, generation: int, at: float) -> None:
        """The patch was answered; its status event may have arrived before the answer."""
        with self.lock:
            promotion.patched = at
            promotion.generation = generation
            if self.pending.get(promotion.stage) is promotion:
                self._check_live(promotion)

    def _check_live(self, promotion: Promotion) -> None:
        seen = self.statuses.get(promotion.stage)
        if promotion.live is not None or promotion.generation is None or seen is None:
            return
        version, observed, at = seen
        if version == promotion.version and observed >= promotion.generation:
            promotion.live = at


class Watcher(threading.Thread):
    """A watch of one list function, calling `on_event(object, arrival time)` per event."""

    def __init__(
        self, list_fn: Callable[..., Any], on_event: Callable[[dict[str, Any], float], None]
    ) -> None:
        super().__init__(daemon=True)
        self.list_fn = list_fn
        self.on_event = on_event
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        from kubernetes import watch as k8s_watch  # noqa: PLC0415

        while not self.stop.is_set():
            listed = self.list_fn(_preload_content=False)
            body = json.loads(listed.data)
            for item in body.get("items", []):
                self.on_event(item, time.perf_counter())
            self.ready.set()
            w = k8s_watch.Watch()
            try:
                for event in w.stream(
                    self.list_fn,
                    resource_version=body["metadata"]["resourceVersion"],
                    timeout_seconds=300,
                    deserialize=False,
                ):
                    at = time.perf_counter()
                    if self.stop.is_set():
                        break
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.on_event(event["object"], at)
            except Exception as error:  # noqa: BLE001 - a watch that ends is restarted
                self.errors.append(repr(error))
                time.sleep(1)
            finally:
                w.stop()


def model_version_env(deployment: dict[str, Any]) -> int | None:
    containers = deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
    for item in (containers or [{}])[0].get("env") or []:
        if item.get("name") == "MODEL_VERSION":
            return int(item["value"])
    return None


# -- setup ---------------------------------------------------------------------------------


def register_versions(cluster: Any, custom: Any, namespace: str) -> None:
    """Two ModelVersions of one small S3 artifact, waited on until Ready (verified)."""
    uri, digest = small_artifact(cluster, BUCKET, b"bench model\n" * 100)
    for version in (1, 2):
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "modelversions",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ModelVersion",
                "metadata": {"name": f"{MODEL}-v{version}"},
                "spec": {
                    "model": MODEL,
                    "version": version,
                    "artifact": {"uri": uri, "digest": digest},
                },
            },
        )
    for name in (f"{MODEL}-v1", f"{MODEL}-v2"):

        def version_ready(name: str = name) -> bool:
            return ready(
                custom.get_namespaced_custom_object(
                    GROUP, VERSION, namespace, "modelversions", name
                )
            )

        wait(version_ready, f"{name} Ready")


def ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def wait(check: Callable[[], bool], what: str, timeout: float = SETTLE_TIMEOUT) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def stage_names(count: int) -> list[str]:
    return [f"s{index:02d}" for index in range(count)]


def create_stages(custom: Any, namespace: str, stages: list[str]) -> None:
    for stage in stages:
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "modelstages",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ModelStage",
                "metadata": {"name": f"{MODEL}-{stage}"},
                "spec": {
                    "model": MODEL,
                    "stage": stage,
                    "version": 1,
                    "serving": {
                        "replicas": 1,
                        "progressDeadlineSeconds": 120,
                        "rollback": "manual",
                        "template": TEMPLATE,
                    },
                },
            },
        )


# -- the measurement -----------------------------------------------------------------------


def run_schedule(
    custom: Any, namespace: str, tracker: Tracker, stages: list[str], *, rate: float, count: int
) -> float:
    """Issue `count` promotions at `rate` per second; returns the achieved rate."""
    current = {stage: tracker.live.get(f"{MODEL}-{stage}") or 1 for stage in stages}

    def promote(promotion: Promotion) -> None:
        answer = custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            "modelstages",
            promotion.stage,
            {"spec": {"version": promotion.version}},
        )
        tracker.answered(promotion, answer["metadata"]["generation"], time.perf_counter())

    start = time.perf_counter() + 0.5
    answers = []
    with ThreadPoolExecutor(max_workers=8) as pool:
        for index in range(count):
            stage = stages[index % len(stages)]
            current[stage] = 3 - current[stage]
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            promotion = Promotion(f"{MODEL}-{stage}", current[stage], time.perf_counter())
            tracker.begin(promotion)
            answers.append(pool.submit(promote, promotion))
        issued = time.perf_counter() - start
    # A refused patch is a failed run, not a slow promotion.
    for answer in answers:
        answer.result()
    return count / issued if issued > 0 else math.inf


def settle(tracker: Tracker, promotions: list[Promotion], timeout: float = SETTLE_TIMEOUT) -> None:
    """Wait until every promotion is seen live or superseded."""

    def settled() -> bool:
        with tracker.lock:
            return all(p.superseded or p.live is not None for p in promotions)

    with contextlib.suppress(TimeoutError):
        wait(settled, "the promotions to settle", timeout)


def latencies(promotions: list[Promotion], what: str) -> list[float]:
    values = []
    for promotion in promotions:
        at = getattr(promotion, what)
        values.append(at - promotion.sent if at is not None else math.inf)
    return values


def summarize(
    name: str, rate: float, achieved: float, promotions: list[Promotion]
) -> dict[str, Any]:
    patched = [p.patched - p.sent for p in promotions if p.patched is not None]
    return {
        "phase": name,
        "rate_requested": rate,
        "rate_achieved": achieved,
        "promotions": len(promotions),
        "superseded": sum(p.superseded for p in promotions),
        "not_deployed": sum(p.deployed is None for p in promotions),
        "not_live": sum(p.live is None for p in promotions),
        "patch_roundtrip_s": Distribution.of(patched),
        "to_deployment_s": Distribution.of(latencies(promotions, "deployed")),
        "to_live_s": Distribution.of(latencies(promotions, "live")),
    }


def main() -> None:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--no-webhook",
            action="store_true",
            help="run the operator without its admission webhooks (the GitOps path); "
            "results go to promotion_latency_no_webhook.json",
        )
        parser.add_argument(
            "--cluster",
            default=CLUSTER_NAME,
            help=f"the local control plane to run on (default {CLUSTER_NAME!r}, shared with "
            "the other benchmarks; another name gives this one a control plane of its own)",
        )

    args = arguments(__doc__, options)
    from kubernetes import client as k8s  # noqa: PLC0415

    count = 40 if args.quick else 200
    cluster = bench_cluster(args.cluster)
    api = api_client(cluster)
    custom = k8s.CustomObjectsApi(api)
    apps = k8s.AppsV1Api(api)
    namespace = f"bench-promotion-{secrets.token_hex(3)}"
    k8s.CoreV1Api(api).create_namespace({"metadata": {"name": namespace}})
    log = Path(tempfile.gettempdir()) / f"{namespace}-operator.log"
    operator = Operator(cluster, log, webhook=not args.no_webhook, namespace=namespace)
    operator.start()
    print(f"operator pid {operator.pid}, log {log}")
    tracker = Tracker()
    stages = stage_names(STAGES)
    watchers = [
        Watcher(
            lambda **kw: apps.list_namespaced_deployment(namespace, **kw),
            lambda obj, at: tracker.deployment(obj["metadata"]["name"], model_version_env(obj), at),
        ),
        Watcher(
            lambda **kw: custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, "modelstages", **kw
            ),
            lambda obj, at: tracker.status(
                obj["metadata"]["name"],
                (obj.get("status") or {}).get("liveVersion"),
                (obj.get("status") or {}).get("observedGeneration") or 0,
                at,
            ),
        ),
    ]
    try:
        register_versions(cluster, custom, namespace)
        for watcher in watchers:
            watcher.start()
            watcher.ready.wait(30)
        create_stages(custom, namespace, stages)
        took = wait(
            lambda: all(tracker.live.get(f"{MODEL}-{s}") == 1 for s in stages),
            "every stage live at version 1",
        )
        print(f"{STAGES} stages live at version 1 after {took:.1f} s")
        phases = []
        for rate in (1.0, 20.0):
            before = len(tracker.done)
            cpu = operator.cpu_seconds()
            achieved = run_schedule(custom, namespace, tracker, stages, rate=rate, count=count)
            promotions = tracker.done[before:]
            settle(tracker, promotions)
            phase = summarize(f"{rate:g}/s", rate, achieved, promotions)
            # Load stretches wall time far more than CPU time: the work per promotion.
            phase["operator_cpu_ms_per_promotion"] = (
                (operator.cpu_seconds() - cpu) * 1000 / len(promotions) if promotions else None
            )
            phases.append(phase)
            print(f"{rate:g}/s done: achieved {achieved:.1f}/s")
        rss = operator.rss_mib()
    finally:
        for watcher in watchers:
            watcher.stop.set()
        # Deleted while the operator runs, so it releases its finalizers: a namespace deleted
        # after it stopped would stay Terminating and keep the cluster's controllers busy.
        remove_namespace(k8s.CoreV1Api(api), namespace)
        operator.stop()
    report(
        phases,
        count,
        rss,
        args,
        [e for w in watchers for e in w.errors],
    )
    finish(cluster, args)


def remove_namespace(core: Any, namespace: str, timeout: float = SETTLE_TIMEOUT) -> None:
    """Delete the namespace and wait until it is gone; say so when it is not."""
    from kubernetes import client as k8s  # noqa: PLC0415

    core.delete_namespace(namespace)

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except k8s.ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    try:
        wait(gone, f"namespace {namespace} deleted", timeout)
    except TimeoutError as error:
        print(f"warning: {error}", file=sys.stderr)


def report(
    phases: list[dict[str, Any]], count: int, rss: float, args: Any, errors: list[str]
) -> None:
    headers = ["rate", "to", *(f"{h} s" if h != "n" else h for h in DISTRIBUTION_HEADERS)]
    rows = []
    for phase in phases:
        for key, label in (
            ("patch_roundtrip_s", "patch answered"),
            ("to_deployment_s", "Deployment template"),
            ("to_live_s", "liveVersion (RolledOut)"),
        ):
            rows.append([phase["phase"], label, *distribution_row(phase[key])])
    print(f"\n{count} promotions per rate over {STAGES} ModelStages (seconds from the patch)\n")
    print(table(headers, rows))
    for phase in phases:
        print(
            f"{phase['phase']}: achieved {phase['rate_achieved']:.2f}/s, "
            f"superseded {phase['superseded']}, never deployed {phase['not_deployed']}, "
            f"never live {phase['not_live']}, operator CPU "
            f"{phase['operator_cpu_ms_per_promotion']:.1f} ms per promotion"
        )
    fast = phases[-1]["to_deployment_s"]
    met = fast.p99 <= TARGET_S
    print(
        f"\np99 to Deployment at 20/s: {fast.p99:.3f} s; target <= 0.5 s: "
        f"{'met' if met else 'NOT met'}; operator RSS {rss:.0f} MiB"
    )
    if errors:
        print(f"watch restarts: {errors}")
    name = "promotion_latency_no_webhook" if args.no_webhook else "promotion_latency"
    results = Results(name, args.quick)
    results.data = {
        "stages": STAGES,
        "admission_webhooks": not args.no_webhook,
        "promotions_per_rate": count,
        "phases": phases,
        "operator_rss_mib": rss,
        "watch_errors": errors,
        "target_s": TARGET_S,
        "met": met,
    }
    results.write()


if __name__ == "__main__":
    main()
