"""`modelplane promote` and `modelplane rollback`: move a ModelStage to another version.

The operator never writes a ModelStage's spec (it would fight Argo CD and Flux over it), so a
promotion or a manual rollback is a change of `spec.version` made by a person; these commands
make it for them:

- `modelplane promote MODEL STAGE VERSION` sets `spec.version` to VERSION;
- `modelplane rollback MODEL STAGE` sets it to `status.previousVersion`, the version live before
  the current one. When `spec.version` is not the live version (a promotion held by its gates
  or rolled back automatically), it is set back to the live version instead: rolling back
  undoes the pending change, not the one before it.

Both are JSON merge patches of `spec.version` guarded by the resourceVersion that was read, so a
change made meanwhile by someone else fails the command rather than being overwritten. The
admission webhook records who asked (`modelplane.io/requested-by`) and checks the gates at once;
the operator does the rest and reports it in status. With `--wait SECONDS` the command follows
the stage until the version is live, or the promotion is held or fails.

Exit codes: 0 done (and live, with --wait), 1 refused, held, failed or timed out, 2 usage,
3 the ModelStage or ModelVersion not found.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from kubernetes import client

from modelplane.api import (
    GROUP,
    VERSION,
    ModelStage,
    ModelVersion,
    model_stage_name,
    model_version_name,
)
from modelplane.cli.arguments import version_number
from modelplane.cli.errors import CommandError, NotFound, exits, with_exit_codes
from modelplane.cli.kubeaccess import Kube, add_connection_arguments, api_error, connect_from
from modelplane.core.conditions import ConditionType, find_condition

_POLL_SECONDS = 1.0
_ATTEMPTS = 5


class PromotionError(CommandError):
    """The command cannot do what was asked; the message says why."""


class Conflict(Exception):  # noqa: N818 - the API server's name for it
    """The ModelStage changed between the read and the write (409)."""


class Stages(Protocol):
    """Reading a ModelStage and writing its spec.version (the API, or a fake in tests)."""

    def read(self, name: str) -> ModelStage: ...

    def set_version(self, name: str, version: int, resource_version: str | None) -> int:
        """Merge-patch spec.version as of `resource_version`; returns the new generation.
        Raises Conflict when the object changed meanwhile."""
        ...


@dataclass(frozen=True)
class KubeStages:
    """`Stages` through the API server."""

    kube: Kube

    def read(self, name: str) -> ModelStage:
        return self.kube.get(ModelStage, name)

    def set_version(self, name: str, version: int, resource_version: str | None) -> int:
        patch = {"metadata": {"resourceVersion": resource_version}, "spec": {"version": version}}
        try:
            updated = client.CustomObjectsApi(self.kube.api_client).patch_namespaced_custom_object(
                GROUP, VERSION, self.kube.namespace, ModelStage.crd.plural, name, patch
            )
        except client.ApiException as error:
            if error.status == 409:
                raise Conflict(name) from None
            if error.status == 404:
                namespace = self.kube.namespace
                raise NotFound(f"ModelStage {name} not found in namespace {namespace}") from None
            raise api_error(error, f"the API server refused the change of {name}") from None
        return int((updated.get("metadata") or {}).get("generation") or 0)


def register(commands: Any) -> None:
    summary = "set a ModelStage's spec.version: promote a version to a stage"
    promote = with_exit_codes(commands.add_parser("promote", help=summary, description=summary))
    promote.add_argument("model", metavar="MODEL", help="model name, e.g. churn-model")
    promote.add_argument("stage", metavar="STAGE", help="stage name, e.g. Production")
    promote.add_argument(
        "version", metavar="VERSION", type=version_number, help="the version to serve"
    )
    _common(promote)
    promote.set_defaults(run=exits(_promote))
    summary = "set a ModelStage's spec.version back to the version live before"
    rollback = with_exit_codes(commands.add_parser("rollback", help=summary, description=summary))
    rollback.add_argument("model", metavar="MODEL", help="model name, e.g. churn-model")
    rollback.add_argument("stage", metavar="STAGE", help="stage name, e.g. Production")
    _common(rollback)
    rollback.set_defaults(run=exits(_rollback))


def _common(parser: argparse.ArgumentParser) -> None:
    add_connection_arguments(parser)
    parser.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait up to SECONDS for the version to go live (default: do not wait)",
    )


# -- decisions (pure) -----------------------------------------------------------------------


def rollback_target(stage: ModelStage) -> int:
    """The version `modelplane rollback` sets: the live one when spec.version is not live (a
    pending or failed promotion), else the previous one. PromotionError when there is none."""
    status = stage.status
    live = status.live_version if status else None
    name = stage.metadata.name
    if live is not None and stage.spec.version != live:
        return live
    previous = status.previous_version if status else None
    if previous is None:
        raise PromotionError(
            f"ModelStage {name} has no previous version to roll back to "
            f"(status.previousVersion is not set; live version: {live or 'none'})"
        )
    return previous


def wait_outcome(stage: ModelStage, version: int, generation: int) -> tuple[bool, str] | None:
    """(succeeded, message) once `version` is live or the stage is Stalled at `generation` or
    later; None while undecided."""
    status = stage.status
    if status is None or (status.observed_generation or 0) < generation:
        return None
    ready = find_condition(status.conditions, ConditionType.READY)
    if status.live_version == version and ready is not None and ready.status == "True":
        return True, f"version {version} is live in {stage.spec.stage}"
    stalled = find_condition(status.conditions, ConditionType.STALLED)
    if stalled is not None and stalled.status == "True":
        return False, f"{stalled.reason}: {stalled.message}"
    return None


# -- commands -------------------------------------------------------------------------------


def _promote(args: argparse.Namespace) -> int:
    kube = connect_from(args)
    version_name = model_version_name(args.model, args.version)
    if kube.find(ModelVersion, version_name) is None:
        raise NotFound(f"ModelVersion {version_name} not found in namespace {kube.namespace}")
    name = model_stage_name(args.model, args.stage)
    return change_version(
        KubeStages(kube), name, lambda _: args.version, verb="promote", wait=args.wait
    )


def _rollback(args: argparse.Namespace) -> int:
    name = model_stage_name(args.model, args.stage)
    stages = KubeStages(connect_from(args))
    return change_version(stages, name, rollback_target, verb="rollback", wait=args.wait)


def change_version(
    stages: Stages,
    name: str,
    choose: Callable[[ModelStage], int],
    *,
    verb: str,
    wait: float,
) -> int:
    """Set spec.version to `choose(stage)`, guarded by the resourceVersion read.

    The operator writes the status often (a rollout in progress), which changes the
    resourceVersion too: such a conflict is retried from a fresh read. A change of the spec
    made meanwhile (a new generation) is not: the command stops and says so.
    """
    first: ModelStage | None = None
    for _attempt in range(_ATTEMPTS):
        stage = stages.read(name)
        if first is None:
            first = stage
        elif stage.metadata.generation != first.metadata.generation:
            raise PromotionError(
                f"ModelStage {name} was changed meanwhile (spec.version is now "
                f"{stage.spec.version}); look at it and run the command again"
            )
        version = choose(stage)
        before = stage.spec.version
        if before == version:
            print(f"modelstage {name}: spec.version is already {version}")
            generation = stage.metadata.generation or 0
            break
        try:
            generation = stages.set_version(name, version, stage.metadata.resource_version)
        except Conflict:
            continue
        print(f"modelstage {name}: spec.version {before} -> {version} ({verb})")
        break
    else:
        raise PromotionError(f"ModelStage {name} kept changing while the command ran; run it again")
    if wait <= 0:
        return 0
    return _wait(stages, name, version=version, generation=generation, limit=wait)


def _wait(stages: Stages, name: str, *, version: int, generation: int, limit: float) -> int:
    deadline = time.monotonic() + limit
    while True:
        outcome = wait_outcome(stages.read(name), version, generation)
        if outcome is not None:
            succeeded, message = outcome
            if not succeeded:
                raise PromotionError(f"version {version} is not live: {message}")
            print(message)
            return 0
        if time.monotonic() >= deadline:
            raise PromotionError(f"timed out after {limit:g}s: version {version} is not live yet")
        time.sleep(_POLL_SECONDS)
