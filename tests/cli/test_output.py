"""Rendering of tables, fields, trees, ages and data (modelplane.cli.output)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from modelplane.cli.output import (
    Node,
    format_age,
    format_number,
    format_time,
    human_duration,
    render_data,
    render_fields,
    render_table,
    render_tree,
    strip_managed_fields,
)


def test_table_pads_columns_and_strips_trailing_spaces() -> None:
    text = render_table(
        ["NAME", "PHASE", "PARENT"], [["a", "Finished", ""], ["long-name", "Running", "a"]]
    )
    assert text.splitlines() == [
        "NAME        PHASE      PARENT",
        "a           Finished",
        "long-name   Running    a",
    ]


def test_table_without_rows_is_its_header() -> None:
    assert render_table(["NAME", "AGE"], []) == "NAME   AGE"


def test_table_refuses_a_row_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="2 cells, expected 3"):
        render_table(["A", "B", "C"], [["1", "2"]])


def test_fields_align_values() -> None:
    assert render_fields([("Name", "x"), ("Experiment", "churn")]).splitlines() == [
        "Name:        x",
        "Experiment:  churn",
    ]


def test_tree_draws_branches_and_continuations() -> None:
    root = Node("root")
    first = root.add("first")
    first.add("first.1")
    first.add("first.2")
    root.add("second").add("second.1")
    assert render_tree(root).splitlines() == [
        "root",
        "├── first",
        "│   ├── first.1",
        "│   └── first.2",
        "└── second",
        "    └── second.1",
    ]


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (5 * 60 + 12, "5m12s"),
        (10 * 60 + 12, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 20 * 60, "3h20m"),
        (47 * 3600, "47h"),
        (4 * 86400 + 5 * 3600, "4d5h"),
        (4 * 86400, "4d"),
        (400 * 86400, "400d"),
        (3 * 365 * 86400 + 30 * 86400, "3y30d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_durations_read_like_kubectl(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_age_is_measured_from_creation_and_missing_when_unknown() -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    assert format_age(now - timedelta(minutes=5, seconds=12), now) == "5m12s"
    assert format_age(None, now) == "<none>"


def test_numbers_are_short_but_distinct() -> None:
    assert format_number(0.87) == "0.87"
    assert format_number(0.123456789) == "0.123457"
    assert format_number(12.0) == "12"
    assert format_number(1e-9) == "1e-09"
    assert format_number(None) == "<none>"
    assert format_number(float("nan")) == "nan"


def test_times_are_utc_seconds_with_z() -> None:
    assert format_time(datetime(2025, 3, 1, 12, 0, 5, 123, tzinfo=UTC)) == "2025-03-01T12:00:05Z"


def test_data_renders_as_json_and_yaml_that_parse_back() -> None:
    data = {"name": "a", "value": 0.5, "missing": None, "items": [1, 2]}
    assert json.loads(render_data(data, "json")) == data
    assert yaml.safe_load(render_data(data, "yaml")) == data


def test_data_keeps_key_order_for_people_reading_yaml() -> None:
    assert render_data({"z": 1, "a": 2}, "yaml") == "z: 1\na: 2"


def test_managed_fields_are_left_out_without_touching_the_original() -> None:
    obj = {"metadata": {"name": "a", "managedFields": [{}]}, "spec": {}}
    assert strip_managed_fields(obj) == {"metadata": {"name": "a"}, "spec": {}}
    assert "managedFields" in obj["metadata"]
