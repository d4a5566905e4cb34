"""The README's demo runs to completion against the session's cluster and operator."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.cluster


def test_demo_runs_end_to_end(cluster: Any, operator: Any, s3: Any) -> None:
    """Trains, registers, promotes through the gates, is denied, rolls back, shows lineage."""
    namespace = f"demo-{secrets.token_hex(3)}"
    target = ["--existing"] if cluster.local is None else ["--cluster", cluster.local.name]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "modelplane.demo",
            "--operator",
            "running",
            "--namespace",
            namespace,
            *target,
        ],
        env={**os.environ, **s3.env(), "KUBECONFIG": str(cluster.kubeconfig)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "admission webhook" in output
    assert "denied the request: gate test_auc >= 0.97 failed: observed 0.6" in output
    assert "RolledBack" in output
    assert "the Deployment serves MODEL_VERSION=1 again" in output
    assert "cancer-classifier v1 (ModelVersion cancer-classifier-v1)" in output
    assert "The demo finished in" in output
