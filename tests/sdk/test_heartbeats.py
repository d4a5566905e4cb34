"""A training process that dies without a word ends Failed through the operator's heartbeat
timeout, while a live one, whose flusher keeps heartbeating, stays Running past it.

Needs the session operator to run with MODELPLANE_RUN_HEARTBEAT_TIMEOUT of at most 15 s
(e.g. 10): with the 300 s default this test would take over five minutes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from waiting import holds_for, wait_for

from modelplane.core.runs import heartbeat_timeout, recheck_interval
from modelplane.sdk import Client

pytestmark = pytest.mark.cluster

MAX_TIMEOUT = 15.0

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


def test_a_sigkilled_training_process_ends_failed_by_heartbeat_timeout(
    operator: Any, client: Client, child_env: dict[str, str], tmp_path: Path
) -> None:
    timeout = heartbeat_timeout({**os.environ, **operator.env})
    assert timeout.total_seconds() <= MAX_TIMEOUT, (
        f"the session operator runs with a heartbeat timeout of {timeout.total_seconds():g}s; "
        "the operator fixture must pass MODELPLANE_RUN_HEARTBEAT_TIMEOUT=10"
    )
    recheck = recheck_interval(timeout)
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

    try:
        wait_for(
            lambda: phase() == "Running", timeout=60, message="run Running", ignore=(Exception,)
        )
        # Alive and heartbeating for longer than the timeout: still Running.
        holds_for(
            lambda: process.poll() is None and phase() == "Running",
            duration=timeout.total_seconds() + 2 * recheck,
            message="a heartbeating run stays Running",
        )
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

        def lost() -> Any:
            run = client.get_run("doomed")
            status = run.status
            if status is None or status.phase != "Failed":
                return None
            return next((c for c in status.conditions or () if c.type == "Ready"), None)

        ready = wait_for(
            lost,
            timeout=timeout.total_seconds() + 2 * recheck + 30,
            message="run Failed after its heartbeat stopped",
        )
        assert ready.reason == "HeartbeatLost"
        status = client.get_run("doomed").status
        assert status is not None
        assert status.end_time is not None
        assert status.metrics is not None
        assert status.metrics["loss"].count > 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
