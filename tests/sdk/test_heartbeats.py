"""A training process that dies without a word ends Failed through the operator's heartbeat
timeout, while a live one, whose flusher keeps heartbeating, stays Running past it.

The session operator runs with the default 300 s timeout, which other tests rely on (runs they
start once must stay Running), so this test starts an operator of its own with a 10 s timeout,
watching only an `unmanaged-` namespace that the session operator leaves alone, and with
admission webhooks off so it touches nothing cluster-wide.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.waiting import holds_for, wait_for

from modelplane.api import Condition
from modelplane.core.runs import recheck_interval
from modelplane.localcluster.processes import free_port
from modelplane.sdk import Client, NotFoundError

pytestmark = pytest.mark.cluster

HEARTBEAT_TIMEOUT = timedelta(seconds=10)

TRAIN = """\
import sys, time
import modelplane

modelplane.set_experiment("heartbeats")
modelplane.start_run(run_name=sys.argv[1])
step = 0
while True:  # trains until killed
    modelplane.log_metric("loss", 1.0 / (step + 1), step=step)
    step += 1
    time.sleep(0.05)
"""


@pytest.fixture
def namespace(unmanaged_namespace: str) -> str:
    """This module's runs live where only its own operator looks."""
    return unmanaged_namespace


@pytest.fixture
def short_timeout_operator(
    cluster: Any, crds: None, namespace: str, s3: Any, tmp_path: Path
) -> Iterator[Path]:
    """The operator with a 10 s heartbeat timeout, for `namespace` only; yields its log."""
    log_path = tmp_path / "operator.log"
    port = free_port()
    env = {
        **os.environ,
        **s3.env(),
        "KUBECONFIG": str(cluster.kubeconfig),
        "MODELPLANE_RUN_HEARTBEAT_TIMEOUT": str(HEARTBEAT_TIMEOUT.total_seconds()),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "modelplane.operator",
                f"--namespace={namespace}",
                "--webhook=off",
                "--metrics-port=0",
                f"--liveness=http://127.0.0.1:{port}/healthz",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for(lambda: live(port, process, log_path), timeout=60, message="operator live")
        yield log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def live(port: int, process: subprocess.Popen[bytes], log_path: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the operator exited at start:\n{log_path.read_text()[-3000:]}")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_a_sigkilled_training_process_ends_failed_by_heartbeat_timeout(
    short_timeout_operator: Path, client: Client, child_env: dict[str, str], tmp_path: Path
) -> None:
    recheck = recheck_interval(HEARTBEAT_TIMEOUT)
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    process = subprocess.Popen(
        [sys.executable, str(script), "doomed"],
        env=child_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def phase() -> str | None:
        status = client.get_run("doomed").status
        return status.phase if status is not None else None

    def ended_by_operator() -> Condition | None:
        status = client.get_run("doomed").status
        if status is None or status.phase != "Failed":
            return None
        return next((c for c in status.conditions or () if c.type == "Ready"), None)

    try:
        wait_for(
            lambda: phase() == "Running", timeout=60, message="run Running", ignore=(NotFoundError,)
        )
        # Alive and heartbeating for longer than the timeout: still Running.
        holds_for(
            lambda: process.poll() is None and phase() == "Running",
            duration=HEARTBEAT_TIMEOUT.total_seconds() + 2 * recheck,
            message="a heartbeating run stays Running",
        )
        killed_at = time.monotonic()
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        ready = wait_for(
            ended_by_operator,
            timeout=HEARTBEAT_TIMEOUT.total_seconds() + 2 * recheck + 30,
            message="run Failed after its heartbeat stopped",
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Not before the timeout: the operator waited for the heartbeat to be really lost.
    assert time.monotonic() - killed_at >= HEARTBEAT_TIMEOUT.total_seconds() - 2 * recheck
    assert ready.reason == "HeartbeatLost"
    status = client.get_run("doomed").status
    assert status is not None
    assert status.end_time is not None
    assert status.metrics is not None
    assert status.metrics["loss"].count > 0
