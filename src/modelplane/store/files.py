"""The ``file://`` backend: artifacts on one machine's filesystem (a disk, a PVC, a hostPath).

Directories are walked in full; regular files and symlinks to regular files count, empty
directories do not (as on S3). A symlink to a directory or a special file (FIFO, socket, device)
inside a directory artifact is refused with `ManifestError` rather than followed or skipped, so
a digest never depends on what lies outside the artifact and never blocks on a FIFO.

Writes go to a temporary file in the target's directory and are renamed into place.
Errors map as for S3: a missing path is `ArtifactNotFound`, a permission error
`StoreAccessDenied`, any other OS error (EIO, a stale NFS handle) `StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat as stat_module
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Literal

from modelplane.store.artifacts import ArtifactStat, DigestResult, StoredObject, directory_digest
from modelplane.store.digests import (
    DEFAULT_CHUNK_SIZE,
    StreamedHash,
    check_algorithm,
    hash_into,
)
from modelplane.store.errors import (
    ArtifactNotFound,
    InvalidURI,
    ManifestError,
    StoreAccessDenied,
    StoreUnavailable,
)
from modelplane.store.manifests import check_relative_path
from modelplane.store.uris import FileLocation, file_uri, parse_file_uri


class LocalStore:
    """`ArtifactStore` over ``file://`` URIs."""

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self.chunk_size = chunk_size

    def stat(self, uri: str) -> ArtifactStat:
        location = parse_file_uri(uri)
        with _translating(uri):
            try:
                info = location.path.stat()
            except (FileNotFoundError, NotADirectoryError):
                return ArtifactStat(uri=uri, exists=False)
            if stat_module.S_ISREG(info.st_mode) and not location.is_prefix:
                return ArtifactStat(uri=uri, exists=True, size=info.st_size, files=1)
            if stat_module.S_ISDIR(info.st_mode):
                files = list(walk_files(location.path))
                return ArtifactStat(
                    uri=uri,
                    exists=True,
                    is_directory=True,
                    size=sum(size for _, _, size in files),
                    files=len(files),
                )
        return ArtifactStat(uri=uri, exists=False, detail=_not_a_file_or_directory(location))

    def digest(self, uri: str, algorithm: str = "sha256") -> DigestResult:
        check_algorithm(algorithm)
        location = parse_file_uri(uri)
        with _translating(uri):
            if _kind(location, uri) == "file":
                streamed = self._hash_file(location.path, algorithm)
                return DigestResult(
                    uri=uri,
                    digest=streamed.digest,
                    size=streamed.bytes_read,
                    is_directory=False,
                    bytes_read=streamed.bytes_read,
                    reads=streamed.reads,
                )
            objects = [
                StoredObject(file_uri(path), relative, size)
                for relative, path, size in walk_files(location.path)
            ]
            return directory_digest(
                uri,
                objects,
                lambda stored: self._hash_file(location.child(stored.path).path, algorithm),
                algorithm,
            )

    def put_file(self, source: Path, uri: str) -> ArtifactStat:
        target = _file_target(uri)
        check_source_file(source)
        with _translating(uri):
            write_atomically(target, _copier(source, self.chunk_size))
            return ArtifactStat(uri=uri, exists=True, size=target.stat().st_size, files=1)

    def put_bytes(self, data: bytes, uri: str) -> ArtifactStat:
        target = _file_target(uri)
        with _translating(uri):
            write_atomically(target, lambda out: out.write(data))
        return ArtifactStat(uri=uri, exists=True, size=len(data), files=1)

    def put_directory(self, source: Path, uri: str) -> ArtifactStat:
        location = parse_file_uri(uri)
        check_source_directory(source)
        size = files = 0
        with _translating(uri):
            for relative, path, file_size in walk_files(source):
                write_atomically(location.child(relative).path, _copier(path, self.chunk_size))
                size += file_size
                files += 1
        return ArtifactStat(uri=uri, exists=True, is_directory=True, size=size, files=files)

    def get_to_path(self, uri: str, dest: Path) -> Path:
        location = parse_file_uri(uri)
        # Both ends are local here, so errors writing dest are mapped like errors reading uri.
        with _translating(uri):
            if _kind(location, uri) == "file":
                write_atomically(dest, _copier(location.path, self.chunk_size))
                return dest
            dest.mkdir(parents=True, exist_ok=True)
            for relative, path, _ in walk_files(location.path):
                target = dest.joinpath(*relative.split("/"))
                write_atomically(target, _copier(path, self.chunk_size))
        return dest

    def list(self, prefix: str) -> Iterator[StoredObject]:
        location = parse_file_uri(prefix)
        with _translating(prefix):
            if not location.path.is_dir():
                return
            for relative, path, size in walk_files(location.path):
                yield StoredObject(file_uri(path), relative, size)

    def _hash_file(self, path: Path, algorithm: str) -> StreamedHash:
        # Unbuffered: readinto fills the hash buffer straight from the file, with no second copy.
        with path.open("rb", buffering=0) as file:
            return hash_into(file.readinto, algorithm, self.chunk_size)


