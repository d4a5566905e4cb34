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
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client, config
from pydantic import ValidationError

from modelplane.api import GROUP, VERSION, ModelStage, model_stage_name, model_version_name
from modelplane.core.conditions import ConditionType, find_condition

PLURAL = "modelstages"
_POLL_SECONDS = 1.0
_ATTEMPTS = 5


class PromotionError(RuntimeError):
    """The command cannot do what was asked; the message says why."""


def register(commands: Any) -> None:
    promote = commands.add_parser(
        "promote", help="set a ModelStage's spec.version: promote a version to a stage"
    )
    promote.add_argument("model", help="model name, e.g. churn-model")
    promote.add_argument("stage", help="stage name, e.g. Production")
    promote.add_argument("version", type=_version, help="the version to make live")
    _common(promote)
    promote.set_defaults(run=_promote)
    rollback = commands.add_parser(
        "rollback", help="set a ModelStage's spec.version back to its previous version"
    )
    rollback.add_argument("model", help="model name, e.g. churn-model")
    rollback.add_argument("stage", help="stage name, e.g. Production")
    _common(rollback)
    rollback.set_defaults(run=_rollback)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--namespace", help="namespace (default: the kubeconfig context's, else default)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait up to SECONDS for the version to go live (default: do not wait)",
    )


def _version(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("versions start at 1")
    return value


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
    api, namespace = _connect(args.namespace)
    version_name = model_version_name(args.model, args.version)
    if _get(api, namespace, "modelversions", version_name) is None:
        raise PromotionError(f"ModelVersion {version_name} does not exist in namespace {namespace}")
    return change_version(
        api,
        namespace,
        model_stage_name(args.model, args.stage),
        lambda _: args.version,
        verb="promote",
        wait=args.wait,
    )


def _rollback(args: argparse.Namespace) -> int:
    api, namespace = _connect(args.namespace)
    return change_version(
        api,
        namespace,
        model_stage_name(args.model, args.stage),
        rollback_target,
        verb="rollback",
        wait=args.wait,
    )


def change_version(
    api: Any,
    namespace: str,
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
        stage = _get_stage(api, namespace, name)
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
        patch = {
            "metadata": {"resourceVersion": stage.metadata.resource_version},
            "spec": {"version": version},
        }
        try:
            updated = api.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, patch
            )
        except client.ApiException as error:
            if error.status == 409:
                continue
            raise PromotionError(_refusal(error, name)) from None
        generation = int((updated.get("metadata") or {}).get("generation") or 0)
        print(f"modelstage {name}: spec.version {before} -> {version} ({verb})")
        break
    else:
        raise PromotionError(f"ModelStage {name} kept changing while the command ran; run it again")
    if wait <= 0:
        return 0
    return _wait(api, namespace, name, version=version, generation=generation, limit=wait)


def _wait(
    api: Any, namespace: str, name: str, *, version: int, generation: int, limit: float
) -> int:
    deadline = time.monotonic() + limit
    while True:
        obj = _get(api, namespace, PLURAL, name)
        if obj is None:
            raise PromotionError(f"ModelStage {name} was deleted")
        outcome = wait_outcome(_parse(obj), version, generation)
        if outcome is not None:
            succeeded, message = outcome
            print(message, file=sys.stdout if succeeded else sys.stderr)
            return 0 if succeeded else 1
        if time.monotonic() >= deadline:
            print(f"timed out after {limit:g}s: version {version} is not live yet", file=sys.stderr)
            return 2
        time.sleep(_POLL_SECONDS)


# -- API access -----------------------------------------------------------------------------


def _connect(namespace: str | None) -> tuple[Any, str]:
    """A CustomObjectsApi and the namespace to use (the context's when none is given)."""
    try:
        config.load_incluster_config()
        default = _in_cluster_namespace()
    except config.ConfigException:
        # The client reads KUBECONFIG once, at import; read it now so the current one counts.
        path = os.environ.get("KUBECONFIG") or None
        config.load_kube_config(config_file=path)
        _, context = config.list_kube_config_contexts(config_file=path)
        default = ((context or {}).get("context") or {}).get("namespace") or "default"
    return client.CustomObjectsApi(), namespace or default


def _in_cluster_namespace() -> str:
    path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
    try:
        with open(path, encoding="utf-8") as file:  # noqa: PTH123 - one small file
            return file.read().strip() or "default"
    except OSError:
        return "default"


def _get(api: Any, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = api.get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return found


def _get_stage(api: Any, namespace: str, name: str) -> ModelStage:
    obj = _get(api, namespace, PLURAL, name)
    if obj is None:
        raise PromotionError(f"ModelStage {name} does not exist in namespace {namespace}")
    return _parse(obj)


def _parse(obj: Mapping[str, Any]) -> ModelStage:
    try:
        return ModelStage.from_object(obj)
    except ValidationError as error:
        name = (obj.get("metadata") or {}).get("name")
        raise PromotionError(f"ModelStage {name} does not parse: {error}") from None


def _refusal(error: client.ApiException, name: str) -> str:
    body = error.body if isinstance(error.body, str) else ""
    try:
        status = json.loads(body)
    except ValueError:
        status = None
    message = status.get("message") if isinstance(status, dict) else body
    return f"the API server refused the change of ModelStage {name}: {message or error.reason}"
