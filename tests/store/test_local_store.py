"""The file:// backend on a real filesystem (pytest's tmp_path)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tracemalloc
from pathlib import Path

import pytest

from modelplane.store import (
    ArtifactNotFound,
    InvalidURI,
    LocalStore,
    ManifestError,
    file_uri,
    open_store,
)

# The recipe in modelplane.store.manifests, run by bash and coreutils as an independent check.
SHELL_MANIFEST_DIGEST = r"""
cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort | while IFS= read -r f; do
  printf '%s\t%s\t%s\n' "$f" "$(stat -c %s "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)"
done | sha256sum | cut -d' ' -f1
"""


def make_tree(root: Path) -> dict[str, bytes]:
    """A small model directory with nested files, an empty file and an empty directory."""
    files = {
        "model.pkl": os.urandom(5000),
        "config.json": b'{"max_depth": 6}',
        "weights/layer-0.bin": os.urandom(3000),
        "weights/layer-1.bin": b"",
        "tokenizer/vocab v2.txt": "héllo\nwörld\n".encode(),
    }
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "empty-dir").mkdir()
    return files


def shell_digest(root: Path) -> str:
    result = subprocess.run(
        ["bash", "-c", SHELL_MANIFEST_DIGEST, "bash", str(root)],
        capture_output=True,
        text=True,
        check=True,
    )
    return "sha256:" + result.stdout.strip()


@pytest.fixture
def store() -> LocalStore:
    return LocalStore()


def test_open_store_picks_the_local_backend_for_file_uris(tmp_path: Path) -> None:
    assert isinstance(open_store(file_uri(tmp_path)), LocalStore)


def test_puts_bytes_then_stats_and_digests_them(store: LocalStore, tmp_path: Path) -> None:
    uri = file_uri(tmp_path / "runs" / "r1" / "metrics.jsonl")
    assert store.put_bytes(b"abc", uri).size == 3
    stat = store.stat(uri)
    assert (stat.exists, stat.is_directory, stat.size, stat.files) == (True, False, 3, 1)
    result = store.digest(uri)
    assert str(result.digest) == "sha256:" + hashlib.sha256(b"abc").hexdigest()
    assert (result.size, result.bytes_read, result.is_directory) == (3, 3, False)
    assert (
        store.digest(uri, "md5").digest.hex
        == hashlib.md5(b"abc", usedforsecurity=False).hexdigest()
    )


def test_put_file_copies_and_leaves_no_temporary_files(store: LocalStore, tmp_path: Path) -> None:
    source = tmp_path / "model.pkl"
    source.write_bytes(b"weights")
    target = tmp_path / "store" / "m" / "model.pkl"
    store.put_file(source, file_uri(target))
    assert target.read_bytes() == b"weights"
    assert [path.name for path in target.parent.iterdir()] == ["model.pkl"]


def test_put_file_refuses_a_directory_uri_and_a_missing_source(
    store: LocalStore, tmp_path: Path
) -> None:
    source = tmp_path / "m.pkl"
    source.write_bytes(b"x")
    with pytest.raises(InvalidURI, match="needs a file name"):
        store.put_file(source, file_uri(tmp_path / "d", directory=True))
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "missing.pkl", file_uri(tmp_path / "out.pkl"))


def test_directory_digest_matches_the_documented_shell_recipe(
    store: LocalStore, tmp_path: Path
) -> None:
    make_tree(tmp_path / "model")
    result = store.digest(file_uri(tmp_path / "model"))
    assert result.is_directory
    assert str(result.digest) == shell_digest(tmp_path / "model")
    assert result.manifest is not None
    assert len(result.manifest.entries) == 5
    assert result.size == result.bytes_read == 5000 + 16 + 3000 + 0 + len("héllo\nwörld\n".encode())


def test_stat_of_a_directory_counts_its_files(store: LocalStore, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "model")
    stat = store.stat(file_uri(tmp_path / "model", directory=True))
    assert (stat.exists, stat.is_directory, stat.files) == (True, True, len(files))
    assert stat.size == sum(len(data) for data in files.values())


def test_a_missing_path_stats_as_missing_and_cannot_be_digested(
    store: LocalStore, tmp_path: Path
) -> None:
    uri = file_uri(tmp_path / "nope" / "model.pkl")
    assert not store.stat(uri).exists
    with pytest.raises(ArtifactNotFound, match=f"artifact not found at {uri}"):
        store.digest(uri)
    with pytest.raises(ArtifactNotFound):
        store.get_to_path(uri, tmp_path / "out")


def test_a_trailing_slash_on_a_file_does_not_find_it(store: LocalStore, tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(b"x")
    stat = store.stat(file_uri(tmp_path / "m.pkl", directory=True))
    assert not stat.exists
    assert "not a directory" in stat.detail


def test_get_to_path_round_trips_a_directory(store: LocalStore, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "model")
    dest = tmp_path / "fetched"
    assert store.get_to_path(file_uri(tmp_path / "model"), dest) == dest
    fetched = {
        path.relative_to(dest).as_posix(): path.read_bytes()
        for path in dest.rglob("*")
        if path.is_file()
    }
    assert fetched == files
    assert store.digest(file_uri(dest)).digest == store.digest(file_uri(tmp_path / "model")).digest


def test_get_to_path_copies_a_single_file_to_dest(store: LocalStore, tmp_path: Path) -> None:
    (tmp_path / "m.pkl").write_bytes(b"model")
    dest = tmp_path / "out" / "model.pkl"
    store.get_to_path(file_uri(tmp_path / "m.pkl"), dest)
    assert dest.read_bytes() == b"model"


def test_put_directory_then_list(store: LocalStore, tmp_path: Path) -> None:
    files = make_tree(tmp_path / "model")
    prefix = file_uri(tmp_path / "store" / "m" / "3", directory=True)
    stat = store.put_directory(tmp_path / "model", prefix)
    assert (stat.files, stat.size) == (len(files), sum(len(data) for data in files.values()))
    listed = {stored.path: stored.size for stored in store.list(prefix)}
    assert listed == {relative: len(data) for relative, data in files.items()}
    assert list(store.list(file_uri(tmp_path / "nothing-here"))) == []


def test_refuses_a_symlinked_directory_inside_an_artifact(
    store: LocalStore, tmp_path: Path
) -> None:
    make_tree(tmp_path / "model")
    (tmp_path / "outside").mkdir()
    (tmp_path / "model" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(ManifestError, match="symlink to a directory"):
        store.digest(file_uri(tmp_path / "model"))


def test_follows_a_symlinked_file_by_content(store: LocalStore, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "m.bin").write_bytes(b"data")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "m.bin").symlink_to(tmp_path / "a" / "m.bin")
    assert (
        store.digest(file_uri(tmp_path / "a")).digest
        == store.digest(file_uri(tmp_path / "b")).digest
    )


def test_refuses_a_fifo_instead_of_blocking_on_it(store: LocalStore, tmp_path: Path) -> None:
    make_tree(tmp_path / "model")
    os.mkfifo(tmp_path / "model" / "pipe")
    with pytest.raises(ManifestError, match="not a regular file"):
        store.digest(file_uri(tmp_path / "model"))


def test_rejects_uris_of_another_scheme(store: LocalStore) -> None:
    with pytest.raises(InvalidURI, match="not a file://"):
        store.stat("s3://bucket/key")


def test_digests_a_64_mib_file_in_chunks_with_flat_memory(tmp_path: Path) -> None:
    size = 64 * 1024 * 1024
    path = tmp_path / "big.bin"
    expected = hashlib.sha256()
    with path.open("wb") as out:
        for index in range(64):
            block = index.to_bytes(1, "big") * (1024 * 1024)
            expected.update(block)
            out.write(block)
    del block
    tracemalloc.start()
    try:
        result = LocalStore().digest(file_uri(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.digest.hex == expected.hexdigest()
    assert result.bytes_read == size
    assert result.reads == size // (8 * 1024 * 1024) + 1
    # One reused 8 MiB buffer; reading the file whole would need 64 MiB.
    assert peak < 2 * 8 * 1024 * 1024, f"peak {peak} bytes while hashing {size}"
