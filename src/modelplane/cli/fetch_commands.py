"""`modelplane fetch URI DIR [--digest sha256:...]`: download a model artifact and check it.

This is what the serving Deployment's init container runs (`modelplane fetch $(MODEL_URI)
/models`, see `modelplane.core.rollouts`). A file artifact lands in DIR under its own name
(`s3://models/churn/3/model.pkl` -> `DIR/model.pkl`); a directory artifact's files land under
DIR with their relative paths. DIR is created when missing.

With a digest (`--digest`, default `$MODEL_DIGEST`), the downloaded copy is hashed, a directory
through the same manifest the operator verifies (`modelplane.store.manifests`), and compared.
The download goes to a hidden staging directory inside DIR first (inside, not beside: DIR is
often an emptyDir mount, and a rename cannot cross file systems) and is moved into place only
once it is verified; on a mismatch or any failure the staging directory is removed, and DIR too
when the command created it, so nothing unverified is left for the server to load. Files of
the same names already in DIR are replaced.

Store settings and credentials come from the environment (MODELPLANE_S3_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, ...; see `modelplane.store.config`).

Exit codes: 0 fetched (and verified), 1 digest mismatch or store failure, 2 usage (a malformed
URI or digest), 3 nothing at URI.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelplane.cli.errors import CommandError, NotFound, UsageError, exits, with_exit_codes
from modelplane.store import (
    ArtifactNotFound,
    ArtifactStore,
    Digest,
    InvalidDigest,
    InvalidURI,
    LocalStore,
    S3Location,
    StoreError,
    file_uri,
    open_store,
    parse_digest,
    parse_uri,
)

DIGEST_ENV = "MODEL_DIGEST"
STAGING_PREFIX = ".modelplane-fetch-"


def register(commands: Any) -> None:
    summary = "download a model artifact from the store into a directory and verify its digest"
    fetch = with_exit_codes(commands.add_parser("fetch", help=summary, description=summary))
    fetch.add_argument("uri", metavar="URI", help="artifact URI: s3://BUCKET/KEY or file:///PATH")
    fetch.add_argument("directory", metavar="DIR", type=Path, help="directory to download into")
    fetch.add_argument(
        "--digest",
        default=os.environ.get(DIGEST_ENV) or None,
        help=f"expected digest, e.g. sha256:<hex> (default: ${DIGEST_ENV}; none: no check)",
    )
    fetch.set_defaults(run=exits(_fetch))


@dataclass(frozen=True)
class Fetched:
    """What `fetch` wrote."""

    uri: str
    paths: tuple[Path, ...]
    is_directory: bool
    size: int
    digest: Digest | None
    """The verified digest; None when no digest was given."""


def artifact_file_name(uri: str) -> str:
    """The name a file artifact gets in DIR: the last segment of its key or path."""
    location = parse_uri(uri)
    name = (
        location.key.rsplit("/", 1)[-1]
        if isinstance(location, S3Location)
        else (location.path.name)
    )
    if not name or name in (".", ".."):
        raise InvalidURI(f"artifact URI {uri!r} names no file")
    return name


def fetch(
    uri: str, directory: Path, expected: Digest | None, store: ArtifactStore | None = None
) -> Fetched:
    """Downloads the artifact at `uri` into `directory`, verified against `expected` if given.

    Raises ArtifactNotFound when nothing is there, CommandError on a digest mismatch, and the
    store's errors otherwise; in every failure it leaves nothing behind.
    """
    store = store or open_store(uri)
    stat = store.stat(uri)
    if not stat.exists:
        raise ArtifactNotFound(uri, stat.detail)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=directory))
    done = False
    try:
        if stat.is_directory:
            store.get_to_path(uri, staging)
            local = file_uri(staging.resolve(), directory=True)
        else:
            local = file_uri(store.get_to_path(uri, staging / artifact_file_name(uri)).resolve())
        if expected is not None:
            _verify(uri, local, expected)
        paths = tuple(_move_into(staging, directory))
        done = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not done and created:
            with contextlib.suppress(OSError):
                directory.rmdir()
    return Fetched(uri, paths, stat.is_directory, stat.size, expected)


def _verify(uri: str, local: str, expected: Digest) -> None:
    found = LocalStore().digest(local, expected.algorithm).digest
    if found != expected:
        raise CommandError(
            f"digest mismatch for {uri}: expected {expected}, the download has {found}; "
            "removed what was downloaded"
        )


def _move_into(staging: Path, directory: Path) -> list[Path]:
    """Moves every entry of `staging` into `directory`, replacing entries of the same name."""
    moved = []
    for entry in sorted(staging.iterdir()):
        target = directory / entry.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        entry.rename(target)
        moved.append(target)
    return moved


def _fetch(args: argparse.Namespace) -> int:
    try:
        expected = parse_digest(args.digest) if args.digest else None
        parse_uri(args.uri)
    except (InvalidDigest, InvalidURI) as error:
        raise UsageError(str(error)) from None
    try:
        fetched = fetch(args.uri, args.directory, expected)
    except ArtifactNotFound as error:
        raise NotFound(str(error)) from None
    except StoreError as error:
        raise CommandError(f"cannot fetch {args.uri}: {error}") from None
    except OSError as error:
        raise CommandError(f"cannot write to {args.directory}: {error}") from None
    kind = "directory" if fetched.is_directory else "file"
    check = f"digest {fetched.digest} verified" if fetched.digest else "no digest: not verified"
    target = args.directory if fetched.is_directory else fetched.paths[0]
    print(f"fetched {fetched.uri} ({kind}, {fetched.size} bytes) to {target}; {check}")
    return 0
