"""Writes the CRDs in crds/ from the pydantic models, or checks that they are current.

    uv run python -m modelplane.api.crdgen            # regenerate crds/*.yaml
    uv run python -m modelplane.api.crdgen --check    # exit 1 when crds/ is stale

`--check` is what CI and the test suite run: a model change without regenerated CRDs fails.
Files in the directory that no kind generates (`modelplane.io_*.yaml` only) count as stale too,
so a renamed kind does not leave its old CRD behind.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from modelplane.api.bases import GROUP
from modelplane.api.crds import rendered

# The repository root in a source checkout (src/modelplane/api/crdgen.py -> the root).
_ROOT = Path(__file__).resolve().parents[3]


def default_directory() -> Path:
    """crds/ of the source checkout this module lives in, else crds/ under the current one."""
    if (_ROOT / "pyproject.toml").is_file():
        return _ROOT / "crds"
    return Path("crds")


def stale_files(directory: Path, expected: dict[str, str]) -> list[str]:
    """Names of files in `directory` that differ from, are missing from, or are not in
    `expected`; only generated file names (`<group>_*.yaml`) are considered."""
    present = {path.name for path in directory.glob(f"{GROUP}_*.yaml")}
    stale = [
        name
        for name, text in expected.items()
        if name not in present or (directory / name).read_text() != text
    ]
    stale += sorted(present - expected.keys())
    return sorted(stale)


def write(directory: Path, expected: dict[str, str]) -> list[str]:
    """Brings `directory` up to date; returns the names of files written or removed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = stale_files(directory, expected)
    for name in changed:
        path = directory / name
        if name in expected:
            path.write_text(expected[name])
        else:
            path.unlink()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m modelplane.api.crdgen", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the files are stale; write nothing"
    )
    parser.add_argument(
        "--output", type=Path, default=None, help="directory of the CRDs (default: crds/)"
    )
    args = parser.parse_args(argv)
    directory: Path = args.output or default_directory()
    expected = rendered()
    if args.check:
        stale = stale_files(directory, expected) if directory.is_dir() else sorted(expected)
        for name in stale:
            print(f"stale: {directory / name}", file=sys.stderr)
        if stale:
            print("run: uv run python -m modelplane.api.crdgen", file=sys.stderr)
        return 1 if stale else 0
    for name in write(directory, expected):
        print(f"wrote {directory / name}" if name in expected else f"removed {directory / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
