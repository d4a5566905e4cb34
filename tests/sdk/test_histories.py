"""Metric history chunks: key encoding, chunk names and the JSON-lines format."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelplane.sdk.histories import (
    Metric,
    chunk_path,
    decode_key,
    decode_points,
    encode_key,
    encode_points,
    is_chunk_name,
)

metric_names = st.text(alphabet="abcXYZ019_-./ ", min_size=1, max_size=40)


@given(metric_names)
def test_a_key_encodes_to_one_safe_path_component_and_back(key: str) -> None:
    encoded = encode_key(key)
    assert "/" not in encoded
    assert "." not in encoded
    assert " " not in encoded
    assert decode_key(encoded) == key


def test_names_cannot_nest_or_escape() -> None:
    assert chunk_path("loss/train", 3) == "metrics/loss%2Ftrain/0000000003.jsonl"
    assert chunk_path("..", 1) == "metrics/%2E%2E/0000000001.jsonl"
    assert encode_key("val auc") == "val%20auc"


def test_chunk_names_sort_in_flush_order() -> None:
    names = [chunk_path("x", seq).rsplit("/", 1)[1] for seq in (1, 2, 10, 999, 10**9)]
    assert names == sorted(names)
    assert all(is_chunk_name(name) for name in names)
    assert not is_chunk_name("0001.jsonl")
    with pytest.raises(ValueError, match="out of range"):
        chunk_path("x", 0)


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2**62),
            st.integers(min_value=0, max_value=2**50),
            st.floats(allow_nan=False, allow_infinity=False),
        )
    )
)
def test_points_round_trip_exactly(points: list[tuple[int, int, float]]) -> None:
    data = encode_points(points)
    assert decode_points("m", data) == [Metric("m", v, t, s) for s, t, v in points]


def test_each_line_is_a_json_object() -> None:
    line = encode_points([(3, 1735689600000, 0.25)]).decode()
    assert json.loads(line) == {"step": 3, "timestamp": 1735689600000, "value": 0.25}
    assert line.endswith("\n")


def test_a_malformed_line_names_its_number() -> None:
    with pytest.raises(ValueError, match="malformed line 2"):
        decode_points("m", b'{"step":0,"timestamp":1,"value":1.0}\n{"step":1}\n')
