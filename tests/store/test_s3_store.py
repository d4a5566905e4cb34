"""The s3:// backend against a real S3-compatible store (the session's MinIO).

The unreachable-store tests need no store: they point at a closed port or a socket that never
answers, and check that the failure is `StoreUnavailable` within the configured timeouts.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from modelplane.store import (
    ArtifactNotFound,
    InvalidURI,
    LocalStore,
    S3Store,
    StoreAccessDenied,
    StoreConfig,
    StoreUnavailable,
    VerificationReason,
    file_uri,
    open_store,
    verify_artifact,
)
from modelplane.store.s3 import make_client

MODEL_FILES = {
    "model.pkl": os.urandom(70_000),
    "config.json": b'{"max_depth": 6, "learning_rate": 0.05}',
    "weights/layer-0.bin": os.urandom(20_000),
    "weights/layer-1.bin": b"",
    "tokenizer/vocab v2.txt": "héllo\nwörld\n".encode(),
}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def config(s3: Any) -> StoreConfig:
    return StoreConfig.from_env(s3.env())


@pytest.fixture
def store(config: StoreConfig) -> S3Store:
    return S3Store(config)


def test_open_store_picks_s3_and_reuses_the_client(config: StoreConfig) -> None:
    first = open_store("s3://models/m.pkl", config)
    assert isinstance(first, S3Store)
    assert open_store("s3://other/x", config) is first


def test_put_then_verify_a_single_file(store: S3Store, config: StoreConfig, bucket: str) -> None:
    data = os.urandom(100_000)
    uri = f"s3://{bucket}/churn-model/3/model.pkl"
    assert store.put_bytes(data, uri).size == len(data)

    stat = store.stat(uri)
    assert (stat.exists, stat.is_directory, stat.size, stat.files) == (True, False, len(data), 1)
    result = verify_artifact(uri, sha256(data), expected_size=len(data), config=config)
    assert result.verified, result.message
    assert result.reason is VerificationReason.VERIFIED
    assert result.size == len(data)
    assert result.actual_digest == sha256(data)


def test_put_file_uploads_a_local_file(store: S3Store, bucket: str, tmp_path: Path) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"weights")
    uri = f"s3://{bucket}/m/model.pkl"
    store.put_file(source, uri)
    assert store.digest(uri).digest.hex == hashlib.sha256(b"weights").hexdigest()
    with pytest.raises(InvalidURI, match="needs a key"):
        store.put_file(source, f"s3://{bucket}/m/")


def test_detects_an_artifact_with_one_byte_overwritten(
    store: S3Store, config: StoreConfig, bucket: str, s3: Any
) -> None:
    data = os.urandom(50_000)
    uri = f"s3://{bucket}/m/model.pkl"
    store.put_bytes(data, uri)
    tampered = bytearray(data)
    tampered[12_345] ^= 0xFF
    s3.client().put_object(Bucket=bucket, Key="m/model.pkl", Body=bytes(tampered))

    result = verify_artifact(uri, sha256(data), config=config)
    assert not result.verified
    assert result.reason is VerificationReason.DIGEST_MISMATCH
    assert result.actual_digest == sha256(bytes(tampered))
    assert result.message == (
        f"digest mismatch at {uri}: expected {sha256(data)} got {sha256(bytes(tampered))}"
    )


def test_a_missing_key_is_not_found(store: S3Store, config: StoreConfig, bucket: str) -> None:
    uri = f"s3://{bucket}/churn-model/9/model.pkl"
    result = verify_artifact(uri, sha256(b"x"), config=config)
    assert not result.verified
    assert result.reason is VerificationReason.NOT_FOUND
    assert result.message.startswith(f"artifact not found at {uri}")
    assert not store.stat(uri).exists
    with pytest.raises(ArtifactNotFound):
        store.digest(uri)
    with pytest.raises(ArtifactNotFound):
        store.get_to_path(uri, Path("/nonexistent/never-written"))


def test_a_missing_bucket_is_not_found_and_says_so(config: StoreConfig) -> None:
    uri = "s3://no-such-bucket-modelplane/m/model.pkl"
    result = verify_artifact(uri, sha256(b"x"), config=config)
    assert result.reason is VerificationReason.NOT_FOUND
    assert "bucket 'no-such-bucket-modelplane' does not exist" in result.message


def test_a_directory_has_the_same_manifest_digest_in_s3_and_on_disk(
    store: S3Store, config: StoreConfig, bucket: str, tmp_path: Path
) -> None:
    local = write_tree(tmp_path / "model", MODEL_FILES)
    prefix = f"s3://{bucket}/churn-model/3/"
    stat = store.put_directory(local, prefix)
    assert stat.files == len(MODEL_FILES)

    in_s3 = store.digest(prefix)
    on_disk = LocalStore().digest(file_uri(local))
    assert in_s3.is_directory
    assert in_s3.digest == on_disk.digest
    assert in_s3.manifest == on_disk.manifest
    assert in_s3.size == sum(len(data) for data in MODEL_FILES.values())
    # Without the trailing slash the URI still resolves to the prefix, as no object has that key.
    assert store.digest(f"s3://{bucket}/churn-model/3").digest == on_disk.digest

    result = verify_artifact(prefix, str(on_disk.digest), config=config)
    assert result.verified, result.message
    assert (result.is_directory, result.files) == (True, len(MODEL_FILES))


def test_directory_markers_and_sibling_prefixes_are_not_part_of_a_directory(
    store: S3Store, bucket: str, s3: Any, tmp_path: Path
) -> None:
    local = write_tree(tmp_path / "model", MODEL_FILES)
    store.put_directory(local, f"s3://{bucket}/m/3/")
    expected = LocalStore().digest(file_uri(local)).digest
    client = s3.client()
    client.put_object(Bucket=bucket, Key="m/3/", Body=b"")
    client.put_object(Bucket=bucket, Key="m/3/weights/", Body=b"")
    client.put_object(Bucket=bucket, Key="m/30/other.bin", Body=b"not ours")
    client.put_object(Bucket=bucket, Key="m/3.bak", Body=b"not ours")
    assert store.digest(f"s3://{bucket}/m/3/").digest == expected
    assert {stored.path for stored in store.list(f"s3://{bucket}/m/3")} == set(MODEL_FILES)


def test_a_tampered_file_in_a_directory_names_both_manifest_digests(
    store: S3Store, config: StoreConfig, bucket: str, s3: Any, tmp_path: Path
) -> None:
    local = write_tree(tmp_path / "model", MODEL_FILES)
    prefix = f"s3://{bucket}/m/3/"
    store.put_directory(local, prefix)
    expected = LocalStore().digest(file_uri(local)).digest
    s3.client().put_object(Bucket=bucket, Key="m/3/config.json", Body=b'{"max_depth": 7}')
    result = verify_artifact(prefix, str(expected), config=config)
    assert result.reason is VerificationReason.DIGEST_MISMATCH
    assert f"directory manifest digest mismatch at {prefix}: expected {expected} got" in (
        result.message
    )


def test_get_to_path_round_trips_a_directory(store: S3Store, bucket: str, tmp_path: Path) -> None:
    local = write_tree(tmp_path / "model", MODEL_FILES)
    prefix = f"s3://{bucket}/churn-model/3/"
    store.put_directory(local, prefix)

    dest = tmp_path / "fetched"
    assert store.get_to_path(prefix, dest) == dest
    fetched = {
        path.relative_to(dest).as_posix(): path.read_bytes()
        for path in dest.rglob("*")
        if path.is_file()
    }
    assert fetched == MODEL_FILES
    assert LocalStore().digest(file_uri(dest)).digest == store.digest(prefix).digest


def test_get_to_path_downloads_a_single_object(store: S3Store, bucket: str, tmp_path: Path) -> None:
    store.put_bytes(b"model bytes", f"s3://{bucket}/m/model.pkl")
    dest = tmp_path / "out" / "model.pkl"
    store.get_to_path(f"s3://{bucket}/m/model.pkl", dest)
    assert dest.read_bytes() == b"model bytes"
    assert [path.name for path in dest.parent.iterdir()] == ["model.pkl"]


def test_an_empty_prefix_is_not_found(store: S3Store, config: StoreConfig, bucket: str) -> None:
    uri = f"s3://{bucket}/churn-model/4/"
    stat = store.stat(uri)
    assert not stat.exists
    assert stat.detail == f"no objects under {uri}"
    assert verify_artifact(uri, sha256(b""), config=config).reason is VerificationReason.NOT_FOUND


def test_wrong_credentials_raise_access_denied_not_a_verdict(s3: Any, bucket: str) -> None:
    env = {**s3.env(), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}
    config = StoreConfig.from_env(env)
    with pytest.raises(StoreAccessDenied, match="denied"):
        verify_artifact(f"s3://{bucket}/m.pkl", sha256(b""), config=config)


def test_digests_a_64_mib_object_in_chunks_with_flat_memory(
    store: S3Store, bucket: str, tmp_path: Path
) -> None:
    size = 64 * 1024 * 1024
    path = tmp_path / "big.bin"
    expected = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(64):
            block = os.urandom(1024 * 1024)
            expected.update(block)
            out.write(block)
    uri = f"s3://{bucket}/big/model.bin"
    store.put_file(path, uri)

    tracemalloc.start()
    try:
        result = store.digest(uri)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.digest.hex == expected.hexdigest()
    assert result.bytes_read == size
    # 8 MiB chunks: at least 8 reads, and never more than a few chunks alive at once.
    assert result.reads >= size // store.config.chunk_size
    assert peak < 2 * store.config.chunk_size, f"peak {peak} bytes while hashing {size}"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """An endpoint that accepts connections (in the kernel backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def unreachable(endpoint: str, *, read_timeout: float = 30.0, max_attempts: int = 3) -> StoreConfig:
    return StoreConfig(
        endpoint_url=endpoint,
        access_key_id="minio",
        secret_access_key="unused-secret",  # noqa: S106 - nothing listens to check it
        read_timeout=read_timeout,
        max_attempts=max_attempts,
    )


def test_a_closed_port_raises_store_unavailable_quickly() -> None:
    config = unreachable(f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="cannot reach the artifact store"):
        verify_artifact("s3://models/churn/3/model.pkl", sha256(b""), config=config)
    # Three attempts with jittered backoff of at most 1 s and 2 s.
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("operation", ["stat", "digest", "list", "put_bytes", "get_to_path"])
def test_every_operation_on_a_closed_port_raises_store_unavailable(
    operation: str, tmp_path: Path
) -> None:
    store = S3Store(unreachable(f"http://127.0.0.1:{closed_port()}", max_attempts=1))
    uri = "s3://models/churn/3/model.pkl"
    calls: dict[str, Callable[[], object]] = {
        "stat": lambda: store.stat(uri),
        "digest": lambda: store.digest(uri),
        "list": lambda: list(store.list(uri)),
        "put_bytes": lambda: store.put_bytes(b"x", uri),
        "get_to_path": lambda: store.get_to_path(uri, tmp_path / "out"),
    }
    with pytest.raises(StoreUnavailable):
        calls[operation]()


def test_an_endpoint_that_never_answers_times_out_as_unavailable(silent_endpoint: str) -> None:
    config = unreachable(silent_endpoint, read_timeout=0.5, max_attempts=1)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        verify_artifact("s3://models/m.pkl", sha256(b""), config=config)
    assert time.monotonic() - started < 5


def test_a_directory_digest_reuses_one_connection(store: S3Store, bucket: str) -> None:
    """Each object read to its end hands its connection back for the next GET."""
    for index in range(5):
        store.put_bytes(os.urandom(10_000), f"s3://{bucket}/many/{index}.bin")
    opened = store.client._endpoint.http_session._manager.connection_from_url(
        store.config.endpoint_url or ""
    )
    before = opened.num_connections
    store.digest(f"s3://{bucket}/many/")
    assert opened.num_connections - before <= 1


@pytest.fixture
def breaking_endpoint() -> Iterator[Callable[[bytes], str]]:
    """An endpoint that answers any request with 200, a Content-Length of 1,000 and the given
    bytes, then drops the connection: a download that breaks midway."""
    servers: list[socket.socket] = []

    def serve(sent: bytes) -> str:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        servers.append(server)

        def answer() -> None:
            with contextlib.suppress(OSError):
                while True:
                    connection, _ = server.accept()
                    with connection:
                        connection.recv(65536)
                        connection.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
                            b"Content-Type: application/octet-stream\r\n\r\n" + sent
                        )

        threading.Thread(target=answer, daemon=True).start()
        return f"http://127.0.0.1:{server.getsockname()[1]}"

    yield serve
    for server in servers:
        server.close()


@pytest.mark.parametrize("sent", [b"", b"x" * 10, b"x" * 999])
def test_a_download_that_breaks_midway_is_unavailable_not_a_digest(
    breaking_endpoint: Callable[[bytes], str], sent: bytes
) -> None:
    store = S3Store(unreachable(breaking_endpoint(sent), read_timeout=2, max_attempts=1))
    with pytest.raises(StoreUnavailable, match="cannot reach the artifact store"):
        store.digest("s3://models/m.pkl")


def test_hashes_a_body_that_is_not_a_socket_stream_through_read(config: StoreConfig) -> None:
    """A body boto3 did not build over http.client (a stub here) is read with its read()."""
    data = b"weights" * 1000
    client = make_client(config)
    with Stubber(client) as stubber:
        stubber.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data)},
            {"Bucket": "models", "Key": "m.pkl"},
        )
        result = S3Store(config, client=client).digest("s3://models/m.pkl")
    assert result.digest.hex == hashlib.sha256(data).hexdigest()
    assert result.bytes_read == len(data)
