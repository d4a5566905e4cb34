"""Digest strings and streamed hashing."""

from __future__ import annotations

import hashlib
import io
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelplane.store import Digest, InvalidDigest, digest_bytes, parse_digest
from modelplane.store.digests import OVERLAP_PARTS, hash_into, hash_stream

SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_parses_and_prints_a_sha256_digest() -> None:
    digest = parse_digest(f"sha256:{SHA256_ABC}")
    assert digest == Digest("sha256", SHA256_ABC)
    assert str(digest) == f"sha256:{SHA256_ABC}"


def test_lower_cases_hex_so_case_never_causes_a_mismatch() -> None:
    assert parse_digest(f"sha256:{SHA256_ABC.upper()}") == Digest("sha256", SHA256_ABC)


@pytest.mark.parametrize(("algorithm", "length"), [("md5", 32), ("sha1", 40), ("sha512", 128)])
def test_accepts_md5_and_sha512(algorithm: str, length: int) -> None:
    assert parse_digest(f"{algorithm}:{'a' * length}").algorithm == algorithm


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (SHA256_ABC, "not of the form"),
        ("sha256:", "not of the form"),
        ("sha256:xyz", "not of the form"),
        (f"sha256:{SHA256_ABC[:-1]}", "63 hex digits; sha256 has 64"),
        ("blake2b:" + "a" * 40, "unsupported digest algorithm 'blake2b'"),
        (f"SHA256:{SHA256_ABC}", "not of the form"),
    ],
)
def test_rejects_malformed_digests(text: str, match: str) -> None:
    with pytest.raises(InvalidDigest, match=match):
        parse_digest(text)


def test_digest_bytes_matches_hashlib() -> None:
    assert digest_bytes(b"abc") == Digest("sha256", SHA256_ABC)
    assert digest_bytes(b"abc", "md5").hex == hashlib.md5(b"abc", usedforsecurity=False).hexdigest()


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700))
def test_hash_stream_equals_hashing_the_whole(data: bytes, chunk_size: int) -> None:
    streamed = hash_stream(io.BytesIO(data).read, "sha512", chunk_size)
    assert streamed.digest == Digest("sha512", hashlib.sha512(data).hexdigest())
    assert streamed.bytes_read == len(data)
    # One read per full or partial chunk, plus the read that returns b"".
    assert streamed.reads == -(-len(data) // chunk_size) + 1


def test_hash_stream_never_asks_for_more_than_a_chunk() -> None:
    asked: list[int] = []
    source = io.BytesIO(b"x" * 10_000)

    def read(size: int) -> bytes:
        asked.append(size)
        return source.read(size)

    hash_stream(read, chunk_size=1024)
    assert set(asked) == {1024}


def test_hash_stream_refuses_a_zero_chunk_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        hash_stream(io.BytesIO(b"").read, chunk_size=0)


@given(st.binary(max_size=5000), st.integers(min_value=1, max_value=700), st.booleans())
def test_hash_into_equals_hashing_the_whole(data: bytes, chunk_size: int, overlap: bool) -> None:
    streamed = hash_into(io.BytesIO(data).readinto, "sha512", chunk_size, overlap=overlap)
    assert streamed.digest == Digest("sha512", hashlib.sha512(data).hexdigest())
    assert streamed.bytes_read == len(data)
    # Overlapped, each read fills a quarter of the chunk.
    part = chunk_size // OVERLAP_PARTS if overlap and chunk_size >= OVERLAP_PARTS else chunk_size
    assert streamed.reads == -(-len(data) // part) + 1


def test_a_failed_read_ends_the_overlapped_hash_and_its_thread() -> None:
    source = io.BytesIO(b"x" * 100_000)

    def readinto(buffer: memoryview) -> int:
        if source.tell() >= 50_000:
            raise ConnectionResetError("the store went away")
        return source.readinto(buffer)

    threads = threading.active_count()
    with pytest.raises(ConnectionResetError):
        hash_into(readinto, chunk_size=4096, overlap=True)
    assert threading.active_count() == threads


def test_hash_into_hashes_only_the_bytes_each_read_wrote() -> None:
    """A short read leaves the rest of the buffer stale; none of it is hashed."""
    pieces = [b"abc", b"d", b""]

    def readinto(buffer: memoryview) -> int:
        piece = pieces.pop(0)
        buffer[: len(piece)] = piece
        return len(piece)

    assert hash_into(readinto, chunk_size=1024).digest == digest_bytes(b"abcd")


def test_hash_into_refuses_a_zero_chunk_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        hash_into(io.BytesIO(b"").readinto, chunk_size=0)
