"""Asking the artifact store for a verdict on a ModelVersion's artifact, counted in the metrics.

`check_artifact` turns the store's answer into an `ArtifactCheck` (a verdict on the artifact) or a
`StoreOutage` (no verdict: the store could not be asked). The ModelVersion reconciler
(`modelplane.operator.versionreconciling`) decides when a check is due and what it means for status.
`file://` artifacts are read only where the install allows it (`ALLOW_FILE_ARTIFACTS_ENV`).
"""

from __future__ import annotations

import contextlib
import os
import threading

from modelplane.api import ArtifactRef
from modelplane.core.artifacts import ArtifactCheck, StoreOutage
from modelplane.core.conditions import Reason
from modelplane.metrics import ARTIFACT_BYTES_VERIFIED, ARTIFACT_VERIFICATION_FAILURES
from modelplane.store import StoreConfig, StoreError, StoreUnavailable, open_store, verify_artifact

ALLOW_FILE_ARTIFACTS_ENV = "MODELPLANE_ALLOW_FILE_ARTIFACTS"
FILE_ARTIFACTS_DISABLED = "FileArtifactsDisabled"


def check_artifact(ref: ArtifactRef) -> ArtifactCheck | StoreOutage:
    """Asks the store for a verdict on `ref` and counts the work in the metrics.

    A store that cannot be asked, or that refuses in a way that says nothing about the
    artifact, gives a `StoreOutage`: the artifact is then never reported verified.
    """
    if ref.uri.startswith("file://") and os.environ.get(ALLOW_FILE_ARTIFACTS_ENV) != "1":
        # Reading paths on the operator's own filesystem would let anyone who may create a
        # ModelVersion learn which files exist there, and their sizes.
        ARTIFACT_VERIFICATION_FAILURES.labels(reason=FILE_ARTIFACTS_DISABLED).inc()
        return ArtifactCheck(
            verified=False,
            reason=FILE_ARTIFACTS_DISABLED,
            message=f"file:// artifacts are disabled in this operator: {ref.uri} was not read "
            f"(set {ALLOW_FILE_ARTIFACTS_ENV}=1 on a single-machine install)",
            size=None,
            digest=None,
        )
    config = StoreConfig.from_env()
    _open_once(ref.uri, config)
    try:
        result = verify_artifact(ref.uri, ref.digest, config=config)
    except StoreUnavailable as error:
        ARTIFACT_VERIFICATION_FAILURES.labels(reason=Reason.STORE_UNREACHABLE).inc()
        return StoreOutage(str(error))
    except StoreError as error:
        # A bad store setting or an unexpected answer: no verdict on the artifact either.
        ARTIFACT_VERIFICATION_FAILURES.labels(reason=Reason.STORE_UNREACHABLE).inc()
        return StoreOutage(f"{type(error).__name__}: {error}")
    if result.actual_digest is not None and result.size:
        ARTIFACT_BYTES_VERIFIED.inc(result.size)
    if not result.verified:
        ARTIFACT_VERIFICATION_FAILURES.labels(reason=str(result.reason)).inc()
    return ArtifactCheck(
        verified=result.verified,
        reason=str(result.reason),
        message=result.message,
        size=result.size,
        digest=result.actual_digest,
    )


_opening = threading.Lock()


def _open_once(uri: str, config: StoreConfig) -> None:
    """Opens the store for `uri` one thread at a time, so its client is built once.

    The store keeps one client per configuration, but threads that ask before the first is
    built each build their own: the first looks of a sync (eight at once) built eight boto3
    sessions, each decoding botocore's service data (about 80 MiB together, then garbage). A
    store that cannot be opened is met again by `verify_artifact`, which reports it.
    """
    with _opening, contextlib.suppress(StoreError):
        open_store(uri, config)
