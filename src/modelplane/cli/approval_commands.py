"""`modelplane approve MODEL STAGE VERSION [--comment C]`: approve a version for a stage.

An approval is an annotation on the ModelStage that only its author can write (see
`modelplane.core.approvals`): the key is `approval_key(<your username>)`, the value the JSON
`{"user", "version", "comment", "at"}`. The command asks the API server who you are with a
SelfSubjectReview (what `kubectl auth whoami` does), so the approval names the identity the
admission webhook will check, then merge-patches the annotation, guarded by the
resourceVersion it read so that a change of `spec.version` meanwhile fails the command.

It refuses, before writing, to approve a version other than the stage's `spec.version` or a
version you requested yourself. Anything else the API server refuses (the webhook's checks, a
missing `approve` RBAC verb) is printed as the API server's message, word for word.

Exit codes: 0 approved, 1 refused or failed, 2 usage, 3 the ModelStage not found.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from modelplane.api import ModelStage, model_stage_name
from modelplane.cli.arguments import version_number
from modelplane.cli.errors import CommandError, exits, with_exit_codes
from modelplane.cli.kubeaccess import add_connection_arguments, connect_from
from modelplane.cli.output import add_output_argument, render_data
from modelplane.core.approvals import (
    ApprovalChange,
    approvals_of,
    encode_approval,
    judge_approval_change,
    requested_by,
)


def register(commands: Any) -> None:
    summary = "approve a version of a model for a stage, as the user you are authenticated as"
    approve = with_exit_codes(commands.add_parser("approve", help=summary, description=summary))
    approve.add_argument("model", metavar="MODEL", help="model name, e.g. churn-model")
    approve.add_argument("stage", metavar="STAGE", help="stage name, e.g. Production")
    approve.add_argument(
        "version",
        metavar="VERSION",
        type=version_number,
        help="the version: the stage's spec.version",
    )
    approve.add_argument("--comment", "-m", help="why you approve, kept with the approval")
    add_connection_arguments(approve)
    add_output_argument(approve)
    approve.set_defaults(run=exits(_approve))


@dataclass(frozen=True)
class ApprovalWrite:
    """The annotation that records an approval, and the patch that writes it."""

    key: str
    value: str
    patch: dict[str, Any]


def plan_approval(
    stage: ModelStage, user: str, version: int, comment: str | None, now: datetime
) -> ApprovalWrite:
    """The patch that records `user`'s approval of `version`; CommandError when the stage
    cannot take it (another desired version, or the user requested this one)."""
    name = stage.metadata.name
    if version != stage.spec.version:
        raise CommandError(
            f"ModelStage {name} asks for version {stage.spec.version} (spec.version), not "
            f"{version}: only the desired version can be approved. To approve version "
            f"{version}, promote it first: modelplane promote {stage.spec.model} "
            f"{stage.spec.stage} {version}"
        )
    # `at` is stamped again by the mutating webhook; it is set here so that an approval
    # written where no webhook runs still holds a time and counts.
    key, value = encode_approval(user, version, comment=comment, at=now.replace(microsecond=0))
    annotations = stage.metadata.annotations or {}
    verdict = judge_approval_change(
        ApprovalChange(key, annotations.get(key), value),
        username=user,
        spec_version=stage.spec.version,
        requester=requested_by(annotations),
    )
    if verdict.denied is not None:
        raise CommandError(f"cannot approve ModelStage {name}: {verdict.denied}")
    patch = {
        "metadata": {
            "resourceVersion": stage.metadata.resource_version,
            "annotations": {key: value},
        }
    }
    return ApprovalWrite(key, value, patch)


def approval_count(stage: ModelStage) -> tuple[int, int | None]:
    """(approvals of the desired version by others than its requester, approvals required)."""
    annotations = stage.metadata.annotations
    requester = requested_by(annotations)
    approvers = {
        a.user for a in approvals_of(annotations, stage.spec.version) if a.user != requester
    }
    gates = stage.spec.gates
    required = gates.approvals.required if gates and gates.approvals else None
    return len(approvers), required


def _approve(args: argparse.Namespace) -> int:
    kube = connect_from(args)
    identity = kube.whoami()
    name = model_stage_name(args.model, args.stage)
    stage = kube.get(ModelStage, name)
    write = plan_approval(stage, identity.username, args.version, args.comment, datetime.now(UTC))
    updated = ModelStage.from_object(kube.patch(ModelStage, name, write.patch))
    count, required = approval_count(updated)
    if args.output != "table":
        record = {
            "modelStage": name,
            "namespace": kube.namespace,
            "model": stage.spec.model,
            "stage": stage.spec.stage,
            "version": args.version,
            "user": identity.username,
            "annotation": {write.key: (updated.metadata.annotations or {}).get(write.key)},
            "approvals": count,
            "required": required,
        }
        print(render_data(record, args.output))
        return 0
    needed = f" of {required} required" if required is not None else " (no approvals gate)"
    print(
        f"modelstage {name}: {identity.username} approved version {args.version} of "
        f"{stage.spec.model} for {stage.spec.stage}; approvals: {count}{needed}"
    )
    return 0
