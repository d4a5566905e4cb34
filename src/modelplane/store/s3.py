"""The ``s3://`` backend: AWS S3 and S3-compatible stores (MinIO, Ceph RGW, ...) through boto3.

``s3://bucket/key`` names an object; ``s3://bucket/prefix/`` names every object under the prefix
as a directory artifact. A URI without the trailing ``/`` names the object if there is one, else
the prefix ``key/``. Keys ending in ``/`` (directory markers left by consoles) are not files.

Every boto3 failure is translated at this boundary so callers see only store errors:

- no such key or bucket: `ArtifactNotFound` (a verdict);
- 403 / bad or missing credentials: `StoreAccessDenied` (no verdict: S3 answers 403 for a missing
  key when ``s3:ListBucket`` is not granted, and a fixed Secret makes a retry succeed);
- connection refused, timeouts, broken streams, 5xx and throttling once botocore's own retries are
  spent: `StoreUnavailable`;
- anything else S3 answers (a wrong region's redirect, a bad request): `StoreError`.

Local file errors while writing downloads are left as `OSError`: they are not the store's.
"""

from __future__ import annotations

import contextlib
import http.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

import boto3
import urllib3
import urllib3.exceptions
from boto3.exceptions import S3UploadFailedError
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
)

from modelplane.store.artifacts import ArtifactStat, DigestResult, StoredObject, directory_digest
from modelplane.store.config import StoreConfig
from modelplane.store.digests import StreamedHash, check_algorithm, hash_into, hash_stream
from modelplane.store.errors import (
    ArtifactNotFound,
    InvalidURI,
    StoreAccessDenied,
    StoreError,
    StoreUnavailable,
)
from modelplane.store.files import (
    check_source_directory,
    check_source_file,
    walk_files,
    write_atomically,
)
from modelplane.store.manifests import check_relative_path
from modelplane.store.uris import S3Location, parse_s3_uri

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

_MISSING_KEY_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_DENIED_CODES = frozenset(
    {
        "403",
        "AccessDenied",
        "AllAccessDisabled",
        "ExpiredToken",
        "InvalidAccessKeyId",
        "InvalidToken",
        "SignatureDoesNotMatch",
        "TokenRefreshRequired",
    }
)
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "XMinioServerNotInitialized",
    }
)


def botocore_config(config: StoreConfig) -> Config:
    """The botocore client settings: bounded timeouts, standard retries, addressing style."""
    # botocore >= 1.36 adds CRC checksums to every upload by default; several S3-compatible
    # stores reject or mishandle them, and our own digests cover integrity.
    checksums: Literal["when_supported", "when_required"] = (
        "when_required" if config.endpoint_url is not None else "when_supported"
    )
    return Config(
        region_name=config.region,
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        # "standard" retries connection errors, 5xx and throttling with jittered exponential
        # backoff; max_attempts counts the first try.
        retries={"max_attempts": config.max_attempts, "mode": "standard"},
        s3={"addressing_style": config.effective_addressing_style},
        tcp_keepalive=True,
        request_checksum_calculation=checksums,
        response_checksum_validation=checksums,
    )


def make_client(config: StoreConfig) -> S3Client:
    """A boto3 S3 client for ``config``; without keys, boto3's default credential chain."""
    session = boto3.session.Session(
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        aws_session_token=config.session_token,
        region_name=config.region,
    )
    return session.client("s3", endpoint_url=config.endpoint_url, config=botocore_config(config))


