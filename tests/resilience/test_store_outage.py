"""The artifact store down and back: verification waits, resumes, and never lies.

A second MinIO of the test's own (the session's store is shared by every test) serves an
operator of the test's own. With the store stopped, a new ModelVersion stays unverified
(ArtifactVerified Unknown, StoreUnreachable) and a promotion to it is not made; once MinIO is
back on the same port and data directory, the artifact is verified without anyone asking, a
version whose artifact does not match its digest is reported as such (never verified), and
the promotion goes through.
"""

from __future__ import annotations

import secrets
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from resilience_support import (
    MODEL,
    Objects,
    condition,
    digest_of,
    holds_for,
    model_version_manifest,
    ready,
    register_version,
    stage_manifest,
    wait_for,
    wait_live,
)

from modelplane.localcluster.processes import Component, free_port, start, stop

pytestmark = pytest.mark.cluster

OUTAGE = 10.0
"""How long the store stays down while the tests watch that nothing is verified."""
RECOVERY = 60.0
"""The operator retries an outage after 5, 10, 20 s...: verification resumes within this."""


@dataclass
class OwnMinio:
    """A MinIO process that can be stopped and started again on the same port and data."""

    binary: str
    data: Path
    log: Path
    port: int
    user: str
    password: str
    component: Component | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.component = start(
            "minio-resilience",
            [
                self.binary,
                "server",
                str(self.data),
                f"--address=127.0.0.1:{self.port}",
                f"--console-address=127.0.0.1:{free_port()}",
                "--quiet",
            ],
            self.log,
            env={
                "MINIO_ROOT_USER": self.user,
                "MINIO_ROOT_PASSWORD": self.password,
                "MINIO_BROWSER": "off",
                "MINIO_UPDATE": "off",
            },
        )
        wait_for(self._ready, 60, "the second MinIO ready")

    def _ready(self) -> bool:
        try:
            url = f"{self.endpoint}/minio/health/ready"
            with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - http
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.component is not None:
            stop(self.component)
            self.component = None

    def env(self) -> dict[str, str]:
        return {
            "MODELPLANE_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.user,
            "AWS_SECRET_ACCESS_KEY": self.password,
            "AWS_REGION": "us-east-1",
            # One attempt per check, so each retry of the operator is quick to fail.
            "MODELPLANE_S3_MAX_ATTEMPTS": "1",
            "MODELPLANE_S3_CONNECT_TIMEOUT": "2",
        }

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.user,
            aws_secret_access_key=self.password,
            region_name="us-east-1",
        )


@pytest.fixture
def own_minio(cluster: Any, tmp_path: Path) -> Iterator[OwnMinio]:
    state = cluster.local.state() if cluster.local is not None else None
    if state is None:
        raise RuntimeError("the store outage test starts MinIO from the local cluster's binaries")
    minio = OwnMinio(
        binary=state.binaries["minio"],
        data=tmp_path / "minio-data",
        log=tmp_path / "minio.log",
        port=free_port(),
        user="resilience-" + secrets.token_hex(4),
        password=secrets.token_urlsafe(24),
    )
    minio.data.mkdir()
    minio.start()
    yield minio
    minio.stop()


def artifact_verified(obj: dict[str, Any] | None) -> tuple[str, str] | None:
    return condition(obj, "ArtifactVerified")


def never_verified(obj: dict[str, Any] | None) -> bool:
    status = (obj or {}).get("status") or {}
    verified = (status.get("artifact") or {}).get("verified")
    found = artifact_verified(obj)
    return verified is not True and (found is None or found[0] != "True") and not ready(obj)


def test_verification_waits_for_the_store_and_resumes_when_it_is_back(
    own_objects: Objects, make_operator: Any, own_minio: OwnMinio
) -> None:
    client = own_minio.client()
    client.create_bucket(Bucket="models")
    op = make_operator(env=own_minio.env())
    register_version(own_objects, client, "models", 1)
    own_objects.apply(stage_manifest("Production", 1))
    wait_live(own_objects, f"{MODEL}-production", 1)
    good = b"model two" * 1000
    client.put_object(Bucket="models", Key="churn/2/model.bin", Body=good)
    client.put_object(Bucket="models", Key="churn/3/model.bin", Body=b"not what was registered")

    own_minio.stop()
    started = time.monotonic()
    own_objects.apply(
        model_version_manifest(2, "s3://models/churn/2/model.bin", digest_of(good)),
        model_version_manifest(3, "s3://models/churn/3/model.bin", digest_of(b"registered")),
    )
    wait_for(
        lambda: (
            artifact_verified(own_objects.get("modelversions", "churn-v2"))
            == ("Unknown", "StoreUnreachable")
        ),
        30,
        "churn-v2 StoreUnreachable",
    )
    own_objects.patch("modelstages", f"{MODEL}-production", {"spec": {"version": 2}})
    holds_for(
        lambda: (
            never_verified(own_objects.get("modelversions", "churn-v2"))
            and never_verified(own_objects.get("modelversions", "churn-v3"))
            and own_objects.served_version(f"{MODEL}-production") == "1"
        ),
        max(0.0, OUTAGE - (time.monotonic() - started)),
        "nothing verified, v1 served while the store is down",
    )
    assert artifact_verified(own_objects.get("modelversions", "churn-v3")) == (
        "Unknown",
        "StoreUnreachable",
    )

    own_minio.start()
    back = time.monotonic()
    wait_for(
        lambda: (
            artifact_verified(own_objects.get("modelversions", "churn-v2")) == ("True", "Verified")
        ),
        RECOVERY,
        "churn-v2 verified once the store is back",
    )
    resumed = time.monotonic() - back
    mismatch = wait_for(
        lambda: (
            found
            if (found := artifact_verified(own_objects.get("modelversions", "churn-v3")))
            and found[0] != "Unknown"
            else None
        ),
        RECOVERY,
        "churn-v3 checked once the store is back",
    )
    assert mismatch[0] == "False", f"a wrong artifact must not verify: {mismatch}"
    assert never_verified(own_objects.get("modelversions", "churn-v3"))
    wait_live(own_objects, f"{MODEL}-production", 2)
    assert op.alive()
    print(f"\n[timings] store back to churn-v2 verified: {resumed:.1f}s")
