"""What a running local cluster recorded: its ports, processes and S3 credentials.

`up` writes it, and every later command reads it to find the running cluster. It holds the
store's credentials, so it is readable by its owner only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from modelplane.localcluster.processes import Component


def cache_home() -> Path:
    """Where binaries and clusters live: $MODELPLANE_CACHE or ~/.cache/modelplane."""
    env = os.environ.get("MODELPLANE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "modelplane"


@dataclass
class S3Credentials:
    """The MinIO endpoint and its generated root credentials."""

    endpoint_url: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The environment variables the operator and SDK read."""
        return {
            "MODELPLANE_S3_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }


@dataclass
class ClusterState:
    """What `up` recorded, so later commands find the running cluster."""

    binaries: dict[str, str]
    ports: dict[str, int]
    components: list[Component] = field(default_factory=list)
    s3: S3Credentials | None = None

    @classmethod
    def load(cls, path: Path) -> ClusterState | None:
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(
            binaries=raw["binaries"],
            ports=raw["ports"],
            components=[Component(**c) for c in raw["components"]],
            s3=S3Credentials(**raw["s3"]) if raw.get("s3") else None,
        )

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))
        path.chmod(0o600)  # it holds the S3 credentials
