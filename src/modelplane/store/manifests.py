"""The manifest digest of a directory artifact, defined once for S3 prefixes and local directories.

A directory artifact (``s3://bucket/prefix/`` or a local directory) has no bytes of its own, so
its digest is the digest of a *manifest* of its files. For an algorithm ``A`` (``sha256`` unless
the expected digest says ``md5:`` or ``sha512:``):

1. Take every file under the directory, recursively. Its *path* is its name relative to the
   directory, with ``/`` between components: no leading ``/`` or ``./``. For S3 that is the key
   with the prefix (ending in ``/``) removed. Keys ending in ``/`` are directory markers and are
   skipped, as are local directories: empty directories do not count, because S3 cannot hold
   them.
2. Reject a path that is empty or holds an empty, ``.`` or ``..`` component, or any control
   character (tab, newline, ...): such names cannot be written to disk the same way or would make
   the manifest ambiguous. Paths are used as UTF-8 exactly as stored (no Unicode normalization).
3. For each file write one line ``<path>\\t<size>\\t<hexdigest>\\n``: ``size`` in bytes in
   decimal without leading zeros, ``hexdigest`` the lower-case hex ``A`` digest of the file's
   content.
4. Sort the lines by the UTF-8 bytes of the path (the same order as sorting whole lines bytewise,
   since tab sorts below every character a path may hold), concatenate them (UTF-8), and hash
   the result with ``A``. The directory's digest is ``A:<hex of that hash>``.

For example, a directory holding ``model.pkl`` (3 bytes ``abc``) and ``conf/params.json``
(empty) has the sha256 manifest::

    conf/params.json\\t0\\te3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\\n
    model.pkl\\t3\\tba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\\n

For a tree of regular files it can be reproduced without modelplane::

    find . -type f | sed 's|^\\./||' | LC_ALL=C sort | while IFS= read -r f; do
      printf '%s\\t%s\\t%s\\n' "$f" "$(stat -c %s "$f")" "$(sha256sum < "$f" | cut -d' ' -f1)"
    done | sha256sum

This module is pure: it turns (path, size, hex) triples into a manifest and a digest.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from modelplane.store.digests import ALGORITHMS, Digest, check_algorithm, digest_bytes
from modelplane.store.errors import ManifestError

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a directory artifact: its relative path, size and content hex digest."""

    path: str
    size: int
    hexdigest: str

    def line(self) -> str:
        return f"{self.path}\t{self.size}\t{self.hexdigest}\n"


@dataclass(frozen=True)
class Manifest:
    """The sorted, checked file list of a directory artifact under one digest algorithm."""

    algorithm: str
    entries: tuple[ManifestEntry, ...]

    @classmethod
    def build(cls, entries: Iterable[ManifestEntry], algorithm: str = "sha256") -> Manifest:
        """Check every entry and sort them by path; raises `ManifestError` on a bad entry."""
        check_algorithm(algorithm)
        checked = sorted(
            (_check_entry(entry, algorithm) for entry in entries),
            key=lambda entry: entry.path.encode(),
        )
        for before, after in itertools.pairwise(checked):
            if before.path == after.path:
                raise ManifestError(f"file {before.path!r} appears twice in the manifest")
        return cls(algorithm, tuple(checked))

    @property
    def size(self) -> int:
        """Total bytes of all files."""
        return sum(entry.size for entry in self.entries)

    def render(self) -> bytes:
        """The manifest text whose hash is the directory's digest."""
        return "".join(entry.line() for entry in self.entries).encode()

    @property
    def digest(self) -> Digest:
        return digest_bytes(self.render(), self.algorithm)


def check_relative_path(path: str) -> str:
    """Return ``path`` if it is a portable relative file path, else raise `ManifestError`."""
    if not path:
        raise ManifestError("empty file path in directory artifact")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        raise ManifestError(f"file path {path!r} holds a control character")
    try:
        path.encode()
    except UnicodeEncodeError:
        raise ManifestError(f"file path {path!r} is not valid UTF-8") from None
    for component in path.split("/"):
        if component in ("", ".", ".."):
            raise ManifestError(
                f"file path {path!r} has an empty, '.' or '..' component; "
                "it cannot be written to a directory portably"
            )
    return path


def _check_entry(entry: ManifestEntry, algorithm: str) -> ManifestEntry:
    check_relative_path(entry.path)
    if entry.size < 0:
        raise ManifestError(f"file {entry.path!r} has a negative size {entry.size}")
    if len(entry.hexdigest) != ALGORITHMS[algorithm] or not _HEX.issuperset(entry.hexdigest):
        raise ManifestError(
            f"file {entry.path!r} has {entry.hexdigest!r}, not a lower-case hex {algorithm} digest"
        )
    return entry
