"""verify_artifact: a verdict for right, wrong or missing artifacts; an exception otherwise.

These run on the file:// backend; test_s3_store.py runs the same checks against S3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelplane.store import (
    ArtifactStat,
    DigestResult,
    StoreAccessDenied,
    StoredObject,
    StoreUnavailable,
    VerificationReason,
    file_uri,
    verify_artifact,
)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"trained weights")
    return path


def test_verifies_a_file_with_its_digest_and_size(model: Path) -> None:
    result = verify_artifact(file_uri(model), sha256(b"trained weights"))
    assert result.verified
    assert result.reason is VerificationReason.VERIFIED
    assert result.size == len(b"trained weights")
    assert result.actual_digest == sha256(b"trained weights")
    assert "verified" in result.message


def test_a_changed_byte_is_a_digest_mismatch_naming_both_digests(model: Path) -> None:
    expected = sha256(b"trained weights")
    model.write_bytes(b"trained weighTs")
    result = verify_artifact(file_uri(model), expected)
    assert not result.verified
    assert result.reason is VerificationReason.DIGEST_MISMATCH
    assert result.actual_digest == sha256(b"trained weighTs")
    assert f"expected {expected} got {sha256(b'trained weighTs')}" in result.message


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    uri = file_uri(tmp_path / "absent.pkl")
    result = verify_artifact(uri, sha256(b""))
    assert not result.verified
    assert result.reason is VerificationReason.NOT_FOUND
    assert result.message == f"artifact not found at {uri}"
    assert result.size is None


def test_a_wrong_size_fails_before_hashing(model: Path) -> None:
    result = verify_artifact(file_uri(model), sha256(b"trained weights"), expected_size=1)
    assert result.reason is VerificationReason.SIZE_MISMATCH
    assert "expected 1 bytes, found 15" in result.message
    assert result.actual_digest is None


@pytest.mark.parametrize("algorithm", ["md5", "sha1", "sha512"])
def test_accepts_md5_and_sha512_digests(model: Path, algorithm: str) -> None:
    hexdigest = hashlib.new(algorithm, b"trained weights").hexdigest()
    result = verify_artifact(file_uri(model), f"{algorithm}:{hexdigest}")
    assert result.verified
    assert result.actual_digest == f"{algorithm}:{hexdigest}"


def test_verifies_a_directory_by_its_manifest_digest(tmp_path: Path) -> None:
    (tmp_path / "m" / "sub").mkdir(parents=True)
    (tmp_path / "m" / "a.bin").write_bytes(b"abc")
    (tmp_path / "m" / "sub" / "b.bin").write_bytes(b"")
    manifest = (
        f"a.bin\t3\t{hashlib.sha256(b'abc').hexdigest()}\n"
        f"sub/b.bin\t0\t{hashlib.sha256(b'').hexdigest()}\n"
    ).encode()
    result = verify_artifact(file_uri(tmp_path / "m", directory=True), sha256(manifest))
    assert result.verified, result.message
    assert (result.is_directory, result.files, result.size) == (True, 2, 3)

    (tmp_path / "m" / "sub" / "c.bin").write_bytes(b"new")
    changed = verify_artifact(file_uri(tmp_path / "m"), sha256(manifest))
    assert changed.reason is VerificationReason.DIGEST_MISMATCH
    assert "directory manifest digest mismatch" in changed.message


def test_an_empty_directory_is_not_verified(tmp_path: Path) -> None:
    (tmp_path / "m" / "empty").mkdir(parents=True)
    result = verify_artifact(file_uri(tmp_path / "m"), sha256(b""))
    assert result.reason is VerificationReason.EMPTY_DIRECTORY
    assert "holds no files" in result.message


def test_a_directory_with_a_symlinked_directory_is_invalid(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "a").write_bytes(b"a")
    (tmp_path / "m" / "loop").symlink_to(tmp_path / "m")
    result = verify_artifact(file_uri(tmp_path / "m"), sha256(b""))
    assert result.reason is VerificationReason.INVALID_ARTIFACT


@pytest.mark.parametrize(
    ("uri", "digest", "match"),
    [
        ("gs://models/m.pkl", sha256(b""), "not supported yet"),
        ("models/m.pkl", sha256(b""), "no scheme"),
        ("file:///m.pkl", "blake2b:" + "0" * 40, "unsupported digest algorithm"),
        ("file:///m.pkl", "deadbeef", "not of the form"),
    ],
)
def test_an_unusable_uri_or_digest_is_an_invalid_reference(
    uri: str, digest: str, match: str
) -> None:
    result = verify_artifact(uri, digest)
    assert not result.verified
    assert result.reason is VerificationReason.INVALID_REFERENCE
    assert match in result.message


class UnreachableStore:
    """An ArtifactStore whose every call fails as a store that cannot be reached does."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def stat(self, uri: str) -> ArtifactStat:
        raise self.error

    def digest(self, uri: str, algorithm: str = "sha256") -> DigestResult:
        raise self.error

    def put_file(self, source: Path, uri: str) -> ArtifactStat:
        raise self.error

    def put_bytes(self, data: bytes, uri: str) -> ArtifactStat:
        raise self.error

    def put_directory(self, source: Path, uri: str) -> ArtifactStat:
        raise self.error

    def get_to_path(self, uri: str, dest: Path) -> Path:
        raise self.error

    def list(self, prefix: str) -> Iterator[StoredObject]:
        raise self.error


@pytest.mark.parametrize(
    "error", [StoreUnavailable("connection refused"), StoreAccessDenied("403 AccessDenied")]
)
def test_a_store_that_cannot_be_asked_raises_instead_of_giving_a_verdict(error: Exception) -> None:
    with pytest.raises(StoreUnavailable):
        verify_artifact("s3://models/m.pkl", sha256(b""), store=UnreachableStore(error))
