"""The artifact store: model artifacts and metric histories in S3 (or S3-compatible) or on disk.

Open a store for a URI with `open_store`, then `stat`, `digest`, `put_*`, `get_to_path` and
`list` through the `ArtifactStore` interface. The operator calls `verify_artifact`, which returns
a verdict or raises `StoreUnavailable` when the store cannot be asked. Directory artifacts are
digested through a manifest defined in `modelplane.store.manifests`. Settings, credentials
included, come from the environment (`StoreConfig.from_env`), never from a resource's spec.
"""

from modelplane.store.artifacts import ArtifactStat, ArtifactStore, DigestResult, StoredObject
from modelplane.store.backends import open_store
from modelplane.store.config import StoreConfig
from modelplane.store.digests import (
    ALGORITHMS,
    DEFAULT_ALGORITHM,
    DEFAULT_CHUNK_SIZE,
    Digest,
    digest_bytes,
    parse_digest,
)
from modelplane.store.errors import (
    ArtifactNotFound,
    InvalidDigest,
    InvalidStoreConfig,
    InvalidURI,
    ManifestError,
    StoreAccessDenied,
    StoreError,
    StoreUnavailable,
    UnsupportedScheme,
)
from modelplane.store.files import LocalStore
from modelplane.store.manifests import Manifest, ManifestEntry
from modelplane.store.s3 import S3Store
from modelplane.store.uris import FileLocation, Location, S3Location, file_uri, parse_uri
from modelplane.store.verification import VerificationReason, VerificationResult, verify_artifact

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALGORITHM",
    "DEFAULT_CHUNK_SIZE",
    "ArtifactNotFound",
    "ArtifactStat",
    "ArtifactStore",
    "Digest",
    "DigestResult",
    "FileLocation",
    "InvalidDigest",
    "InvalidStoreConfig",
    "InvalidURI",
    "LocalStore",
    "Location",
    "Manifest",
    "ManifestEntry",
    "ManifestError",
    "S3Location",
    "S3Store",
    "StoreAccessDenied",
    "StoreConfig",
    "StoreError",
    "StoreUnavailable",
    "StoredObject",
    "UnsupportedScheme",
    "VerificationReason",
    "VerificationResult",
    "digest_bytes",
    "file_uri",
    "open_store",
    "parse_digest",
    "parse_uri",
    "verify_artifact",
]
