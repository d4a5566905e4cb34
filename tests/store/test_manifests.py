"""The manifest digest of directory artifacts (pure: no files involved)."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelplane.store import Digest, Manifest, ManifestEntry, ManifestError

EMPTY = hashlib.sha256(b"").hexdigest()
ABC = hashlib.sha256(b"abc").hexdigest()


def test_digest_is_the_hash_of_sorted_tab_separated_lines() -> None:
    """The worked example of the module docstring, spelled out byte for byte."""
    manifest = Manifest.build(
        [ManifestEntry("model.pkl", 3, ABC), ManifestEntry("conf/params.json", 0, EMPTY)]
    )
    expected_text = f"conf/params.json\t0\t{EMPTY}\nmodel.pkl\t3\t{ABC}\n".encode()
    assert manifest.render() == expected_text
    assert manifest.digest == Digest("sha256", hashlib.sha256(expected_text).hexdigest())
    assert manifest.digest.hex == "c1d9b9d64e2133088ce55fb3988df89ba517afd593656ea29a3246852c772f47"
    assert manifest.size == 3


def test_sorts_by_utf8_bytes_of_the_path() -> None:
    """Upper case before lower case, '-' and '.' before '/', ASCII before non-ASCII."""
    paths = ["é.bin", "a/b", "a.b", "a-b", "B", "a", "~"]
    manifest = Manifest.build(ManifestEntry(path, 0, EMPTY) for path in paths)
    assert [entry.path for entry in manifest.entries] == [
        "B",
        "a",
        "a-b",
        "a.b",
        "a/b",
        "~",
        "é.bin",
    ]


@given(st.permutations(["weights/0.bin", "weights/1.bin", "config.json", "README", "tok/v.txt"]))
def test_the_order_files_are_found_in_does_not_matter(paths: list[str]) -> None:
    entries = [ManifestEntry(path, len(path), EMPTY) for path in paths]
    assert Manifest.build(entries).digest == Manifest.build(sorted(entries, key=str)).digest


@pytest.mark.parametrize(
    "changed",
    [
        [ManifestEntry("model.pkl", 4, ABC)],
        [ManifestEntry("model.pkl", 3, EMPTY)],
        [ManifestEntry("model.pickle", 3, ABC)],
        [ManifestEntry("model.pkl", 3, ABC), ManifestEntry("extra", 0, EMPTY)],
        [],
    ],
    ids=["size", "content", "name", "added-file", "removed-file"],
)
def test_any_change_of_size_content_or_names_changes_the_digest(
    changed: list[ManifestEntry],
) -> None:
    original = Manifest.build([ManifestEntry("model.pkl", 3, ABC)])
    assert Manifest.build(changed).digest != original.digest


def test_an_empty_manifest_hashes_the_empty_string() -> None:
    assert Manifest.build([]).digest == Digest("sha256", EMPTY)


@pytest.mark.parametrize(("algorithm", "length"), [("md5", 32), ("sha512", 128)])
def test_other_algorithms_hash_files_and_manifest_alike(algorithm: str, length: int) -> None:
    file_hex = hashlib.new(algorithm, b"abc").hexdigest()
    manifest = Manifest.build([ManifestEntry("m", 3, file_hex)], algorithm)
    assert len(manifest.digest.hex) == length
    assert manifest.digest.hex == hashlib.new(algorithm, f"m\t3\t{file_hex}\n".encode()).hexdigest()


def test_rejects_a_file_digest_of_another_algorithm() -> None:
    with pytest.raises(ManifestError, match="not a lower-case hex md5 digest"):
        Manifest.build([ManifestEntry("m", 3, ABC)], "md5")


@pytest.mark.parametrize(
    "path",
    ["", "/abs", "a//b", "a/", "./a", "a/./b", "../a", "a/../b", "tab\tname", "new\nline", "\x7f"],
)
def test_rejects_paths_that_are_not_portable(path: str) -> None:
    with pytest.raises(ManifestError):
        Manifest.build([ManifestEntry(path, 0, EMPTY)])


def test_rejects_a_path_that_is_not_utf8() -> None:
    """os.walk hands undecodable file names over as surrogate escapes."""
    with pytest.raises(ManifestError, match="UTF-8"):
        Manifest.build([ManifestEntry("caf\udce9", 0, EMPTY)])


def test_rejects_duplicate_paths() -> None:
    with pytest.raises(ManifestError, match="twice"):
        Manifest.build([ManifestEntry("a", 0, EMPTY), ManifestEntry("a", 0, EMPTY)])


@pytest.mark.parametrize(
    "entry",
    [
        ManifestEntry("a", -1, EMPTY),
        ManifestEntry("a", 0, EMPTY.upper()),
        ManifestEntry("a", 0, ""),
    ],
)
def test_rejects_negative_sizes_and_malformed_hex(entry: ManifestEntry) -> None:
    with pytest.raises(ManifestError):
        Manifest.build([entry])
