"""Store settings, read from the process environment.

Credentials reach the store only through the environment of the operator, SDK or init container
(a Kubernetes Secret mapped to env vars) or, when none are set, boto3's default chain (IRSA / pod
identity, instance profile). A resource's spec never carries them.

=============================== ===========================================================
variable                        meaning
=============================== ===========================================================
MODELPLANE_S3_ENDPOINT_URL      S3-compatible endpoint (MinIO, Ceph, ...); unset means AWS
AWS_ACCESS_KEY_ID               access key; unset means boto3's default credential chain
AWS_SECRET_ACCESS_KEY           secret key; required with AWS_ACCESS_KEY_ID
AWS_SESSION_TOKEN               optional session token for temporary credentials
AWS_REGION                      region (falls back to AWS_DEFAULT_REGION, then us-east-1)
MODELPLANE_S3_ADDRESSING_STYLE  path | virtual | auto; default path with an endpoint, else auto
MODELPLANE_S3_CONNECT_TIMEOUT   seconds to open a connection (default 5)
MODELPLANE_S3_READ_TIMEOUT      seconds to wait on one socket read (default 30)
MODELPLANE_S3_MAX_ATTEMPTS      attempts per request, first one included (default 3)
=============================== ===========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from modelplane.store.digests import DEFAULT_CHUNK_SIZE
from modelplane.store.errors import InvalidStoreConfig

AddressingStyle = Literal["path", "virtual", "auto"]
_ADDRESSING_STYLES: tuple[AddressingStyle, ...] = ("path", "virtual", "auto")


@dataclass(frozen=True)
class StoreConfig:
    """How to reach the artifact store. Secrets are kept out of ``repr`` so logs never hold them."""

    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    region: str = "us-east-1"
    addressing_style: AddressingStyle | None = None
    # Bounded so an unreachable store fails in seconds (the operator then retries with backoff)
    # instead of hanging a handler; the read timeout bounds one socket read, not a whole download.
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    max_attempts: int = 3
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        if self.endpoint_url is not None and not self.endpoint_url.startswith(
            ("http://", "https://")
        ):
            raise InvalidStoreConfig(
                f"MODELPLANE_S3_ENDPOINT_URL must start with http:// or https://, "
                f"got {self.endpoint_url!r}"
            )
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise InvalidStoreConfig(
                "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or neither"
            )
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise InvalidStoreConfig("store timeouts must be positive")
        if self.max_attempts < 1:
            raise InvalidStoreConfig("MODELPLANE_S3_MAX_ATTEMPTS must be at least 1")
        if self.chunk_size < 1:
            raise InvalidStoreConfig("chunk_size must be positive")

    @property
    def effective_addressing_style(self) -> AddressingStyle:
        """Path style for S3-compatible endpoints, which rarely have wildcard DNS for buckets."""
        if self.addressing_style is not None:
            return self.addressing_style
        return "path" if self.endpoint_url else "auto"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StoreConfig:
        """Read the settings from ``environ`` (default: the process environment).

        Empty variables count as unset. Raises `InvalidStoreConfig` on unusable values.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        style = get("MODELPLANE_S3_ADDRESSING_STYLE")
        if style is not None and style not in _ADDRESSING_STYLES:
            raise InvalidStoreConfig(
                f"MODELPLANE_S3_ADDRESSING_STYLE must be one of {', '.join(_ADDRESSING_STYLES)}, "
                f"got {style!r}"
            )
        defaults = cls()
        return cls(
            endpoint_url=get("MODELPLANE_S3_ENDPOINT_URL"),
            access_key_id=get("AWS_ACCESS_KEY_ID"),
            secret_access_key=get("AWS_SECRET_ACCESS_KEY"),
            session_token=get("AWS_SESSION_TOKEN"),
            region=get("AWS_REGION") or get("AWS_DEFAULT_REGION") or defaults.region,
            addressing_style=style,
            connect_timeout=_number(
                env, "MODELPLANE_S3_CONNECT_TIMEOUT", float, defaults.connect_timeout
            ),
            read_timeout=_number(env, "MODELPLANE_S3_READ_TIMEOUT", float, defaults.read_timeout),
            max_attempts=_number(env, "MODELPLANE_S3_MAX_ATTEMPTS", int, defaults.max_attempts),
        )


_N = TypeVar("_N", int, float)


def _number(env: Mapping[str, str], name: str, kind: type[_N], default: _N) -> _N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise InvalidStoreConfig(f"{name} must be a {kind.__name__}, got {raw!r}") from None
