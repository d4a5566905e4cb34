"""The `ArtifactStore` interface every backend implements, and the records it returns.

An artifact is either a single file (an S3 object, a local file) or a directory (every object
under an S3 prefix, every file under a local directory). Operations take artifact URIs as strings
(see `modelplane.store.uris`); a backend rejects URIs of another scheme with `InvalidURI`.
Directory digests follow `modelplane.store.manifests`, so every backend computes the same digest
for the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelplane.store.digests import Digest, StreamedHash
from modelplane.store.manifests import Manifest, ManifestEntry


@dataclass(frozen=True)
class ArtifactStat:
    """What is at a URI: nothing, one file, or a directory of ``files`` files."""

    uri: str
    exists: bool
    is_directory: bool = False
    size: int = 0
    """Bytes of the file, or of all files of the directory."""
    files: int = 0
    detail: str = ""
    """Why a missing artifact is missing, when the store says more than "no such key"."""


@dataclass(frozen=True)
class StoredObject:
    """One file found by `ArtifactStore.list`."""

    uri: str
    path: str
    """Path relative to the listed prefix, ``/``-separated."""
    size: int


@dataclass(frozen=True)
class DigestResult:
    """The digest of an artifact and how it was computed."""

    uri: str
    digest: Digest
    size: int
    """Bytes of content hashed: the file, or all files of a directory."""
    is_directory: bool
    bytes_read: int
    """Bytes streamed from the store (equal to ``size``; kept separate so tests and metrics
    can see the work done)."""
    reads: int
    """Number of chunked reads made; at least ``bytes_read / chunk size``."""
    manifest: Manifest | None = None
    """For a directory, the manifest whose hash is ``digest``."""


class ArtifactStore(Protocol):
    """Reads and writes artifacts in one kind of store (S3, the local filesystem)."""

    def stat(self, uri: str) -> ArtifactStat:
        """Whether ``uri`` exists, and as a file or directory; missing is not an error."""
        ...

    def digest(self, uri: str, algorithm: str = "sha256") -> DigestResult:
        """Stream the artifact through ``algorithm``; directories get their manifest digest.

        Raises `ArtifactNotFound` when nothing is there, `ManifestError` for a directory whose
        file names cannot be put in a manifest, `StoreUnavailable` on transient failures.
        """
        ...

    def put_file(self, source: Path, uri: str) -> ArtifactStat:
        """Upload the local file ``source`` to the file URI ``uri`` (no trailing ``/``)."""
        ...

    def put_bytes(self, data: bytes, uri: str) -> ArtifactStat:
        """Store ``data`` as the file at ``uri`` (no trailing ``/``)."""
        ...

    def put_directory(self, source: Path, uri: str) -> ArtifactStat:
        """Upload every file under the local directory ``source`` below the prefix ``uri``."""
        ...

    def get_to_path(self, uri: str, dest: Path) -> Path:
        """Download the artifact: a file to the path ``dest``, a directory's files under ``dest``.

        Each file is written to a temporary name and renamed into place, so a reader never sees
        a half-written file. Returns ``dest``.
        """
        ...

    def list(self, prefix: str) -> Iterator[StoredObject]:
        """Every file under the directory ``prefix`` (trailing ``/`` optional), recursively."""
        ...


def directory_digest(
    uri: str,
    objects: Iterable[StoredObject],
    hash_object: Callable[[StoredObject], StreamedHash],
    algorithm: str,
) -> DigestResult:
    """Hash each listed file with ``hash_object`` and digest the manifest of the results.

    Shared by the backends so that S3 and local directories agree by construction.
    """
    entries = []
    bytes_read = reads = 0
    for stored in objects:
        streamed = hash_object(stored)
        entries.append(ManifestEntry(stored.path, streamed.bytes_read, streamed.digest.hex))
        bytes_read += streamed.bytes_read
        reads += streamed.reads
    manifest = Manifest.build(entries, algorithm)
    return DigestResult(
        uri=uri,
        digest=manifest.digest,
        size=manifest.size,
        is_directory=True,
        bytes_read=bytes_read,
        reads=reads,
        manifest=manifest,
    )
