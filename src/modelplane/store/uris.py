"""Parsing artifact URIs into typed locations.

Two schemes have backends: ``s3://bucket/key`` (AWS S3 or any S3-compatible store) and
``file:///absolute/path`` (one machine's filesystem). A URI ending in ``/`` names a directory
artifact explicitly (an S3 prefix, a local directory); without it, a URI names whatever is
there, and the backends look for an object first and a prefix second.

S3 keys are taken verbatim, as the AWS CLI does: ``?``, ``#`` and ``%`` are part of the key.
File URIs follow RFC 8089: their path is percent-decoded, so a file name holding ``#`` or ``?``
must be written ``%23`` / ``%3F`` (`file_uri` does that). This module does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from modelplane.store.errors import InvalidURI, UnsupportedScheme

# AWS's rules for new bucket names; S3-compatible stores such as MinIO enforce the same.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")
_MAX_KEY_BYTES = 1024

_UNSUPPORTED_HINTS = {
    "gs": (
        "gs:// (Google Cloud Storage) is not supported yet; use its S3-compatible API instead: "
        "s3://BUCKET/KEY with MODELPLANE_S3_ENDPOINT_URL=https://storage.googleapis.com and "
        "HMAC keys"
    ),
    "gcs": "gcs:// (Google Cloud Storage) is not supported yet; use s3:// with its S3 API",
}


@dataclass(frozen=True)
class S3Location:
    """An object or prefix in an S3 bucket. ``key`` is ``""`` for the whole bucket."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def is_prefix(self) -> bool:
        """Whether the URI names a directory explicitly (trailing ``/``, or the bucket root)."""
        return self.key == "" or self.key.endswith("/")

    def as_prefix(self) -> S3Location:
        """The same location read as a directory: its key with one trailing ``/``."""
        return self if self.is_prefix else S3Location(self.bucket, self.key + "/")

    def child(self, relative_path: str) -> S3Location:
        """The object at ``relative_path`` (``/``-separated) under this location as a prefix."""
        return S3Location(self.bucket, self.as_prefix().key + relative_path)

    def __str__(self) -> str:
        return self.uri


@dataclass(frozen=True)
class FileLocation:
    """A file or directory on the local filesystem, by absolute path."""

    path: Path
    # Path() drops a trailing slash, so whether the URI named a directory is kept here.
    is_prefix: bool = False

    @property
    def uri(self) -> str:
        return file_uri(self.path, directory=self.is_prefix)

    def child(self, relative_path: str) -> FileLocation:
        return FileLocation(self.path.joinpath(*relative_path.split("/")))

    def __str__(self) -> str:
        return self.uri


Location = S3Location | FileLocation


def scheme_of(uri: str) -> str:
    """The lower-cased scheme of ``uri``; raises `InvalidURI` when it has none."""
    match = _SCHEME.match(uri)
    if match is None:
        raise InvalidURI(
            f"artifact URI {uri!r} has no scheme; write s3://BUCKET/KEY or file:///ABSOLUTE/PATH"
        )
    return match.group(1).lower()


def parse_uri(uri: str) -> Location:
    """Parse an artifact URI into an `S3Location` or a `FileLocation`.

    Raises `UnsupportedScheme` for schemes without a backend (``gs://``, ``https://``, ...) and
    `InvalidURI` for malformed URIs.
    """
    scheme = scheme_of(uri)
    if scheme == "s3":
        return parse_s3_uri(uri)
    if scheme == "file":
        return parse_file_uri(uri)
    hint = _UNSUPPORTED_HINTS.get(scheme)
    if hint is None:
        hint = f"{scheme}:// is not supported; artifact URIs are s3://BUCKET/KEY or file:///PATH"
    raise UnsupportedScheme(f"{hint} (in {uri!r})")


def parse_s3_uri(uri: str) -> S3Location:
    """Parse ``s3://bucket/key``; the key is kept verbatim and may be empty."""
    if scheme_of(uri) != "s3" or not uri[5:] or uri[3:5] != "//":
        raise InvalidURI(f"not an s3://BUCKET/KEY URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not _BUCKET_NAME.match(bucket) or ".." in bucket:
        raise InvalidURI(
            f"invalid S3 bucket name {bucket!r} in {uri!r}: bucket names are 3-63 lower-case "
            "letters, digits, dots and hyphens, starting and ending with a letter or digit"
        )
    if len(key.encode()) > _MAX_KEY_BYTES:
        raise InvalidURI(f"S3 key longer than {_MAX_KEY_BYTES} bytes in {uri[:80]!r}...")
    if "\x00" in key:
        raise InvalidURI(f"S3 key holds a NUL character: {uri!r}")
    return S3Location(bucket=bucket, key=key)


def parse_file_uri(uri: str) -> FileLocation:
    """Parse ``file:///absolute/path`` (or ``file://localhost/...``, ``file:/...``)."""
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file":
        raise InvalidURI(f"not a file:// URI: {uri!r}")
    if parts.netloc not in ("", "localhost"):
        raise InvalidURI(
            f"file URI {uri!r} names host {parts.netloc!r}; only local paths are supported "
            "(file:///ABSOLUTE/PATH)"
        )
    if parts.query or parts.fragment or uri.endswith(("?", "#")):
        raise InvalidURI(
            f"file URI {uri!r} holds '?' or '#'; percent-encode them in file names (%3F, %23)"
        )
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise InvalidURI(f"file URI {uri!r} does not hold an absolute path")
    if "\x00" in path:
        raise InvalidURI(f"file URI holds a NUL character: {uri!r}")
    return FileLocation(path=Path(path), is_prefix=path.endswith("/"))


def file_uri(path: Path, *, directory: bool = False) -> str:
    """The ``file://`` URI of an absolute ``path``; ``directory`` adds the trailing ``/``."""
    if not path.is_absolute():
        raise InvalidURI(f"file URIs need an absolute path, got {str(path)!r}")
    uri = path.as_uri()
    return uri + "/" if directory and not uri.endswith("/") else uri
