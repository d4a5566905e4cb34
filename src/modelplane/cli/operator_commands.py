"""`modelplane operator [options]`: run the operator in the foreground.

The same program as `python -m modelplane.operator`, with the same options (they are defined
once, in `modelplane.operator.runner`): watch namespaces with `-n` (repeatable, globs such as
`!kube-*` allowed) or all of them, serve Prometheus metrics, a liveness probe and, optionally,
the admission webhooks. It runs until interrupted; it exits 1 when it cannot start.
"""

from __future__ import annotations

from typing import Any

from modelplane.cli.errors import with_exit_codes
from modelplane.operator import runner


def register(commands: Any) -> None:
    summary = "run the modelplane operator (kopf) against the current kubeconfig or in a pod"
    parser = with_exit_codes(commands.add_parser("operator", help=summary, description=summary))
    runner.add_arguments(parser)
    parser.set_defaults(run=runner.run)
