"""Starting the operator: parse the command line, register handlers, serve metrics, run kopf."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import kopf

from modelplane import metrics
from modelplane.operator import memdiag, webhookcerts, webhooks

# Importing a module registers its kopf handlers; this is the whole operator.
HANDLER_MODULES = (
    "modelplane.operator.settings",
    "modelplane.operator.runs",
    "modelplane.operator.experiments",
    "modelplane.operator.runfinalizers",
    "modelplane.operator.versionstages",
    "modelplane.operator.modelversions",
    "modelplane.operator.modelstages",
    "modelplane.operator.admission",
)

PEERING_LIFETIME = 15
"""Seconds a replica's peering entry counts as alive (kopf's default is 60). A standby replica
takes over at most this long after the active one dies without a word (SIGKILL, a lost node).
kopf renews the entry 5-10 s before it lapses, so 15 s means a keep-alive every 5-10 s."""
MIN_PEERING_LIFETIME = 10
"""Below this, kopf's renewal (the lifetime less 5-10 s, at least 1 s) comes every second,
and a replica's entry can lapse over a slow API request or a few seconds of clock skew."""


def peering_lifetime(text: str) -> int:
    """The --peering-lifetime argument: whole seconds, at least MIN_PEERING_LIFETIME."""
    try:
        seconds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of seconds: {text!r}") from None
    if seconds < MIN_PEERING_LIFETIME:
        raise argparse.ArgumentTypeError(
            f"{seconds}s is too short: at least {MIN_PEERING_LIFETIME}s, since kopf renews "
            "the entry 5-10 s before it lapses"
        )
    return seconds


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
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority: the replica with the highest one works, the others wait "
        "(default: random, so that replicas never tie; kopf pauses all replicas that tie)",
    )
    parser.add_argument(
        "--peering-lifetime",
        type=peering_lifetime,
        default=PEERING_LIFETIME,
        metavar="SECONDS",
        help="how long a replica's peering entry counts as alive without a keep-alive: a "
        "standby takes over at most this long after the active replica dies "
        f"(default {PEERING_LIFETIME}, at least {MIN_PEERING_LIFETIME})",
    )
    parser.add_argument(
        "--webhook",
        choices=webhooks.MODES,
        default=os.environ.get("MODELPLANE_WEBHOOK") or "off",
        help="admission webhooks for ModelStages: off, local (127.0.0.1, for an operator "
        "beside the API server) or service (in a pod, behind --webhook-service); "
        "default: $MODELPLANE_WEBHOOK or off",
    )
    parser.add_argument(
        "--webhook-port",
        type=int,
        default=os.environ.get("MODELPLANE_WEBHOOK_PORT") or None,
        help="webhook port; default: $MODELPLANE_WEBHOOK_PORT, else a free port (local) or "
        f"{webhooks.DEFAULT_SERVICE_PORT} (service)",
    )
    parser.add_argument(
        "--webhook-service",
        default=os.environ.get("MODELPLANE_WEBHOOK_SERVICE"),
        metavar="NAMESPACE/NAME",
        help="the Service the API server calls in service mode; "
        "default: $MODELPLANE_WEBHOOK_SERVICE",
    )
    parser.add_argument(
        "--webhook-cert-dir",
        type=Path,
        default=os.environ.get("MODELPLANE_WEBHOOK_CERT_DIR") or None,
        metavar="DIR",
        help="service mode: serve with DIR/tls.crt and DIR/tls.key (and check them against "
        "DIR/ca.crt), re-read when they change, and leave the webhook configurations to the "
        "installation; default: $MODELPLANE_WEBHOOK_CERT_DIR, else make a CA at start and "
        "let the operator register the configurations",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def peering_priority(requested: int | None) -> int:
    """The given priority, or a random one: equal priorities make kopf pause every replica."""
    if requested is not None:
        return requested
    return secrets.randbelow(1_000_000) + 1


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        webhook = webhooks.WebhookConfig.of(
            args.webhook,
            args.webhook_port,
            args.webhook_service,
            args.namespace,
            cert_dir=args.webhook_cert_dir,
        )
        if webhook.cert_dir is not None:
            # Fail here, with the file's name, rather than in kopf's startup retries.
            webhookcerts.read_certificate(webhook.cert_dir, webhook.called_as())
    except ValueError as exc:
        raise SystemExit(f"modelplane-operator: {exc}") from None
    for module in HANDLER_MODULES:
        importlib.import_module(module)
    # Off unless MODELPLANE_MEMORY_DIAG names a directory (see the module).
    memdiag.start_from_env()
    if args.metrics_port:
        metrics.serve(args.metrics_port)
    # The startup handler in modelplane.operator.settings sets the rest on the same object.
    settings = kopf.OperatorSettings()
    settings.peering.lifetime = args.peering_lifetime
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.peering is None,
        peering_name=args.peering,
        priority=peering_priority(args.priority),
        liveness_endpoint=args.liveness,
        settings=settings,
        memo=kopf.Memo(webhook=webhook),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="modelplane-operator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
