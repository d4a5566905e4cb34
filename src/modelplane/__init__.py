"""modelplane: the machine-learning model lifecycle as Kubernetes resources.

The package itself is the tracking SDK's fluent API (`modelplane.start_run`,
`modelplane.log_metric`, ...; see `modelplane.sdk`). Importing it loads neither kopf nor the
operator.
"""

# The SDK's public surface (its __all__) is the package's; a star import keeps the two in step.
from modelplane.sdk import *  # noqa: F403

__version__ = "0.1.0"