class S3Store:
    """`ArtifactStore` over ``s3://`` URIs. Thread-safe: boto3 clients are."""

    def __init__(self, config: StoreConfig, client: S3Client | None = None) -> None:
        self.config = config
        self.client = client if client is not None else make_client(config)

    def stat(self, uri: str) -> ArtifactStat:
        location = parse_s3_uri(uri)
        with self._translating(uri):
            if not location.is_prefix:
                try:
                    head = self.client.head_object(Bucket=location.bucket, Key=location.key)
                except ClientError as error:
                    if not _is_missing_key(error):
                        raise
                else:
                    return ArtifactStat(uri=uri, exists=True, size=head["ContentLength"], files=1)
        try:
            objects = [*self.list(uri)]
        except ArtifactNotFound as missing:
            return ArtifactStat(uri=uri, exists=False, detail=str(missing))
        if not objects:
            return ArtifactStat(uri=uri, exists=False, detail=_nothing_at(location))
        return ArtifactStat(
            uri=uri,
            exists=True,
            is_directory=True,
            size=sum(stored.size for stored in objects),
            files=len(objects),
        )

    def digest(self, uri: str, algorithm: str = "sha256") -> DigestResult:
        check_algorithm(algorithm)
        location = parse_s3_uri(uri)
        if not location.is_prefix:
            with self._translating(uri):
                try:
                    streamed = self._hash_object(location, algorithm)
                except ClientError as error:
                    if not _is_missing_key(error):
                        raise
                else:
                    return DigestResult(
                        uri=uri,
                        digest=streamed.digest,
                        size=streamed.bytes_read,
                        is_directory=False,
                        bytes_read=streamed.bytes_read,
                        reads=streamed.reads,
                    )
        objects = [*self.list(uri)]
        if not objects:
            raise ArtifactNotFound(uri, _nothing_at(location))
        with self._translating(uri):
            return directory_digest(
                uri,
                objects,
                lambda stored: self._hash_object(parse_s3_uri(stored.uri), algorithm),
                algorithm,
            )

    def put_file(self, source: Path, uri: str) -> ArtifactStat:
        location = _object_target(uri)
        check_source_file(source)
        size = source.stat().st_size
        with self._translating(uri):
            # upload_file switches to parallel multipart uploads for large files.
            self.client.upload_file(str(source), location.bucket, location.key)
        return ArtifactStat(uri=uri, exists=True, size=size, files=1)

    def put_bytes(self, data: bytes, uri: str) -> ArtifactStat:
        location = _object_target(uri)
        with self._translating(uri):
            self.client.put_object(Bucket=location.bucket, Key=location.key, Body=data)
        return ArtifactStat(uri=uri, exists=True, size=len(data), files=1)

    def put_directory(self, source: Path, uri: str) -> ArtifactStat:
        prefix = parse_s3_uri(uri).as_prefix()
        check_source_directory(source)
        size = files = 0
        for relative, path, file_size in walk_files(source):
            self.put_file(path, prefix.child(relative).uri)
            size += file_size
            files += 1
        return ArtifactStat(uri=uri, exists=True, is_directory=True, size=size, files=files)

    def get_to_path(self, uri: str, dest: Path) -> Path:
        location = parse_s3_uri(uri)
        if not location.is_prefix:
            with self._translating(uri):
                try:
                    write_atomically(dest, self._downloader(location))
                except ClientError as error:
                    if not _is_missing_key(error):
                        raise
                else:
                    return dest
        objects = [*self.list(uri)]
        if not objects:
            raise ArtifactNotFound(uri, _nothing_at(location))
        dest.mkdir(parents=True, exist_ok=True)
        with self._translating(uri):
            for stored in objects:
                # Refuses keys such as "a/../../etc/x" that would escape dest.
                relative = check_relative_path(stored.path)
                target = dest.joinpath(*relative.split("/"))
                write_atomically(target, self._downloader(parse_s3_uri(stored.uri)))
        return dest

    def list(self, prefix: str) -> Iterator[StoredObject]:
        location = parse_s3_uri(prefix).as_prefix()
        with self._translating(prefix):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=location.bucket, Prefix=location.key):
                for item in page.get("Contents", []):
                    key = item["Key"]
                    if key.endswith("/"):
                        continue
                    yield StoredObject(
                        uri=S3Location(location.bucket, key).uri,
                        path=key[len(location.key) :],
                        size=item["Size"],
                    )

    def _hash_object(self, location: S3Location, algorithm: str) -> StreamedHash:
        answer = self.client.get_object(Bucket=location.bucket, Key=location.key)
        body = answer["Body"]
        try:
            streams = _http_streams(body)
            if streams is None:
                return hash_stream(body.read, algorithm, self.config.chunk_size)
            pooled, response = streams
            length = answer["ContentLength"]
            streamed = self._hash_response(location, response, length, algorithm)
            if response.isclosed():  # read to the end: the connection can serve the next GET
                pooled.release_conn()
            return streamed
        finally:
            body.close()

    def _hash_response(
        self, location: S3Location, response: http.client.HTTPResponse, length: int, algorithm: str
    ) -> StreamedHash:
        """Hash a body straight from http.client, with the checks urllib3 and botocore would
        make: a broken or a short stream is the store's failure, never a digest."""
        chunk_size = max(1, min(self.config.chunk_size, length))
        try:
            # A second thread hashes while the socket is read, once there is more than a chunk.
            overlap = length > chunk_size
            streamed = hash_into(response.readinto, algorithm, chunk_size, overlap=overlap)
        except (OSError, http.client.HTTPException) as error:
            where = self._where(location.uri)
            raise StoreUnavailable(f"{where}: the download broke: {error!r}") from error
        if streamed.bytes_read != length:
            raise StoreUnavailable(
                f"{self._where(location.uri)}: the download ended after {streamed.bytes_read} "
                f"of {length} bytes"
            )
        return streamed

    def _downloader(self, location: S3Location) -> Callable[[IO[bytes]], None]:
        def download(out: IO[bytes]) -> None:
            body = self.client.get_object(Bucket=location.bucket, Key=location.key)["Body"]
            try:
                while chunk := body.read(self.config.chunk_size):
                    out.write(chunk)
            finally:
                body.close()

        return download

    @contextlib.contextmanager
    def _translating(self, uri: str) -> Iterator[None]:
        try:
            yield
        except StoreError:
            raise
        except S3UploadFailedError as error:
            # boto3 wraps the real cause of a failed upload_file in a message-only exception.
            cause = error.__context__
            if isinstance(cause, ClientError | BotoCoreError):
                raise self._translate(cause, uri) from error
            raise StoreUnavailable(f"upload to {uri} failed: {error}") from error
        except (ClientError, BotoCoreError, urllib3.exceptions.HTTPError) as error:
            raise self._translate(error, uri) from error
        except (ConnectionError, TimeoutError) as error:
            raise StoreUnavailable(f"{self._where(uri)}: {error}") from error

    def _translate(self, error: Exception, uri: str) -> StoreError:
        if isinstance(error, ClientError):
            return self._translate_answer(error, uri)
        if isinstance(
            error, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError
        ):
            return StoreAccessDenied(
                f"no usable S3 credentials for {uri}: set AWS_ACCESS_KEY_ID and "
                f"AWS_SECRET_ACCESS_KEY from a Secret, or give the pod an identity ({error})"
            )
        if isinstance(error, ParamValidationError):
            return InvalidURI(f"S3 rejected the location {uri}: {error}")
        return StoreUnavailable(f"{self._where(uri)}: {error}")

    def _translate_answer(self, error: ClientError, uri: str) -> StoreError:
        """Translate an error the store answered (as opposed to one of reaching it)."""
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "NoSuchBucket":
            bucket = parse_s3_uri(uri).bucket
            return ArtifactNotFound(uri, f"bucket {bucket!r} does not exist")
        if code in _MISSING_KEY_CODES or status == 404:
            return ArtifactNotFound(uri)
        if code in _DENIED_CODES or status == 403:
            return StoreAccessDenied(
                f"access to {uri} denied ({code or status}): check the store credentials and "
                "their policy (S3 also answers 403 for a missing key without s3:ListBucket)"
            )
        if status >= 500 or status in (408, 429) or code in _TRANSIENT_CODES:
            return StoreUnavailable(
                f"{self._where(uri)}: the store answered {status} {code}: {message}"
            )
        return StoreError(f"S3 refused the request for {uri}: {status} {code}: {message}")

    def _where(self, uri: str) -> str:
        endpoint = self.config.endpoint_url or f"AWS S3 ({self.config.region})"
        return f"cannot reach the artifact store at {endpoint} for {uri}"


def _http_streams(body: object) -> tuple[urllib3.HTTPResponse, http.client.HTTPResponse] | None:
    """The urllib3 response under botocore's ``StreamingBody`` and the http.client response
    under that, or None when the body is not built that way (another botocore or urllib3).

    botocore's and urllib3's ``readinto`` read a new bytes object of each chunk and copy it into
    the buffer; http.client's fills the buffer from the socket. Private attributes, so checked.
    """
    pooled = getattr(body, "_raw_stream", None)
    response = getattr(pooled, "_fp", None)
    if not isinstance(pooled, urllib3.HTTPResponse) or not isinstance(
        response, http.client.HTTPResponse
    ):
        return None
    if response.chunked or pooled.tell() != 0:
        return None
    return pooled, response


def _is_missing_key(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    return code in _MISSING_KEY_CODES


def _object_target(uri: str) -> S3Location:
    location = parse_s3_uri(uri)
    if location.is_prefix:
        raise InvalidURI(f"{uri} ends in '/'; an object needs a key")
    return location


def _nothing_at(location: S3Location) -> str:
    if location.is_prefix:
        return f"no objects under {location.uri}"
    return f"no object {location.uri} and no objects under {location.as_prefix().uri}"
