"""Choosing the backend for an artifact URI by its scheme.

`open_store` is the one place that maps schemes to backends. S3 stores are cached per
`StoreConfig` because building a boto3 client costs tens of milliseconds and clients are
thread-safe; the operator can call `open_store` on every reconcile.
"""

from __future__ import annotations

import functools

from modelplane.store.artifacts import ArtifactStore
from modelplane.store.config import StoreConfig
from modelplane.store.files import LocalStore
from modelplane.store.s3 import S3Store
from modelplane.store.uris import S3Location, parse_uri


def open_store(uri: str, config: StoreConfig | None = None) -> ArtifactStore:
    """The store that serves ``uri``: `S3Store` for ``s3://``, `LocalStore` for ``file://``.

    ``config`` defaults to `StoreConfig.from_env()`. Raises `UnsupportedScheme` for ``gs://`` and
    other schemes, `InvalidURI` for malformed URIs, `InvalidStoreConfig` for bad settings.
    """
    location = parse_uri(uri)
    if config is None:
        config = StoreConfig.from_env()
    if isinstance(location, S3Location):
        return _s3_store(config)
    return LocalStore(chunk_size=config.chunk_size)


@functools.lru_cache(maxsize=8)
def _s3_store(config: StoreConfig) -> S3Store:
    return S3Store(config)
