"""Rendering command results: kubectl-style tables, trees, ages, and JSON or YAML for scripts.

Every read command of the CLI builds plain data first (rows of strings for a table, a `Node`
tree, a JSON-ready dict) and hands it here to become text. Nothing in this module does I/O, so
what users see is unit-tested without a cluster.

Tables look like `kubectl get`: upper-case headers, columns padded and separated by three
spaces, `<none>` for a missing value. `-o json` and `-o yaml` print the same information as
typed data (numbers stay numbers, missing values are null) for scripts.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import yaml

OutputFormat = Literal["table", "json", "yaml"]
FORMATS: tuple[OutputFormat, ...] = ("table", "json", "yaml")

NONE = "<none>"
"""What a table shows for a missing value, as `kubectl get` does."""

_COLUMN_GAP = "   "


def add_output_argument(parser: argparse.ArgumentParser) -> None:
    """The `-o/--output` option shared by the read commands."""
    parser.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default="table",
        help="output format: a readable table (default), or json / yaml for scripts",
    )


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table with left-aligned columns and no trailing spaces.

    Headers are printed as given (commands pass them in upper case, as kubectl does, except
    where they are object names). Every row must have as many cells as there are headers.
    """
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"row {list(row)!r} has {len(row)} cells, expected {len(headers)}")
    lines = [list(headers), *[list(row) for row in rows]]
    widths = [max(len(line[index]) for line in lines) for index in range(len(headers))]
    return "\n".join(
        _COLUMN_GAP.join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in lines
    )


def render_fields(fields: Sequence[tuple[str, str]]) -> str:
    """`Name:  value` lines with the values aligned, as `kubectl describe` prints them."""
    if not fields:
        return ""
    width = max(len(name) for name, _ in fields) + 1
    return "\n".join(f"{(name + ':').ljust(width)}  {value}".rstrip() for name, value in fields)


def render_data(data: Any, output: OutputFormat) -> str:
    """`data` (JSON-ready: dicts, lists, strings, numbers, booleans, None) as JSON or YAML."""
    if output == "json":
        return json.dumps(data, indent=2, sort_keys=False, allow_nan=False)
    if output == "yaml":
        return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip("\n")
    raise ValueError(f"render_data renders json or yaml, not {output!r}")


def format_number(value: float | None) -> str:
    """A metric value, short but exact enough to compare: at most 6 significant digits."""
    if value is None:
        return NONE
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return f"{value:.6g}"


def format_value(value: str | None) -> str:
    """A string cell: `<none>` when missing or empty."""
    return value if value else NONE


def format_age(created: datetime | None, now: datetime) -> str:
    """The age of an object the way kubectl prints it: 45s, 5m12s, 3h20m, 4d, 2y30d."""
    if created is None:
        return NONE
    return human_duration((now - created).total_seconds())


def human_duration(seconds: float) -> str:
    """kubectl's `duration.HumanDuration`: precise for recent times, coarse for old ones."""
    if seconds < -1:
        return "<invalid>"
    total = max(int(seconds), 0)
    minutes, hours, days = total // 60, total // 3600, total // 86400
    years = days // 365
    # (while this holds, print the large unit, then the remainder in the small unit unless 0)
    forms = (
        (total < 120, f"{total}s", 0, ""),
        (minutes < 10, f"{minutes}m", total % 60, "s"),
        (minutes < 180, f"{minutes}m", 0, ""),
        (hours < 8, f"{hours}h", minutes % 60, "m"),
        (hours < 48, f"{hours}h", 0, ""),
        (hours < 192, f"{days}d", hours % 24, "h"),
        (days < 730, f"{days}d", 0, ""),
        (years < 8, f"{years}y", days % 365, "d"),
    )
    for applies, large, rest, unit in forms:
        if applies:
            return f"{large}{rest}{unit}" if rest else large
    return f"{years}y"


def format_time(value: datetime | None) -> str:
    """An RFC 3339 timestamp in UTC with seconds, as Kubernetes shows them."""
    if value is None:
        return NONE
    text = value.isoformat(timespec="seconds")
    return text.replace("+00:00", "Z")


@dataclass
class Node:
    """One line of a tree and the lines below it."""

    label: str
    children: list[Node] = field(default_factory=list)

    def add(self, label: str, children: Sequence[Node] = ()) -> Node:
        """Appends a child and returns it, so branches can be built in place."""
        child = Node(label, list(children))
        self.children.append(child)
        return child


def render_tree(root: Node) -> str:
    """The tree with box-drawing branches, as `tree` and `cargo tree` draw it."""
    lines = [root.label]
    _render_children(root.children, "", lines)
    return "\n".join(lines)


def _render_children(children: Sequence[Node], prefix: str, lines: list[str]) -> None:
    for index, child in enumerate(children):
        last = index == len(children) - 1
        lines.append(f"{prefix}{'└── ' if last else '├── '}{child.label}")
        _render_children(child.children, prefix + ("    " if last else "│   "), lines)


def strip_managed_fields(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of an API object without metadata.managedFields, which `kubectl get` also hides."""
    copied = dict(obj)
    metadata = copied.get("metadata")
    if isinstance(metadata, Mapping) and "managedFields" in metadata:
        copied["metadata"] = {k: v for k, v in metadata.items() if k != "managedFields"}
    return copied
