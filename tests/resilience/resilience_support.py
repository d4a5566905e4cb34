"""Shared pieces of the resilience tests: operators of their own, objects, and bounded waits.

The resilience tests crash, pause and starve operators, so most of them run operators of their
own (`OwnOperator`) on an `unmanaged-` namespace that the session operator leaves alone, with
the admission webhook off: nothing else then writes to their objects. `Objects` reads and
writes the four kinds and the serving Deployments of one namespace with the API client.
"""

from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client as k8s
from tests.kubeobjects import NamespacedObjects

from modelplane.api import GROUP, VERSION
from modelplane.localcluster.processes import free_port

T = TypeVar("T")

MODEL = "churn"
TIMEOUT = 60.0
"""Bound on one convergence (verification, a rollout of kwok pods, a reconciliation)."""
TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "churn-server"}},
    "spec": {"containers": [{"name": "server", "image": "registry.example.com/churn:1.0"}]},
}


def wait_for(
    fn: Callable[[], T | None], timeout: float, message: str, *, interval: float = 0.2
) -> T:
    """Call `fn` until it returns a truthy value; fail after `timeout` s with the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {message}: {value!r}")
        time.sleep(interval)


def holds_for(fn: Callable[[], object], duration: float, message: str) -> None:
    """Call `fn` for `duration` s; fail as soon as it returns a falsy value."""
    deadline = time.monotonic() + duration
    while time.monotonic() < deadline:
        value = fn()
        if not value:
            raise AssertionError(f"{message} stopped holding: {value!r}")
        time.sleep(0.2)


class ForkServer:
    """`operator_forkserver.py` as a process: starts operator replicas by fork, in a second."""

    def __init__(self, kubeconfig: Path, timeout: float = 180) -> None:
        script = Path(__file__).with_name("operator_forkserver.py")
        # The kubernetes client reads KUBECONFIG once, when it is imported.
        self.process = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        )
        assert self._line(timeout) == "ready", "the fork server did not start"

    def _line(self, timeout: float) -> str:
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            raise TimeoutError(f"no answer from the fork server in {timeout:g}s")
        return stdout.readline().strip()

    def spawn(self, argv: list[str], env: dict[str, str], log: Path) -> int:
        stdin = self.process.stdin
        assert stdin is not None
        stdin.write(json.dumps({"argv": argv, "env": env, "log": str(log)}) + "\n")
        stdin.flush()
        return int(self._line(30))

    def close(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        self.process.wait(timeout=30)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@dataclass
class OwnOperator:
    """An operator replica on one namespace (webhook off), started by the fork server."""

    server: ForkServer
    kubeconfig: Path
    namespace: str
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    metrics_port: int = 0
    liveness_port: int = 0
    pid: int | None = None

    def start(self, timeout: float = 60) -> None:
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.pid = self.server.spawn(
            [
                f"--namespace={self.namespace}",
                "--webhook=off",
                f"--metrics-port={self.metrics_port}",
                f"--liveness=http://127.0.0.1:{self.liveness_port}/healthz",
                *self.extra_args,
            ],
            {**self.env, "KUBECONFIG": str(self.kubeconfig), "MODELPLANE_WEBHOOK": "off"},
            self.log_path,
        )
        wait_for(self._healthy, timeout, f"operator live ({self.log_path})", interval=0.1)

    def _healthy(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"the operator exited:\n{self.log()[-3000:]}")
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self, *, kill: bool = False) -> None:
        """SIGKILL with kill (a crash), else SIGTERM (a clean shutdown); waits for the exit."""
        if self.pid is None or not self.alive():
            return
        os.kill(self.pid, signal.SIGKILL if kill else signal.SIGTERM)
        pid = self.pid
        wait_for(lambda: not _pid_alive(pid), 30, f"operator {pid} gone", interval=0.05)

    def alive(self) -> bool:
        return self.pid is not None and _pid_alive(self.pid)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def reconciles(self) -> float:
        """The sum of `modelplane_reconciles_total` over kinds and results."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("modelplane_reconciles_total{")
        )


class Objects(NamespacedObjects):
    """The modelplane objects and serving Deployments of one namespace."""


STARTUP = 120.0
"""Bound on the session operator's first reconciliation in a namespace: at times it was seen
to take ~60 s after the operator became live (kopf reconfigured its webhooks, then a minute of
nothing), so the tests that use it wait for it once, explicitly, rather than in each step."""


