"""Mapping the digests people have for their data to the ``<algorithm>:<hex>`` form of a Run.

`data_digest` accepts what data tools publish:

===================================== ==================================================
given                                 recorded as
===================================== ==================================================
``md5:<hex>``, ``sha1:``, ``sha256:``, the same, hex lower-cased
``sha512:``
32 hex digits (a DVC ``md5``, the       ``md5:<hex>``
ETag of a single-part S3 upload, with
or without its quotes)
40 / 64 / 128 hex digits                ``sha1:`` / ``sha256:`` / ``sha512:`` (``sha256sum``)
44 characters of base64 ending ``=``    ``sha256:<hex>`` (S3's ``ChecksumSHA256``)
===================================== ==================================================

Refused, because they are not a digest of the data's content and nobody could check them:

* an ETag of a multipart upload, ``<32 hex>-<parts>``: it is the MD5 of the parts' MD5s, so it
  changes with the part size while the data stays the same;
* a DVC directory hash, ``<32 hex>.dir``: the MD5 of DVC's listing file, not of the data.

For those, pass ``digest=None`` to `log_input`, and the SDK streams the data from the store and
records its sha256 (or its manifest digest, for a directory).
"""

from __future__ import annotations

import base64
import binascii
import re

from modelplane.sdk.errors import InvalidDigestError

_HEX_ALGORITHMS = {32: "md5", 40: "sha1", 64: "sha256", 128: "sha512"}
_LENGTHS = {algorithm: length for length, algorithm in _HEX_ALGORITHMS.items()}
_PREFIXED = re.compile(r"^(md5|sha1|sha256|sha512):([0-9A-Fa-f]+)$")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")
_MULTIPART_ETAG = re.compile(r"^[0-9A-Fa-f]{32}-[0-9]+$")
_DVC_DIR = re.compile(r"^[0-9A-Fa-f]{32}\.dir$")
_BASE64_SHA256 = re.compile(r"^[A-Za-z0-9+/]{43}=$")

_COMPUTE_HINT = "pass digest=None to have the SDK compute the data's sha256 from the store"


def data_digest(text: str) -> str:
    """The ``<algorithm>:<lower-case hex>`` form of ``text``; raises `InvalidDigestError`."""
    given = text.strip().strip('"')
    prefixed = _PREFIXED.match(given)
    if prefixed is not None:
        algorithm, hex_ = prefixed.group(1), prefixed.group(2).lower()
        if len(hex_) != _LENGTHS[algorithm]:
            raise InvalidDigestError(
                f"digest {text!r} has {len(hex_)} hex digits; {algorithm} has {_LENGTHS[algorithm]}"
            )
        return f"{algorithm}:{hex_}"
    if _MULTIPART_ETAG.match(given):
        raise InvalidDigestError(
            f"{text!r} is the ETag of a multipart S3 upload: an MD5 of the parts' MD5s, which "
            f"depends on the part size and is not a digest of the content; {_COMPUTE_HINT}"
        )
    if _DVC_DIR.match(given):
        raise InvalidDigestError(
            f"{text!r} is a DVC directory hash: the MD5 of DVC's listing file, not of the "
            f"data; {_COMPUTE_HINT}"
        )
    if _HEX.match(given) and len(given) in _HEX_ALGORITHMS:
        return f"{_HEX_ALGORITHMS[len(given)]}:{given.lower()}"
    if _BASE64_SHA256.match(given):
        try:
            raw = base64.b64decode(given, validate=True)
        except binascii.Error:
            raw = b""
        if len(raw) == 32:
            return f"sha256:{raw.hex()}"
    raise InvalidDigestError(
        f"cannot read {text!r} as a digest: give <algorithm>:<hex> (md5, sha1, sha256, sha512), "
        "bare hex of one of those lengths (a DVC md5, an S3 ETag, sha256sum output) or S3's "
        f"base64 ChecksumSHA256; or {_COMPUTE_HINT}"
    )
