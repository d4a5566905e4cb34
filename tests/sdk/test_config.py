"""SDK settings: the environment, and the namespace of the kubeconfig's context."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelplane.sdk.config import Settings
from modelplane.sdk.kube import default_namespace


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings(
        namespace=None,
        artifact_root=None,
        experiment="default",
        flush_interval=5.0,
        flush_points=10_000,
    )


def test_reads_the_environment() -> None:
    settings = Settings.from_env(
        {
            "MODELPLANE_NAMESPACE": "ml",
            "MODELPLANE_ARTIFACT_ROOT": "s3://mlruns",
            "MODELPLANE_EXPERIMENT": "churn",
            "MODELPLANE_FLUSH_INTERVAL": "0.5",
            "MODELPLANE_FLUSH_POINTS": "100",
        }
    )
    assert settings == Settings("ml", "s3://mlruns", "churn", 0.5, 100)


@pytest.mark.parametrize("value", ["0", "-1", "soon"])
def test_refuses_flush_settings_that_are_not_positive_numbers(value: str) -> None:
    with pytest.raises(ValueError, match="MODELPLANE_FLUSH_INTERVAL must be a positive float"):
        Settings.from_env({"MODELPLANE_FLUSH_INTERVAL": value})


def kubeconfig(path: Path, contexts: dict[str, str | None], current: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {
                        "name": name,
                        "context": {
                            "cluster": "c",
                            "user": "u",
                            **({"namespace": ns} if ns else {}),
                        },
                    }
                    for name, ns in contexts.items()
                ],
                "current-context": current,
            }
        )
    )
    return path


def test_namespace_comes_from_the_current_or_named_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", {"dev": "ml-dev", "prod": "ml", "bare": None}, "dev")
    assert default_namespace(path) == "ml-dev"
    assert default_namespace(path, "prod") == "ml"
    assert default_namespace(path, "bare") == "default"
