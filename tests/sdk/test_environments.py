"""The environment record: Python version, installed packages, and the image digest."""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

import pytest

from modelplane.api.fields import PINNED_IMAGE
from modelplane.sdk.environments import (
    detect_image,
    image_from_pod,
    installed_requirements,
    normalize_image_id,
    python_version,
)

DIGEST = "sha256:" + "a" * 64


def test_python_version_fits_the_api() -> None:
    assert re.match(r"^[0-9]+[.][0-9]+[.][0-9]+", python_version())


def test_requirements_list_installed_packages_as_pip_freeze_does() -> None:
    lines = installed_requirements().splitlines()
    assert f"pydantic=={metadata.version('pydantic')}" in lines
    pinned = [line.split("==")[0].lower() for line in lines if "==" in line]
    assert pinned == sorted(pinned)
    # This project is installed editable by uv: pip shows such installs as "-e <url>".
    assert any(line.startswith("-e file://") for line in lines)


@pytest.mark.parametrize(
    ("image_id", "pinned"),
    [
        (f"docker.io/library/python@{DIGEST}", f"docker.io/library/python@{DIGEST}"),
        (f"docker-pullable://python@{DIGEST}", f"python@{DIGEST}"),
        (DIGEST, None),  # a local image ID, not a pullable reference
        ("python:3.11", None),
        ("", None),
    ],
)
def test_normalizes_image_ids(image_id: str, pinned: str | None) -> None:
    assert normalize_image_id(image_id) == pinned


def pod(*containers: tuple[str, str]) -> dict[str, Any]:
    return {"status": {"containerStatuses": [{"name": n, "imageID": i} for n, i in containers]}}


def test_picks_the_named_container_or_the_only_one() -> None:
    single = pod(("train", f"reg.example.com/train@{DIGEST}"))
    assert image_from_pod(single, None) == f"reg.example.com/train@{DIGEST}"
    two = pod(("train", f"reg/train@{DIGEST}"), ("sidecar", f"reg/proxy@{DIGEST}"))
    assert image_from_pod(two, None) is None
    assert image_from_pod(two, "sidecar") == f"reg/proxy@{DIGEST}"


def test_modelplane_image_wins_when_pinned() -> None:
    def no_pod(namespace: str, name: str) -> None:
        raise AssertionError("the pod need not be read")

    image = f"reg.example.com/churn@{DIGEST}"
    assert detect_image({"MODELPLANE_IMAGE": image}, no_pod) == image
    assert re.match(PINNED_IMAGE, image)


def test_reads_its_own_pod_named_by_the_downward_api() -> None:
    asked: list[tuple[str, str]] = []

    def read_pod(namespace: str, name: str) -> dict[str, Any]:
        asked.append((namespace, name))
        return pod(("train", f"reg/train@{DIGEST}"))

    environ = {
        "MODELPLANE_IMAGE": "reg/train:latest",  # not pinned: ignored with a warning
        "MODELPLANE_POD_NAME": "train-abc",
        "MODELPLANE_POD_NAMESPACE": "ml",
    }
    assert detect_image(environ, read_pod) == f"reg/train@{DIGEST}"
    assert asked == [("ml", "train-abc")]


def test_outside_a_pod_there_is_no_image() -> None:
    assert detect_image({}, lambda namespace, name: None) is None
