"""Verifying a ModelVersion's artifact against the digest its spec declares.

`verify_artifact` returns a `VerificationResult` only when it has a verdict: the artifact matches
(``verified=True``), or it is definitely wrong: missing, empty, a different size or digest,
unnameable files, or a spec URI/digest that cannot be checked at all. When the store cannot be
asked (unreachable, timing out, throttling, refusing our credentials) it raises
`StoreUnavailable`, so the operator retries with backoff and never reports a verdict it does not
have. ``reason`` values are CamelCase constants fit for a condition's ``reason``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from modelplane.store.artifacts import ArtifactStat, ArtifactStore, DigestResult
from modelplane.store.backends import open_store
from modelplane.store.config import StoreConfig
from modelplane.store.digests import Digest, parse_digest
from modelplane.store.errors import ArtifactNotFound, InvalidDigest, InvalidURI, ManifestError


class VerificationReason(enum.StrEnum):
    """Why an artifact is or is not verified."""

    VERIFIED = "Verified"
    DIGEST_MISMATCH = "DigestMismatch"
    SIZE_MISMATCH = "SizeMismatch"
    NOT_FOUND = "ArtifactNotFound"
    EMPTY_DIRECTORY = "EmptyDirectory"
    INVALID_ARTIFACT = "InvalidArtifact"
    """A directory holding files that cannot go into a manifest (``..``, symlinked dirs)."""
    INVALID_REFERENCE = "InvalidReference"
    """The URI or the expected digest in the spec is malformed or unsupported."""


@dataclass(frozen=True)
class VerificationResult:
    """The verdict on one artifact; ``message`` says what differed, for humans."""

    uri: str
    verified: bool
    reason: VerificationReason
    message: str
    expected_digest: str
    actual_digest: str | None = None
    """The digest computed with the expected digest's algorithm, when the artifact was read."""
    size: int | None = None
    """Bytes of the file, or of all files of a directory artifact, when it exists."""
    is_directory: bool = False
    files: int = 0


def verify_artifact(
    uri: str,
    expected_digest: str,
    *,
    expected_size: int | None = None,
    store: ArtifactStore | None = None,
    config: StoreConfig | None = None,
) -> VerificationResult:
    """Check that the artifact at ``uri`` exists and has ``expected_digest`` (and size).

    ``expected_digest`` is ``sha256:<hex>``, ``sha512:<hex>`` or ``md5:<hex>``; a directory
    artifact is compared by its manifest digest (see `modelplane.store.manifests`). ``store``
    defaults to `open_store(uri, config)`.

    Raises `StoreUnavailable` (including `StoreAccessDenied`) when no verdict could be reached.
    """

    def verdict(
        reason: VerificationReason,
        message: str,
        stat: ArtifactStat | None = None,
        result: DigestResult | None = None,
    ) -> VerificationResult:
        files = stat.files if stat is not None else 0
        if result is not None and result.manifest is not None:
            files = len(result.manifest.entries)
        return VerificationResult(
            uri=uri,
            verified=reason is VerificationReason.VERIFIED,
            reason=reason,
            message=message,
            expected_digest=expected_digest,
            actual_digest=str(result.digest) if result is not None else None,
            size=result.size if result is not None else stat.size if stat and stat.exists else None,
            is_directory=stat is not None and stat.is_directory,
            files=files,
        )

    try:
        expected = parse_digest(expected_digest)
        if store is None:
            store = open_store(uri, config)
        stat = store.stat(uri)
        rejection = _reject_by_stat(uri, stat, expected_size)
        if rejection is not None:
            return verdict(*rejection, stat)
        result = store.digest(uri, expected.algorithm)
    except (InvalidDigest, InvalidURI) as error:
        return verdict(VerificationReason.INVALID_REFERENCE, str(error))
    except ArtifactNotFound as error:
        # Deleted between stat and digest: still a definite answer.
        return verdict(VerificationReason.NOT_FOUND, str(error))
    except ManifestError as error:
        return verdict(VerificationReason.INVALID_ARTIFACT, f"{uri}: {error}")
    return verdict(*_compare(uri, expected, result), stat, result)


def _reject_by_stat(
    uri: str, stat: ArtifactStat, expected_size: int | None
) -> tuple[VerificationReason, str] | None:
    """A verdict from the stat alone: missing, empty, or of the wrong size."""
    if not stat.exists:
        message = f"artifact not found at {uri}"
        if stat.detail.startswith(message):
            message = stat.detail
        elif stat.detail:
            message = f"{message}: {stat.detail}"
        return VerificationReason.NOT_FOUND, message
    if stat.is_directory and stat.files == 0:
        return VerificationReason.EMPTY_DIRECTORY, f"artifact directory {uri} holds no files"
    # Checked before hashing: no need to stream gigabytes to learn the size is wrong.
    if expected_size is not None and stat.size != expected_size:
        return (
            VerificationReason.SIZE_MISMATCH,
            f"size mismatch at {uri}: expected {expected_size} bytes, found {stat.size}",
        )
    return None


def _compare(uri: str, expected: Digest, result: DigestResult) -> tuple[VerificationReason, str]:
    if result.digest != expected:
        kind = "directory manifest digest" if result.is_directory else "digest"
        return (
            VerificationReason.DIGEST_MISMATCH,
            f"{kind} mismatch at {uri}: expected {expected} got {result.digest}",
        )
    files = f"{len(result.manifest.entries)} files, " if result.manifest is not None else ""
    return (
        VerificationReason.VERIFIED,
        f"artifact {uri} verified: {result.digest} ({files}{result.size} bytes)",
    )
