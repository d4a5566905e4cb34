"""Recording the software environment of a run: Python version, platform, packages, image.

* Python: `platform.python_version()` (``3.11.7``), reduced to ``major.minor.micro`` when it
  carries a suffix the API does not accept (``3.14.0+``).
* Platform: `platform.platform()` (``Linux-6.8.0-x86_64-with-glibc2.39``), recorded as the
  Run tag ``modelplane.io/platform`` (the Run's environment has no field for it yet).
* Packages: what ``pip freeze`` prints, read from the installed distributions' metadata
  (`importlib.metadata`) rather than by running pip, which environments made by uv or
  conda often lack: ``name==version``, ``name @ url`` for a direct URL install and
  ``-e url`` for an editable one, sorted by name. Stored as an artifact; the Run's
  ``environment.requirements`` is its URI.
* Image, when the run executes in a container: ``MODELPLANE_IMAGE`` if it is pinned by digest
  (``registry/name@sha256:<64 hex>``; set it in the pod template or at build time). Otherwise,
  in a pod, the SDK reads its own pod's ``status.containerStatuses[].imageID`` (the digest the
  kubelet actually pulled), given the pod's name and namespace through the downward API::

      env:
      - {name: MODELPLANE_POD_NAME, valueFrom: {fieldRef: {fieldPath: metadata.name}}}
      - {name: MODELPLANE_POD_NAMESPACE, valueFrom: {fieldRef: {fieldPath: metadata.namespace}}}
      - {name: MODELPLANE_CONTAINER_NAME, value: train}   # only needed with several containers

  The pod's service account then needs ``get`` on ``pods``. Without either, no image is
  recorded.
"""

from __future__ import annotations

import json
import logging
import platform
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any

from modelplane.api.fields import PINNED_IMAGE

log = logging.getLogger(__name__)

_PYTHON = re.compile(r"^[0-9]+[.][0-9]+([.][0-9]+)?([a-z]+[0-9]*)?$")
_PINNED = re.compile(PINNED_IMAGE)
# Prefixes container runtimes put before an image reference in imageID.
_RUNTIME_PREFIXES = ("docker-pullable://", "docker://", "containerd://", "cri-o://")

ReadPod = Callable[[str, str], Mapping[str, Any] | None]


def python_version() -> str:
    version = platform.python_version()
    if _PYTHON.match(version):
        return version
    major, minor, micro = platform.python_version_tuple()
    return f"{major}.{minor}.{re.sub(r'[^0-9].*$', '', micro) or '0'}"


def platform_name() -> str:
    return platform.platform()[:512]


def _requirement_line(dist: metadata.Distribution) -> str:
    name, version = dist.metadata["Name"], dist.version
    direct = dist.read_text("direct_url.json")
    if direct:
        try:
            info = json.loads(direct)
        except ValueError:
            info = {}
        url = info.get("url")
        if url and info.get("dir_info", {}).get("editable"):
            return f"-e {url}"
        if url:
            return f"{name} @ {url}"
    return f"{name}=={version}"


def installed_requirements() -> str:
    """The installed packages, one per line, as `pip freeze` lists them."""
    lines: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        # The first distribution found on sys.path shadows later ones, as on import.
        lines.setdefault(name.lower(), _requirement_line(dist))
    return "".join(f"{lines[key]}\n" for key in sorted(lines))


def normalize_image_id(image_id: str) -> str | None:
    """``name@sha256:<hex>`` from a container status' imageID, or None when it names no
    pullable digest (a bare ``sha256:`` image ID is the local config digest, not the repo's)."""
    for prefix in _RUNTIME_PREFIXES:
        if image_id.startswith(prefix):
            image_id = image_id[len(prefix) :]
    return image_id if _PINNED.match(image_id) else None


def image_from_pod(pod: Mapping[str, Any], container: str | None) -> str | None:
    """The pinned image of ``container`` (or of the pod's only container) from its status."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if container is not None:
        statuses = [s for s in statuses if s.get("name") == container]
    if len(statuses) != 1:
        return None
    return normalize_image_id(str(statuses[0].get("imageID") or statuses[0].get("image_id", "")))


def detect_image(environ: Mapping[str, str], read_pod: ReadPod) -> str | None:
    """The run's container image pinned by digest, or None (see the module docstring)."""
    image = environ.get("MODELPLANE_IMAGE", "").strip()
    if image:
        if _PINNED.match(image):
            return image
        log.warning("MODELPLANE_IMAGE=%r is not pinned by digest (name@sha256:<hex>)", image)
    pod_name = environ.get("MODELPLANE_POD_NAME", "").strip()
    pod_namespace = environ.get("MODELPLANE_POD_NAMESPACE", "").strip()
    if not pod_name or not pod_namespace:
        return None
    pod = read_pod(pod_namespace, pod_name)
    found = image_from_pod(pod, environ.get("MODELPLANE_CONTAINER_NAME") or None) if pod else None
    if found is None:
        log.warning("could not read the image digest of pod %s/%s", pod_namespace, pod_name)
    return found