def _kind(location: FileLocation, uri: str) -> Literal["file", "directory"]:
    """Whether the artifact is a file or a directory; `ArtifactNotFound` when neither."""
    info = location.path.stat()
    if stat_module.S_ISREG(info.st_mode) and not location.is_prefix:
        return "file"
    if stat_module.S_ISDIR(info.st_mode):
        return "directory"
    raise ArtifactNotFound(uri, _not_a_file_or_directory(location))


def walk_files(root: Path) -> Iterator[tuple[str, Path, int]]:
    """Yield (relative path, path, size) for every file under ``root``, in no set order."""
    for directory, dirnames, filenames in os.walk(root, onerror=_raise):
        base = Path(directory)
        for name in dirnames:
            if (base / name).is_symlink():
                raise ManifestError(
                    f"{base / name} is a symlink to a directory; directory artifacts may hold "
                    "only regular files and directories"
                )
        for name in filenames:
            path = base / name
            relative = check_relative_path(path.relative_to(root).as_posix())
            info = path.stat()
            if not stat_module.S_ISREG(info.st_mode):
                raise ManifestError(f"{path} is not a regular file")
            yield relative, path, info.st_size


def _raise(error: OSError) -> None:
    raise error


def _file_target(uri: str) -> Path:
    location = parse_file_uri(uri)
    if location.is_prefix:
        raise InvalidURI(f"{uri} ends in '/'; a file needs a file name")
    return location.path


def _copier(source: Path, chunk_size: int) -> Callable[[IO[bytes]], None]:
    def copy(out: IO[bytes]) -> None:
        with source.open("rb") as file:
            shutil.copyfileobj(file, out, chunk_size)

    return copy


def write_atomically(target: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call ``write`` on a temporary file beside ``target``, then rename it to ``target``.

    Readers of ``target`` see the old content or the new, never a part. The temporary file is
    created with mode 0666 less the umask, as ``open()`` would, and removed on failure.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
        temporary.replace(target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def check_source_file(source: Path) -> None:
    """Raise the plain OS error for a missing or non-file upload source, outside any mapping."""
    if not source.is_file():
        raise FileNotFoundError(2, "no such file to upload", str(source))


def check_source_directory(source: Path) -> None:
    if not source.is_dir():
        raise NotADirectoryError(20, "no such directory to upload", str(source))


def _not_a_file_or_directory(location: FileLocation) -> str:
    if location.is_prefix:
        return f"{location.path} is not a directory"
    return f"{location.path} is neither a regular file nor a directory"


@contextlib.contextmanager
def _translating(uri: str) -> Iterator[None]:
    """Map OS errors to store errors: missing is a verdict, anything else is not."""
    try:
        yield
    except (FileNotFoundError, NotADirectoryError) as error:
        raise ArtifactNotFound(uri, f"{error.strerror}: {error.filename}") from error
    except PermissionError as error:
        raise StoreAccessDenied(f"permission denied reading or writing {uri}: {error}") from error
    except OSError as error:
        raise StoreUnavailable(f"filesystem error at {uri}: {error}") from error
