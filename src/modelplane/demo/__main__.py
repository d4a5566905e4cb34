"""`python -m modelplane.demo`: the whole story on the local control plane, end to end.

It brings up (or reuses) the local control plane with its S3 store, installs the CRDs, starts
the operator with its admission webhook (unless `--operator running` says one already runs),
and then plays `scenario.Demo` in a fresh namespace. The cluster is left running for you to
explore; `modelplane cluster down` stops it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from modelplane.api import crds
from modelplane.demo.narration import DemoError, Narrator
from modelplane.demo.scenario import ARTIFACT_ROOT, Demo
from modelplane.localcluster.cluster import LocalCluster
from modelplane.localcluster.processes import free_port, wait_until
from modelplane.localcluster.state import S3Credentials
from modelplane.sdk import Client

BUCKETS = ("datasets", "mlruns")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelplane.demo", description=__doc__)
    parser.add_argument("--namespace", default="demo", help="namespace (made fresh each run)")
    parser.add_argument("--cluster", default="default", help="local cluster name")
    parser.add_argument(
        "--existing",
        action="store_true",
        help="use the cluster KUBECONFIG names and the S3 store MODELPLANE_S3_ENDPOINT_URL and "
        "AWS_* name, instead of the local control plane",
    )
    parser.add_argument(
        "--operator",
        choices=("start", "running"),
        default="start",
        help="start an operator for the demo, or use one that already runs",
    )
    args = parser.parse_args(argv)
    try:
        target = existing_target() if args.existing else local_target(args.cluster)
        run(target, args.namespace, start_operator=args.operator == "start")
    except DemoError as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return 1
    return 0


@dataclass(frozen=True)
class Target:
    """Where the demo runs: a kubeconfig, a kubectl, an S3 store, a folder for logs."""

    kubeconfig: Path
    kubectl: Path
    s3: S3Credentials
    log_dir: Path


def local_target(name: str) -> Target:
    cluster = LocalCluster(name)
    print("=== 0. The local control plane (built on first use, then cached)")
    cluster.up()
    return Target(cluster.kubeconfig, cluster.kubectl_path(), cluster.s3(), cluster.log_dir)


def existing_target() -> Target:
    kubectl = shutil.which("kubectl")
    missing = [
        name
        for name in (
            "KUBECONFIG",
            "MODELPLANE_S3_ENDPOINT_URL",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        )
        if not os.environ.get(name)
    ]
    if kubectl is None or missing:
        raise DemoError(f"--existing needs kubectl on PATH and these variables: {missing}")
    s3 = S3Credentials(
        os.environ["MODELPLANE_S3_ENDPOINT_URL"],
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    log_dir = Path(tempfile.mkdtemp(prefix="modelplane-demo-"))
    return Target(Path(os.environ["KUBECONFIG"]), Path(kubectl), s3, log_dir)


def run(target: Target, namespace: str, *, start_operator: bool) -> None:
    started = time.monotonic()
    env = {"KUBECONFIG": str(target.kubeconfig), **target.s3.env()}
    os.environ.update(env)  # the SDK and the store read their settings from the environment
    narrator = Narrator(target.kubectl, env)
    install_crds(narrator)
    create_buckets(target.s3)
    with operator(target.log_dir, env, enabled=start_operator):
        api_client = k8s_config.new_client_from_config(config_file=str(target.kubeconfig))
        fresh_namespace(narrator, api_client, namespace)
        delete_run_artifacts(target.s3, namespace)
        sdk = Client(namespace, artifact_root=ARTIFACT_ROOT, api_client=api_client)
        demo = Demo(narrator, namespace, api_client, sdk)
        ranked = demo.train_and_register()
        (best, _), (runner_up, _) = ranked[0], ranked[1]
        narrator.step(
            "Register the best run's model", "the ModelVersion becomes Ready once verified"
        )
        first = demo.register(best, "best of the sweep by val_auc")
        demo.promote_through_stages(first)
        demo.denied_promotion(first)
        narrator.step("Register the runner-up, to ship it next")
        second = demo.register(runner_up, "runner-up of the sweep")
        demo.failed_rollout(first, second)
        demo.finale(first)
    print(f"\nThe demo finished in {time.monotonic() - started:.0f}s.")
    print(f"Explore: export KUBECONFIG={target.kubeconfig}; kubectl get modelplane -n {namespace}")
    print("Stop the cluster: modelplane cluster down")


def install_crds(narrator: Narrator) -> None:
    narrator.step("Install the CRDs", "kubectl get modelplane lists all four kinds")
    narrator.run(
        [str(narrator.kubectl), "apply", "--server-side", "--force-conflicts", "-f", "-"],
        shown=["kubectl", "apply", "--server-side", "-f", "crds/"],
        input_text="\n---\n".join(crds.rendered().values()),
    )


def s3_client(s3: S3Credentials) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.access_key,
        aws_secret_access_key=s3.secret_key,
        region_name="us-east-1",
    )


def create_buckets(s3: S3Credentials) -> None:
    client = s3_client(s3)
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    for bucket in BUCKETS:
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)


def delete_run_artifacts(s3: S3Credentials, namespace: str) -> None:
    """An earlier demo's runs in this namespace are gone; so go their artifacts."""
    client = s3_client(s3)
    bucket = ARTIFACT_ROOT.removeprefix("s3://")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{namespace}/")
    for page in pages:
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys})


@contextmanager
def operator(log_dir: Path, env: dict[str, str], *, enabled: bool) -> Iterator[None]:
    """The operator as a process of its own, with its webhook, for the length of the demo."""
    if not enabled:
        yield
        return
    log_path = log_dir / "demo-operator.log"
    liveness = free_port()
    print(f"=== Starting the operator (log: {log_path})", flush=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own module
            [
                sys.executable,
                "-m",
                "modelplane.operator",
                "--all-namespaces",
                "--metrics-port=0",
                f"--liveness=http://127.0.0.1:{liveness}/healthz",
            ],
            env={**os.environ, **env, "MODELPLANE_WEBHOOK": "local"},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until("the operator's liveness", lambda: _live(liveness), 120)
        yield
    finally:
        process.terminate()  # a clean stop removes its local webhook configurations
        process.wait(timeout=60)


def _live(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
            return True
    except OSError:
        return False


def fresh_namespace(narrator: Narrator, api_client: object, namespace: str) -> None:
    core = k8s.CoreV1Api(api_client)
    try:
        core.delete_namespace(namespace)
        print(f"=== Deleting the namespace {namespace} left by an earlier run", flush=True)
    except k8s.ApiException as error:
        if error.status != 404:
            raise

    def gone() -> bool:
        try:
            core.read_namespace(namespace)
        except k8s.ApiException as error:
            return bool(error.status == 404)
        return False

    wait_until(f"namespace {namespace} to be deleted", gone, 180)
    core.create_namespace({"metadata": {"name": namespace}})
    narrator.say(f"namespace {namespace} is ready")


if __name__ == "__main__":
    sys.exit(main())
