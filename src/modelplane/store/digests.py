"""Content digests: the ``<algorithm>:<hex>`` strings in specs, and streamed hashing.

A digest is written ``sha256:<64 hex>`` (the default and the one the operator reports),
``sha512:<128 hex>``, ``sha1:<40 hex>`` or ``md5:<32 hex>`` (common for data sets whose producers
publish MD5s); the same set the CRDs accept.
Hex is compared in lower case. Hashing reads a stream in fixed-size chunks through an injected
``read`` or ``readinto`` callable, so this module holds no I/O of its own and no object is ever
held whole.
"""

from __future__ import annotations

import hashlib
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from modelplane.store.errors import InvalidDigest

# Hex length of each supported algorithm's digest.
ALGORITHMS: dict[str, int] = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
DEFAULT_ALGORITHM = "sha256"
# 8 MiB: large enough that per-call overhead (a Python loop turn, a socket read) is negligible
# next to hashing, small enough that memory stays flat for multi-gigabyte models.
DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
# Buffers an overlapped hash splits its chunk into: one being read, one being hashed, and two
# that let either side run ahead for a moment.
OVERLAP_PARTS = 4

_DIGEST = re.compile(r"^([a-z0-9]+):([0-9a-fA-F]+)$")


class Hasher(Protocol):
    """The part of a `hashlib` hash object used here."""

    def update(self, data: bytes | bytearray | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


@dataclass(frozen=True)
class Digest:
    """A content digest such as ``sha256:9f86d0...``; ``hex`` is lower case."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"


def check_algorithm(algorithm: str) -> str:
    """Return ``algorithm`` if supported, else raise `InvalidDigest` naming the choices."""
    if algorithm not in ALGORITHMS:
        choices = ", ".join(sorted(ALGORITHMS))
        raise InvalidDigest(f"unsupported digest algorithm {algorithm!r}; use one of {choices}")
    return algorithm


def parse_digest(text: str) -> Digest:
    """Parse ``<algorithm>:<hex>``, checking the algorithm and the hex length."""
    match = _DIGEST.match(text.strip())
    if match is None:
        raise InvalidDigest(f"digest {text!r} is not of the form sha256:<hex>")
    algorithm, hex_ = check_algorithm(match.group(1)), match.group(2).lower()
    if len(hex_) != ALGORITHMS[algorithm]:
        raise InvalidDigest(
            f"digest {text!r} has {len(hex_)} hex digits; {algorithm} has {ALGORITHMS[algorithm]}"
        )
    return Digest(algorithm, hex_)


def new_hasher(algorithm: str) -> Hasher:
    """A fresh hash object; MD5 is marked not-for-security so FIPS-mode hosts allow it."""
    return hashlib.new(check_algorithm(algorithm), usedforsecurity=algorithm not in ("md5", "sha1"))


def digest_bytes(data: bytes, algorithm: str = DEFAULT_ALGORITHM) -> Digest:
    """The digest of an in-memory byte string."""
    hasher = new_hasher(algorithm)
    hasher.update(data)
    return Digest(algorithm, hasher.hexdigest())


@dataclass(frozen=True)
class StreamedHash:
    """The digest of one stream, with the bytes and the chunked reads it took."""

    digest: Digest
    bytes_read: int
    reads: int


def hash_stream(
    read: Callable[[int], bytes],
    algorithm: str = DEFAULT_ALGORITHM,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> StreamedHash:
    """Hash everything ``read(chunk_size)`` returns until it returns ``b""``.

    At most one chunk is alive at a time, so memory stays flat whatever the stream's length.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    hasher = new_hasher(algorithm)
    total = reads = 0
    while True:
        chunk = read(chunk_size)
        reads += 1
        if not chunk:
            break
        hasher.update(chunk)
        total += len(chunk)
        # Drop the reference before the next read so two chunks are never alive together.
        del chunk
    return StreamedHash(Digest(algorithm, hasher.hexdigest()), total, reads)


def hash_into(
    readinto: Callable[[memoryview], int],
    algorithm: str = DEFAULT_ALGORITHM,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    overlap: bool = False,
) -> StreamedHash:
    """Hash everything ``readinto(buffer)`` writes into reused buffers until it returns 0.

    The bytes land where they are hashed: no chunk is allocated per read and none is copied
    again, which `hash_stream` over a ``read`` that returns new bytes cannot avoid. With
    ``overlap``, a second thread hashes while the next bytes are read (see `_read_overlapped`);
    either way ``chunk_size`` bytes of buffer are alive.
    """
    if chunk_size <= 0:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    hasher = new_hasher(algorithm)
    if overlap and chunk_size >= OVERLAP_PARTS:
        total, reads = _read_overlapped(readinto, hasher, chunk_size // OVERLAP_PARTS)
    else:
        total, reads = _read_in_turn(readinto, hasher, chunk_size)
    return StreamedHash(Digest(algorithm, hasher.hexdigest()), total, reads)


def _read_in_turn(
    readinto: Callable[[memoryview], int], hasher: Hasher, chunk_size: int
) -> tuple[int, int]:
    buffer = memoryview(bytearray(chunk_size))
    total = reads = 0
    while True:
        count = readinto(buffer)
        reads += 1
        if not count:
            return total, reads
        hasher.update(buffer[:count])
        total += count


def _read_overlapped(
    readinto: Callable[[memoryview], int], hasher: Hasher, part_size: int
) -> tuple[int, int]:
    """Read into one of `OVERLAP_PARTS` buffers while a second thread hashes the filled ones.

    hashlib releases the GIL while it hashes more than 2 KiB and a socket read releases it while
    it waits or copies, so the two run on two cores. On a store served from the same machine
    (MinIO next to the operator) this lets the hash use the core the store leaves idle.
    """
    free: queue.SimpleQueue[memoryview] = queue.SimpleQueue()
    filled: queue.SimpleQueue[tuple[memoryview, int] | None] = queue.SimpleQueue()
    for _ in range(OVERLAP_PARTS):
        free.put(memoryview(bytearray(part_size)))

    def hash_parts() -> None:
        while (part := filled.get()) is not None:
            buffer, count = part
            hasher.update(buffer[:count])
            free.put(buffer)

    worker = threading.Thread(target=hash_parts, name="modelplane-hash", daemon=True)
    worker.start()
    total = reads = 0
    try:
        while True:
            buffer = free.get()
            count = readinto(buffer)
            reads += 1
            if not count:
                return total, reads
            filled.put((buffer, count))
            total += count
    finally:
        # Also on a failed read: the worker hashes what it has, then ends.
        filled.put(None)
        worker.join()
