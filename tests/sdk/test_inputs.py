"""Data input digests: DVC md5s, S3 ETags and sha256s map to <algorithm>:<hex>."""

from __future__ import annotations

import base64
import hashlib

import pytest

from modelplane.sdk.errors import InvalidDigestError
from modelplane.sdk.inputs import data_digest

MD5 = hashlib.md5(b"data", usedforsecurity=False).hexdigest()
SHA256 = hashlib.sha256(b"data").hexdigest()


@pytest.mark.parametrize(
    ("given", "recorded"),
    [
        (MD5, f"md5:{MD5}"),  # a DVC .dvc file's md5
        (f'"{MD5}"', f"md5:{MD5}"),  # an S3 ETag as S3 returns it, quotes included
        (MD5.upper(), f"md5:{MD5}"),
        (SHA256, f"sha256:{SHA256}"),  # sha256sum output
        (f"sha256:{SHA256.upper()}", f"sha256:{SHA256}"),
        (f"md5:{MD5}", f"md5:{MD5}"),
        ("a" * 40, "sha1:" + "a" * 40),
        ("b" * 128, "sha512:" + "b" * 128),
        (base64.b64encode(bytes.fromhex(SHA256)).decode(), f"sha256:{SHA256}"),  # ChecksumSHA256
        (f"  {MD5}\n", f"md5:{MD5}"),
    ],
)
def test_maps_known_digest_forms(given: str, recorded: str) -> None:
    assert data_digest(given) == recorded


def test_refuses_a_multipart_etag_which_is_not_a_content_digest() -> None:
    with pytest.raises(InvalidDigestError, match=r"multipart S3 upload.*digest=None"):
        data_digest(f'"{MD5}-12"')


def test_refuses_a_dvc_directory_hash() -> None:
    with pytest.raises(InvalidDigestError, match="DVC directory hash"):
        data_digest(f"{MD5}.dir")


@pytest.mark.parametrize(
    ("given", "match"),
    [
        (f"sha256:{MD5}", "32 hex digits; sha256 has 64"),
        ("a" * 33, "cannot read"),
        ("blake2b:" + "a" * 64, "cannot read"),
        ("", "cannot read"),
        ("z" * 32, "cannot read"),
    ],
)
def test_refuses_what_it_cannot_read(given: str, match: str) -> None:
    with pytest.raises(InvalidDigestError, match=match):
        data_digest(given)


def test_is_a_value_error_for_mlflow_style_handlers() -> None:
    with pytest.raises(ValueError, match="cannot read"):
        data_digest("nope")
