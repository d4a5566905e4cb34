"""Locating the control plane's binaries, building them on first use.

The build script pins every version and caches the binaries outside the repository, keyed by
version; this module runs it (its progress goes straight to the terminal) and reads back the
path of each binary.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

COMPONENTS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "etcd",
    "kwok",
    "minio",
)


class MissingToolError(RuntimeError):
    """A tool the build needs is not installed; the message says how to get it."""


@dataclass(frozen=True)
class Binaries:
    """Paths of the built binaries, by component name."""

    paths: dict[str, Path]

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]


def build_script() -> Path:
    """The packaged build script."""
    return Path(str(resources.files("modelplane.localcluster") / "build-binaries.sh"))


def ensure_binaries() -> Binaries:
    """Build whatever is missing (minutes on first use, a second afterwards)."""
    if shutil.which("bash") is None:
        raise MissingToolError("bash is required to build the control plane")
    if shutil.which("go") is None:
        raise MissingToolError(
            "Go >= 1.25 is required to build the local control plane: install it from "
            "https://go.dev/dl (or your distribution's golang package) and run again"
        )
    result = subprocess.run(  # noqa: S603 - our own script
        ["bash", str(build_script())],  # noqa: S607 - bash from PATH, checked above
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError("building the control plane binaries failed (see the messages above)")
    paths: dict[str, Path] = {}
    for line in result.stdout.splitlines():
        name, _, path = line.partition(" ")
        if name in COMPONENTS:
            paths[name] = Path(path)
    missing = [c for c in COMPONENTS if c not in paths or not paths[c].exists()]
    if missing:
        raise RuntimeError(f"the build script did not produce: {', '.join(missing)}")
    return Binaries(paths)
