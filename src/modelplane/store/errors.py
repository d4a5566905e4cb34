"""Exceptions raised by the artifact store.

The split that matters to callers is between a *verdict* and a *failure to reach one*.
`ArtifactNotFound` and `ManifestError` say something definite about the artifact (it is missing,
or its files cannot be named portably), so the operator may report `ArtifactVerified=False`.
`StoreUnavailable` (and its subclass `StoreAccessDenied`) says only that the store could not be
asked: the caller retries with backoff and never reports the artifact verified or missing.
"""

from __future__ import annotations

# The names read as verdicts ("ArtifactNotFound", "StoreUnavailable") in handler code and
# conditions; an "Error" suffix would add nothing, hence the N818 waivers below.


class StoreError(Exception):
    """Base class of every error the artifact store raises."""


class InvalidURI(StoreError, ValueError):  # noqa: N818
    """An artifact URI that cannot be parsed, or that does not fit the operation."""


class UnsupportedScheme(InvalidURI):
    """An artifact URI whose scheme (such as ``gs://``) has no backend yet."""


class InvalidDigest(StoreError, ValueError):  # noqa: N818
    """A digest string that is not ``<algorithm>:<hex>`` with a supported algorithm."""


class InvalidStoreConfig(StoreError, ValueError):  # noqa: N818
    """A store setting from the environment that cannot be used (a non-numeric timeout, ...)."""


class ManifestError(StoreError):
    """A directory artifact whose file names cannot go into a portable manifest."""


class ArtifactNotFound(StoreError):  # noqa: N818
    """The artifact (object, prefix, file, directory or bucket) does not exist."""

    def __init__(self, uri: str, detail: str = "") -> None:
        self.uri = uri
        message = f"artifact not found at {uri}"
        super().__init__(f"{message}: {detail}" if detail else message)


class StoreUnavailable(StoreError):  # noqa: N818
    """The store could not be reached or failed transiently; retry later with backoff."""


class StoreAccessDenied(StoreUnavailable):
    """The store refused our credentials or permissions.

    Kept under `StoreUnavailable` because it is no verdict on the artifact: S3 answers 403 rather
    than 404 for a missing key when the caller lacks ``s3:ListBucket``, and a fixed Secret makes
    the next retry succeed.
    """