def wait_serving(objects: Objects) -> float:
    """Creates an Experiment and waits until an operator reconciles it; returns the seconds."""
    started = time.monotonic()
    objects.apply(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Experiment",
            "metadata": {"name": "serving-check"},
            "spec": {"objective": {"metric": "val_auc", "goal": "maximize"}},
        }
    )

    def reconciled() -> bool:
        obj = objects.get("experiments", "serving-check") or {}
        status = obj.get("status") or {}
        return bool(status.get("observedGeneration") == obj["metadata"]["generation"])

    wait_for(reconciled, STARTUP, "the operator serving the namespace")
    return time.monotonic() - started


PLURALS = ("modelstages", "modelversions", "runs", "experiments")


def delete_all(objects: Objects, timeout: float = 60) -> None:
    """Deletes every modelplane object of the namespace and waits until they are gone.

    Called while an operator still runs: objects left with the operator's finalizers would
    hold their namespace in Terminating, and an operator started later has to wade through
    them (the next session's operator was seen to stall a minute at start on such objects).
    """

    def names(plural: str) -> list[str]:
        items = objects.custom.list_namespaced_custom_object(
            GROUP, VERSION, objects.namespace, plural
        )["items"]
        return [item["metadata"]["name"] for item in items]

    for plural in PLURALS:
        for name in names(plural):
            try:
                objects.delete(plural, name)
            except k8s.ApiException as error:
                if error.status != 404:
                    raise
    wait_for(
        lambda: not any(names(plural) for plural in PLURALS),
        timeout,
        f"every modelplane object of {objects.namespace} deleted",
    )


def condition(obj: dict[str, Any] | None, type_: str) -> tuple[str, str] | None:
    for found in ((obj or {}).get("status") or {}).get("conditions") or []:
        if found.get("type") == type_:
            return str(found.get("status")), str(found.get("reason"))
    return None


def ready(obj: dict[str, Any] | None) -> bool:
    found = condition(obj, "Ready")
    return found is not None and found[0] == "True"


def history(obj: dict[str, Any] | None) -> list[tuple[int, int | None, str]]:
    entries = ((obj or {}).get("status") or {}).get("history") or []
    return [(e["version"], e.get("from"), e["result"]) for e in entries]


def register_version(
    objects: Objects, s3_client: Any, bucket: str, version: int, *, wait: bool = True
) -> str:
    """Upload an artifact and register it as a ModelVersion; with wait, until it is Ready."""
    data = f"churn model {version}".encode() * 100
    key = f"{MODEL}/{version}/model.bin"
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    name = f"{MODEL}-v{version}"
    objects.apply(
        model_version_manifest(version, f"s3://{bucket}/{key}", digest_of(data)),
    )
    if wait:
        wait_for(lambda: ready(objects.get("modelversions", name)), TIMEOUT, f"{name} Ready")
    return name


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def model_version_manifest(version: int, uri: str, digest: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": {"name": f"{MODEL}-v{version}"},
        "spec": {"model": MODEL, "version": version, "artifact": {"uri": uri, "digest": digest}},
    }


def stage_manifest(stage: str, version: int, *, replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelStage",
        "metadata": {"name": f"{MODEL}-{stage.lower()}"},
        "spec": {
            "model": MODEL,
            "stage": stage,
            "version": version,
            "serving": {
                "replicas": replicas,
                "progressDeadlineSeconds": 60,
                "rollback": "automatic",
                "template": TEMPLATE,
            },
        },
    }


def live(objects: Objects, name: str, version: int) -> dict[str, Any] | None:
    """The stage when `version` is live, Ready at its generation and served; else None."""
    obj = objects.get("modelstages", name)
    status = (obj or {}).get("status") or {}
    if obj is None or status.get("observedGeneration") != obj["metadata"]["generation"]:
        return None
    if status.get("liveVersion") != version or condition(obj, "Ready") != (
        "True",
        "RolloutComplete",
    ):
        return None
    if objects.served_version(name) != str(version):
        return None
    return obj


def wait_live(
    objects: Objects, name: str, version: int, timeout: float = TIMEOUT
) -> dict[str, Any]:
    return wait_for(lambda: live(objects, name, version), timeout, f"v{version} live in {name}")


def wait_gone(objects: Objects, plural: str, name: str, timeout: float = 30) -> None:
    wait_for(lambda: objects.get(plural, name) is None, timeout, f"{plural}/{name} deleted")


def succeeded_chain_is_consistent(entries: list[tuple[int, int | None, str]]) -> bool:
    """Each Succeeded entry starts from the version the previous one made live: a promotion
    recorded twice, or one that was lost, breaks the chain."""
    live_version: int | None = None
    for version, from_version, result in entries:
        if result != "Succeeded":
            continue
        if from_version != live_version or version == from_version:
            return False
        live_version = version
    return True


def elapsed(started: float) -> float:
    return time.monotonic() - started
