"""Fixtures for the packaging tests: the pinned tools, and the chart and kustomize base rendered.

The tools come from `scripts/install-tools.sh`; these tests only look them up (`--check`) and
fail, naming the script, when one is missing. Nothing here is skipped.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "modelplane"
MANIFESTS = REPO / "manifests"
INSTALL_TOOLS = REPO / "scripts" / "install-tools.sh"


@dataclass(frozen=True)
class Tools:
    """Paths of the packaging tools, as `scripts/install-tools.sh --check` prints them."""

    lua: Path
    lua51: Path
    helm: Path
    kustomize: Path
    hadolint: Path

    def run(self, tool: Path, *args: str, input: str | None = None) -> str:
        """Run a tool; a failure raises with its output."""
        result = subprocess.run(
            [str(tool), *args], input=input, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise AssertionError(
                f"{tool.name} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def run_unchecked(self, tool: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a tool and return what it did, failure included."""
        return subprocess.run([str(tool), *args], capture_output=True, text=True, check=False)

    def helm_template(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        release: str = "modelplane",
        namespace: str = "modelplane-system",
        crds: bool = True,
    ) -> list[dict[str, Any]]:
        """`helm template` of the chart with `values`, as a list of objects."""
        args = ["template", release, str(CHART), "--namespace", namespace]
        if crds:
            args.append("--include-crds")
        if values:
            args += ["--values", "-"]
        return objects(self.run(self.helm, *args, input=yaml.safe_dump(dict(values or {}))))

    def helm_template_error(self, values: Mapping[str, Any]) -> str:
        """The error `helm template` stops with for `values` (fails when it renders)."""
        result = subprocess.run(
            [str(self.helm), "template", "modelplane", str(CHART), "--values", "-"],
            input=yaml.safe_dump(dict(values)),
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0, f"rendered although it should not:\n{result.stdout}"
        return result.stderr

    def kustomize_build(self, directory: Path) -> list[dict[str, Any]]:
        """`kustomize build` of a directory, as a list of objects."""
        return objects(self.run(self.kustomize, "build", str(directory)))


def objects(text: str) -> list[dict[str, Any]]:
    """The objects of a multi-document YAML stream, empty documents left out."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(objs: Sequence[Mapping[str, Any]], kind: str, name: str | None = None) -> list[Any]:
    """Objects of `kind` (and `name`)."""
    return [
        o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objs: Sequence[Mapping[str, Any]], kind: str, name: str | None = None) -> Any:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="session")
def tools() -> Tools:
    result = subprocess.run(
        ["bash", str(INSTALL_TOOLS), "--check"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"packaging tools are missing; run scripts/install-tools.sh:\n{result.stderr}"
        )
    paths = dict(line.split(" ", 1) for line in result.stdout.splitlines() if line)
    return Tools(
        lua=Path(paths["lua5.4"]),
        lua51=Path(paths["lua5.1"]),
        helm=Path(paths["helm"]),
        kustomize=Path(paths["kustomize"]),
        hadolint=Path(paths["hadolint"]),
    )
