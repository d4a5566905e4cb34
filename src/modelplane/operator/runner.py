"""Starting the operator: parse the command line, register handlers, serve metrics, run kopf."""

from __future__ import annotations

import argparse
import importlib
import logging
from collections.abc import Sequence

import kopf

from modelplane import metrics

# Importing a module registers its kopf handlers; this is the whole operator.
HANDLER_MODULES = (
    "modelplane.operator.settings",
    "modelplane.operator.runs",
    "modelplane.operator.experiments",
    "modelplane.operator.modelversions",
    "modelplane.operator.modelstages",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The operator's options, shared by `python -m modelplane.operator` and the CLI."""
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch this namespace (repeatable; globs allowed); default: all namespaces",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch all namespaces")
    parser.add_argument(
        "--metrics-port", type=int, default=8080, help="Prometheus metrics port (0: off)"
    )
    parser.add_argument(
        "--liveness",
        default=None,
        metavar="URL",
        help="serve a liveness probe, e.g. http://0.0.0.0:8081/healthz",
    )
    parser.add_argument(
        "--peering",
        default=None,
        metavar="NAME",
        help="coordinate replicas through this kopf peering object (default: standalone)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for module in HANDLER_MODULES:
        importlib.import_module(module)
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelplane-operator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
