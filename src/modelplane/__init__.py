"""modelplane: the machine-learning model lifecycle as Kubernetes resources.

The package itself is the tracking SDK's fluent API (`modelplane.start_run`,
`modelplane.log_metric`, ...; see `modelplane.sdk`). The SDK is loaded on first use of one of
its names, so that importing a lower layer (`modelplane.api`, `modelplane.core`) does not pull
in the Kubernetes client and boto3, and the CLI starts quickly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # For type checkers and IDEs: the SDK's public surface is the package's.
    from modelplane.sdk import *  # noqa: F403

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    sdk = importlib.import_module("modelplane.sdk")
    if name in sdk.__all__:
        return getattr(sdk, name)
    raise AttributeError(f"module 'modelplane' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *importlib.import_module("modelplane.sdk").__all__})
