"""Parsing artifact URIs: s3:// keys verbatim, file:// paths percent-decoded, others refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelplane.store import (
    FileLocation,
    InvalidURI,
    S3Location,
    UnsupportedScheme,
    file_uri,
    parse_uri,
)


def test_parses_an_s3_object_uri() -> None:
    location = parse_uri("s3://models/churn-model/3/model.pkl")
    assert location == S3Location("models", "churn-model/3/model.pkl")
    assert not location.is_prefix
    assert location.uri == "s3://models/churn-model/3/model.pkl"


def test_a_trailing_slash_or_bare_bucket_names_a_prefix() -> None:
    assert parse_uri("s3://models/churn-model/3/").is_prefix
    assert parse_uri("s3://models/").is_prefix
    assert parse_uri("s3://models") == S3Location("models", "")


def test_keeps_s3_keys_verbatim() -> None:
    """Like the AWS CLI: '?', '#', '%' and spaces belong to the key."""
    location = parse_uri("s3://data/a b/%41?x=1#frag")
    assert isinstance(location, S3Location)
    assert location.key == "a b/%41?x=1#frag"


def test_child_and_as_prefix_build_keys_under_a_prefix() -> None:
    location = S3Location("models", "m/3")
    assert location.as_prefix() == S3Location("models", "m/3/")
    assert location.child("weights/a.bin").uri == "s3://models/m/3/weights/a.bin"
    assert S3Location("models", "").child("x").uri == "s3://models/x"


@pytest.mark.parametrize(
    "uri",
    [
        "s3://",
        "s3:///key",
        "s3://ab/key",
        "s3://Upper/key",
        "s3://under_score/key",
        "s3://-leading/key",
        "s3://double..dot/key",
        "s3:/bucket/key",
        "s3://" + "a" * 64 + "/key",
    ],
)
def test_rejects_malformed_s3_uris(uri: str) -> None:
    with pytest.raises(InvalidURI):
        parse_uri(uri)


def test_rejects_s3_keys_over_1024_bytes() -> None:
    with pytest.raises(InvalidURI, match="longer than 1024"):
        parse_uri("s3://bucket/" + "é" * 513)


def test_gs_uris_are_not_supported_yet_with_a_hint() -> None:
    with pytest.raises(UnsupportedScheme, match=r"gs:// .* not supported yet"):
        parse_uri("gs://bucket/model.pkl")


@pytest.mark.parametrize("uri", ["https://example.com/m.pkl", "hdfs://nn/m", "az://c/m"])
def test_other_schemes_are_unsupported(uri: str) -> None:
    with pytest.raises(UnsupportedScheme, match="not supported"):
        parse_uri(uri)


@pytest.mark.parametrize("uri", ["/abs/path", "models/3", ""])
def test_a_uri_without_scheme_is_rejected_with_examples(uri: str) -> None:
    with pytest.raises(InvalidURI, match="s3://BUCKET/KEY or file:///"):
        parse_uri(uri)


@pytest.mark.parametrize(
    ("uri", "path"),
    [
        ("file:///srv/models/m.pkl", "/srv/models/m.pkl"),
        ("file://localhost/srv/m.pkl", "/srv/m.pkl"),
        ("file:/srv/m.pkl", "/srv/m.pkl"),
        ("FILE:///srv/m.pkl", "/srv/m.pkl"),
        ("file:///srv/a%20b/%23x%3F.pkl", "/srv/a b/#x?.pkl"),
    ],
)
def test_parses_file_uris(uri: str, path: str) -> None:
    assert parse_uri(uri) == FileLocation(Path(path))


def test_a_file_uri_with_trailing_slash_names_a_directory() -> None:
    location = parse_uri("file:///srv/models/3/")
    assert location == FileLocation(Path("/srv/models/3"), is_prefix=True)
    assert location.uri == "file:///srv/models/3/"


@pytest.mark.parametrize(
    "uri",
    ["file://otherhost/srv/m", "file:relative/m", "file:///srv/m?x=1", "file:///srv/m#frag"],
)
def test_rejects_remote_relative_and_ambiguous_file_uris(uri: str) -> None:
    with pytest.raises(InvalidURI):
        parse_uri(uri)


def test_file_uri_needs_an_absolute_path() -> None:
    with pytest.raises(InvalidURI, match="absolute"):
        file_uri(Path("relative/m.pkl"))


@given(
    st.lists(
        st.text(
            st.characters(codec="utf-8", exclude_characters="/\x00", exclude_categories=["Cs"]),
            min_size=1,
            max_size=12,
        ).filter(lambda name: name not in (".", "..")),
        min_size=1,
        max_size=4,
    )
)
def test_file_uri_round_trips_any_path(names: list[str]) -> None:
    """Paths holding '#', '?', '%', spaces or non-ASCII survive file_uri then parse_uri."""
    path = Path("/", *names)
    assert parse_uri(file_uri(path)) == FileLocation(path)
    assert parse_uri(file_uri(path, directory=True)) == FileLocation(path, is_prefix=True)
