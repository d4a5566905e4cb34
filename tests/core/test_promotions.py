"""The decisions of a ModelStage reconciliation, from plain objects: hold, roll, follow, roll back.

Each test builds the world the operator would read, plans, and often plans again from the status
the first plan wrote, as the next reconciliation would: a plan applied to its own result must
change nothing (no write, no Event, no history entry), or the operator would wake itself forever.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelplane.api import GateResult, ModelStage, ModelVersion
from modelplane.core.approvals import approval_key
from modelplane.core.conditions import ConditionType, find_condition
from modelplane.core.deploymentstates import REVISION_ANNOTATION
from modelplane.core.promotions import (
    OWNED_FIELDS,
    Apply,
    Delete,
    MarkGood,
    Plan,
    World,
    gates_needed,
    needs_recheck,
    needs_replicasets,
    plan_stage,
)
from modelplane.core.rollouts import (
    LAST_GOOD_LABEL,
    TEMPLATE_HASH_ANNOTATION,
    VERSION_ANNOTATION,
    desired_deployment,
    owner_reference,
)
from modelplane.core.statuses import owned_patch

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
UID = "5a8e7c2e-4f0e-4d8c-9d3c-2b0b8c7e1a11"
DEPLOYMENT_UID = "9d2f7a61-3c55-4b7e-8f0a-6a1d2c3b4e5f"
DIGEST = "sha256:" + "a" * 64
TEMPLATE = {"spec": {"containers": [{"name": "server", "image": "serve:1"}]}}


def make_stage(
    version: int,
    *,
    status: dict[str, Any] | None = None,
    generation: int = 1,
    serving: bool = True,
    rollback: str = "automatic",
    template: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
) -> ModelStage:
    spec: dict[str, Any] = {"model": "churn", "stage": "Production", "version": version}
    if serving:
        spec["serving"] = {
            "replicas": 2,
            "progressDeadlineSeconds": 60,
            "rollback": rollback,
            "template": template or TEMPLATE,
        }
    obj: dict[str, Any] = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "ModelStage",
        "metadata": {
            "name": "churn-production",
            "namespace": "ml",
            "uid": UID,
            "generation": generation,
            "annotations": annotations or {"modelplane.io/requested-by": "alice"},
        },
        "spec": spec,
    }
    if status is not None:
        obj["status"] = status
    return ModelStage.from_object(obj)


def with_status(stage: ModelStage, plan: Plan) -> ModelStage:
    """The stage as the next reconciliation reads it, after the plan's status was written."""
    return stage.model_copy(update={"status": plan.status.model_copy(deep=True)})


def changed(stage: ModelStage, *, version: int | None = None, **spec: Any) -> ModelStage:
    """`stage` after a spec change: a new generation."""
    obj = stage.to_manifest()
    obj["metadata"]["generation"] += 1
    if version is not None:
        obj["spec"]["version"] = version
    obj["spec"]["serving"].update(spec)
    return ModelStage.from_object(obj)


def model_version(version: int, *, ready: bool = True, stalled: bool = False) -> ModelVersion:
    conditions = [
        {
            "type": "ArtifactVerified",
            "status": "True" if ready else "Unknown",
            "reason": "Verified" if ready else "Verifying",
            "message": "",
            "lastTransitionTime": "2025-06-01T11:00:00Z",
        },
        {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": "Reconciled" if ready else "Verifying",
            "message": "",
            "lastTransitionTime": "2025-06-01T11:00:00Z",
        },
    ]
    if stalled:
        conditions[0].update(status="False", reason="DigestMismatch")
        conditions.append(
            {
                "type": "Stalled",
                "status": "True",
                "reason": "DigestMismatch",
                "message": "digest differs",
                "lastTransitionTime": "2025-06-01T11:00:00Z",
            }
        )
    return ModelVersion.from_object(
        {
            "apiVersion": "modelplane.io/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": f"churn-v{version}", "namespace": "ml", "uid": f"mv-{version}"},
            "spec": {
                "model": "churn",
                "version": version,
                "artifact": {
                    "uri": f"s3://models/churn/{version}/",
                    "digest": DIGEST,
                },
            },
            "status": {"conditions": conditions},
        }
    )


def gate(passed: bool, *, type_: str = "Metric", observed: float = 0.9) -> GateResult:
    return GateResult.model_validate(
        {
            "name": "test_auc" if type_ == "Metric" else "Staging",
            "type": type_,
            "op": ">=",
            "value": 0.82 if type_ == "Metric" else 600,
            "observed": observed,
            "passed": passed,
            "message": f"observed {observed}",
        }
    )


def deployment_for(
    stage: ModelStage,
    version: int,
    *,
    phase: str = "Complete",
    good_hash: str | None = None,
) -> dict[str, Any]:
    """The Deployment the operator would have written for `version`, with a status."""
    body = desired_deployment(
        stage,
        version,
        f"s3://models/churn/{version}/",
        owner_reference(stage),
        artifact_digest=DIGEST,
    )
    body["metadata"].update(uid=DEPLOYMENT_UID, generation=3, resourceVersion="77")
    body["metadata"]["annotations"][REVISION_ANNOTATION] = "3"
    if good_hash is not None:
        body["metadata"].setdefault("labels", {})[LAST_GOOD_LABEL] = good_hash
    updated, available, reason = {
        "Complete": (2, 2, "NewReplicaSetAvailable"),
        "Progressing": (1, 1, "ReplicaSetUpdated"),
        "Failed": (1, 0, "ProgressDeadlineExceeded"),
    }[phase]
    body["status"] = {
        "observedGeneration": 3,
        "replicas": updated,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "conditions": [{"type": "Progressing", "reason": reason, "message": "timed out"}],
    }
    return body


def replicaset_of(deployment: dict[str, Any], revision: int) -> dict[str, Any]:
    template = copy.deepcopy(deployment["spec"]["template"])
    template["metadata"]["labels"]["pod-template-hash"] = f"h{revision}"
    return {
        "metadata": {
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [{"controller": True, "uid": DEPLOYMENT_UID}],
        },
        "spec": {"template": template},
    }


def template_hash_of(deployment: dict[str, Any]) -> str:
    return str(deployment["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION])


def condition(plan: Plan, type_: str) -> tuple[str, str] | None:
    found = find_condition(plan.status.conditions, type_)
    return (found.status, found.reason) if found else None


def assert_fixed_point(stage: ModelStage, world: World, later: datetime = NOW) -> None:
    """Planning again from the status a plan wrote changes nothing and says nothing."""
    plan = plan_stage(stage, world, now=later)
    current = stage.status.to_dict() if stage.status else None
    assert owned_patch(current, plan.status, OWNED_FIELDS) is None
    assert plan.notes == ()
    assert plan.entries == ()


def live_stage(version: int = 1, **kwargs: Any) -> tuple[ModelStage, dict[str, Any]]:
    """A stage with `version` live and its complete Deployment."""
    stage = make_stage(version, **kwargs)
    deployment = deployment_for(stage, version)
    world = World(target=model_version(version), gates=[], deployment=None)
    first = plan_stage(stage, world, now=NOW)
    stage = with_status(stage, first)
    deployment["metadata"].setdefault("labels", {})[LAST_GOOD_LABEL] = template_hash_of(deployment)
    done = plan_stage(stage, World(target=model_version(version), deployment=deployment), now=NOW)
    return with_status(stage, done), deployment


# -- a promotion ----------------------------------------------------------------------------


def test_a_new_stage_creates_its_deployment_and_reports_progress() -> None:
    stage = make_stage(1)
    plan = plan_stage(stage, World(target=model_version(1), gates=[gate(True)]), now=NOW)
    assert isinstance(plan.action, Apply)
    assert plan.action.create
    assert (
        plan.action.body["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION] == "1"
    )
    assert plan.status.rollout is not None
    assert plan.status.rollout.phase == "Progressing"
    assert plan.status.rollout.version == 1
    assert plan.status.gates_version == 1
    assert plan.status.gates_summary == "1/1"
    assert condition(plan, ConditionType.GATES_PASSED) == ("True", "AllGatesPassed")
    assert condition(plan, ConditionType.READY) == ("False", "RolloutProgressing")
    assert condition(plan, ConditionType.RECONCILING) == ("True", "RolloutProgressing")
    assert condition(plan, ConditionType.ROLLED_OUT) == ("False", "RolloutProgressing")
    assert plan.status.observed_generation == 1
    assert plan.status.live_version is None
    assert [note.reason for note in plan.notes] == ["RolloutProgressing"]


def test_a_complete_rollout_makes_the_version_live_once() -> None:
    stage = make_stage(1)
    rolling = with_status(
        stage, plan_stage(stage, World(target=model_version(1), gates=[]), now=NOW)
    )
    deployment = deployment_for(stage, 1)
    world = World(target=model_version(1), deployment=deployment)
    later = NOW + timedelta(seconds=20)
    plan = plan_stage(rolling, world, now=later)
    assert plan.status.live_version == 1
    assert plan.status.previous_version is None
    assert plan.status.live_since == later
    assert plan.status.rollout is not None
    assert plan.status.rollout.phase == "Complete"
    assert condition(plan, ConditionType.READY) == ("True", "RolloutComplete")
    assert condition(plan, ConditionType.ROLLED_OUT) == ("True", "RolloutComplete")
    assert condition(plan, ConditionType.RECONCILING) is None
    [entry] = plan.entries
    assert (entry.version, entry.from_version, entry.result) == (1, None, "Succeeded")
    assert entry.requested_by == "alice"
    assert plan.status.history == [entry]
    assert [note.reason for note in plan.version_notes] == ["Promoted"]
    assert plan.action == MarkGood("churn-production", template_hash_of(deployment))
    marked = copy.deepcopy(deployment)
    marked["metadata"].setdefault("labels", {})[LAST_GOOD_LABEL] = template_hash_of(deployment)
    assert_fixed_point(with_status(rolling, plan), replace(world, deployment=marked), later)


def test_a_rollout_in_progress_is_reported_without_a_write_to_the_deployment() -> None:
    stage = make_stage(1)
    rolling = with_status(
        stage, plan_stage(stage, World(target=model_version(1), gates=[]), now=NOW)
    )
    world = World(target=model_version(1), deployment=deployment_for(stage, 1, phase="Progressing"))
    plan = plan_stage(rolling, world, now=NOW)
    assert plan.action is None
    assert plan.status.rollout is not None
    assert plan.status.rollout.phase == "Progressing"
    assert "1 of 2 replicas updated" in (plan.status.rollout.message or "")
    assert plan.status.live_version is None
    assert_fixed_point(with_status(rolling, plan), world)


def test_promoting_replaces_the_live_version_and_remembers_the_previous_one() -> None:
    stage, deployment = live_stage(1)
    promoted = changed(stage, version=2)
    world = World(target=model_version(2), gates=[gate(True)], deployment=deployment)
    plan = plan_stage(promoted, world, now=NOW)
    assert isinstance(plan.action, Apply)
    assert not plan.action.create
    assert plan.action.body["metadata"]["resourceVersion"] == "77"
    assert plan.action.body["spec"]["selector"] == deployment["spec"]["selector"]
    rolled = deployment_for(promoted, 2)
    done = plan_stage(
        with_status(promoted, plan), World(target=model_version(2), deployment=rolled), now=NOW
    )
    assert (done.status.live_version, done.status.previous_version) == (2, 1)
    assert [(e.version, e.from_version) for e in done.status.history or []] == [(1, None), (2, 1)]


# -- holding a promotion --------------------------------------------------------------------


def test_a_missing_version_holds_the_promotion_and_the_live_version_serves_on() -> None:
    stage, deployment = live_stage(1)
    promoted = changed(stage, version=2)
    plan = plan_stage(promoted, World(target=None, deployment=deployment), now=NOW)
    assert plan.action is None
    assert condition(plan, ConditionType.READY) == ("False", "VersionNotFound")
    assert condition(plan, ConditionType.STALLED) == ("True", "VersionNotFound")
    assert condition(plan, ConditionType.GATES_PASSED) == ("Unknown", "VersionNotFound")
    assert plan.status.live_version == 1
    assert plan.status.gates is None
    [note] = plan.notes
    assert note.type == "Warning"
    assert "churn-v2 does not exist" in note.message
    assert_fixed_point(with_status(promoted, plan), World(target=None, deployment=deployment))


def test_a_version_being_verified_holds_the_promotion_as_reconciling() -> None:
    stage, deployment = live_stage(1)
    promoted = changed(stage, version=2)
    world = World(target=model_version(2, ready=False), deployment=deployment)
    assert not gates_needed(promoted, world.target)
    plan = plan_stage(promoted, world, now=NOW)
    assert plan.action is None
    assert condition(plan, ConditionType.RECONCILING) == ("True", "VersionNotReady")
    assert condition(plan, ConditionType.STALLED) is None


def test_a_version_whose_artifact_differs_holds_the_promotion_as_stalled() -> None:
    stage, deployment = live_stage(1)
    promoted = changed(stage, version=2)
    world = World(target=model_version(2, ready=False, stalled=True), deployment=deployment)
    plan = plan_stage(promoted, world, now=NOW)
    assert condition(plan, ConditionType.STALLED) == ("True", "VersionNotReady")


def test_failing_gates_hold_the_promotion_and_are_recorded_once() -> None:
    stage, deployment = live_stage(1)
    promoted = changed(stage, version=2)
    assert gates_needed(promoted, model_version(2))
    world = World(target=model_version(2), gates=[gate(False, observed=0.7)], deployment=deployment)
    plan = plan_stage(promoted, world, now=NOW)
    assert plan.action is None
    assert condition(plan, ConditionType.GATES_PASSED) == ("False", "GateFailed")
    assert condition(plan, ConditionType.STALLED) == ("True", "GateFailed")
    assert plan.status.gates_summary == "0/1"
    assert plan.status.gates_version == 2
    [entry] = plan.entries
    assert (entry.version, entry.from_version, entry.result) == (2, 1, "Rejected")
    assert "test_auc >= 0.82 failed" in (entry.message or "")
    assert plan.failed_gates == ("test_auc",)
    assert [note.type for note in plan.notes] == ["Warning"]
    held = with_status(promoted, plan)
    assert gates_needed(held, model_version(2)), "held gates are evaluated again"
    assert_fixed_point(held, world, NOW + timedelta(minutes=5))


def test_a_time_gate_that_still_fails_does_not_rewrite_the_status() -> None:
    """The observed time in Staging grows every second; the verdict does not change."""
    stage, deployment = live_stage(1)
    promoted = changed(stage, version=2)
    first = World(
        target=model_version(2),
        gates=[gate(False, type_="Stage", observed=60)],
        deployment=deployment,
    )
    held = with_status(promoted, plan_stage(promoted, first, now=NOW))
    later = replace(first, gates=[gate(False, type_="Stage", observed=90)])
    assert_fixed_point(held, later, NOW + timedelta(seconds=30))


def test_gates_that_pass_later_release_the_held_promotion() -> None:
    stage, deployment = live_stage(1)
    promoted = changed(stage, version=2)
    world = World(target=model_version(2), gates=[gate(False)], deployment=deployment)
    held = with_status(promoted, plan_stage(promoted, world, now=NOW))
    plan = plan_stage(held, replace(world, gates=[gate(True)]), now=NOW)
    assert isinstance(plan.action, Apply)
    assert condition(plan, ConditionType.GATES_PASSED) == ("True", "AllGatesPassed")
    assert condition(plan, ConditionType.STALLED) is None


def test_a_passed_gate_is_not_evaluated_again_during_the_rollout() -> None:
    stage = make_stage(1)
    plan = plan_stage(stage, World(target=model_version(1), gates=[gate(True)]), now=NOW)
    assert not gates_needed(with_status(stage, plan), model_version(1))


def test_reverting_a_rejected_promotion_forgets_its_gate_results() -> None:
    stage, deployment = live_stage(1)
    promoted = changed(stage, version=2)
    world = World(target=model_version(2), gates=[gate(False)], deployment=deployment)
    held = with_status(promoted, plan_stage(promoted, world, now=NOW))
    reverted = changed(held, version=1)
    plan = plan_stage(reverted, World(target=model_version(1), deployment=deployment), now=NOW)
    assert plan.action is None
    assert plan.status.gates is None
    assert condition(plan, ConditionType.GATES_PASSED) is None
    assert condition(plan, ConditionType.READY) == ("True", "RolloutComplete")
    assert condition(plan, ConditionType.STALLED) is None


# -- a failed rollout -----------------------------------------------------------------------


def failed_promotion(
    rollback: str = "automatic",
) -> tuple[ModelStage, World, dict[str, Any], dict[str, Any]]:
    """Version 1 live; version 2 applied with a template whose pods never get Ready; the
    Deployment reports ProgressDeadlineExceeded. Returns the stage, the world, and the good
    and the failed Deployments."""
    stage, good = live_stage(1, rollback=rollback)
    broken = {"metadata": {"labels": {"modelplane.io/never-ready": "true"}}, **TEMPLATE}
    promoted = changed(stage, version=2, template=broken)
    started = plan_stage(
        promoted, World(target=model_version(2), gates=[], deployment=good), now=NOW
    )
    assert isinstance(started.action, Apply)
    rolling = with_status(promoted, started)
    failed = deployment_for(rolling, 2, phase="Failed", good_hash=template_hash_of(good))
    world = World(
        target=model_version(2),
        deployment=failed,
        replicasets=[replicaset_of(good, 1), replicaset_of(failed, 2)],
    )
    assert needs_replicasets(rolling, failed) == (rollback == "automatic")
    return rolling, world, good, failed


def test_a_failed_rollout_rolls_the_deployment_back_to_the_last_good_template() -> None:
    stage, world, good, _failed = failed_promotion()
    plan = plan_stage(stage, world, now=NOW)
    assert plan.status_first
    assert isinstance(plan.action, Apply)
    template = plan.action.body["spec"]["template"]
    assert template["metadata"]["annotations"][VERSION_ANNOTATION] == "1"
    assert "modelplane.io/never-ready" not in template["metadata"]["labels"]
    assert template_hash_of(plan.action.body) == template_hash_of(good)
    assert plan.action.body["metadata"]["annotations"][VERSION_ANNOTATION] == "1"
    assert stage.spec.version == 2
    assert plan.status.live_version == 1
    assert plan.status.rollout is not None
    assert (plan.status.rollout.version, plan.status.rollout.phase) == (2, "RolledBack")
    assert condition(plan, ConditionType.ROLLED_OUT) == ("False", "RolledBack")
    assert condition(plan, ConditionType.READY) == ("False", "RolledBack")
    assert condition(plan, ConditionType.STALLED) == ("True", "RolledBack")
    [entry] = plan.entries
    assert (entry.version, entry.from_version, entry.result) == (2, 1, "RolledBack")


def test_a_rollback_recorded_but_not_made_is_made_once_and_not_recorded_again() -> None:
    """The operator stopped between writing the status and rolling back."""
    stage, world, good, _failed = failed_promotion()
    recorded = with_status(stage, plan_stage(stage, world, now=NOW))
    again = plan_stage(recorded, world, now=NOW + timedelta(seconds=5))
    assert isinstance(again.action, Apply)
    assert template_hash_of(again.action.body) == template_hash_of(good)
    assert again.entries == ()
    rolled_back = deployment_for(recorded, 1, good_hash=template_hash_of(good))
    rolled_back["spec"]["template"] = copy.deepcopy(good["spec"]["template"])
    after = replace(world, deployment=rolled_back)
    plan = plan_stage(recorded, after, now=NOW)
    assert plan.action is None
    assert not gates_needed(recorded, world.target)
    assert_fixed_point(with_status(recorded, plan), after)


def test_the_failed_version_is_tried_again_after_a_spec_change() -> None:
    stage, world, _good, _failed = failed_promotion()
    recorded = with_status(stage, plan_stage(stage, world, now=NOW))
    fixed = changed(recorded, template=TEMPLATE)
    plan = plan_stage(fixed, replace(world, gates=[]), now=NOW)
    assert isinstance(plan.action, Apply)
    assert plan.status.rollout is not None
    assert plan.status.rollout.phase == "Progressing"


def test_with_manual_rollback_the_failed_rollout_is_left_and_reported() -> None:
    stage, world, _good, _failed = failed_promotion("manual")
    plan = plan_stage(stage, replace(world, replicasets=()), now=NOW)
    assert plan.action is None
    assert plan.status.rollout is not None
    assert plan.status.rollout.phase == "Failed"
    assert "manual" in (plan.status.rollout.message or "")
    assert condition(plan, ConditionType.STALLED) == ("True", "ProgressDeadlineExceeded")
    [entry] = plan.entries
    assert entry.result == "Failed"
    assert_fixed_point(with_status(stage, plan), replace(world, replicasets=()))


def test_a_first_rollout_that_fails_has_nothing_to_roll_back_to() -> None:
    stage = make_stage(1)
    rolling = with_status(
        stage, plan_stage(stage, World(target=model_version(1), gates=[]), now=NOW)
    )
    world = World(target=model_version(1), deployment=deployment_for(stage, 1, phase="Failed"))
    plan = plan_stage(rolling, world, now=NOW)
    assert plan.action is None
    assert plan.status.rollout is not None
    assert plan.status.rollout.phase == "Failed"
    assert "nothing to roll back to" in (plan.status.rollout.message or "")


def test_a_deployment_the_api_server_refuses_ends_as_a_failed_rollout_held_for_the_generation() -> (
    None
):
    stage = make_stage(1)
    world = World(
        target=model_version(1),
        gates=[],
        apply_error="spec.template.spec.containers[0].image: Required value",
    )
    plan = plan_stage(stage, world, now=NOW)
    assert plan.action is None
    assert condition(plan, ConditionType.STALLED) == ("True", "InvalidSpec")
    assert plan.status.rollout is not None
    assert plan.status.rollout.phase == "Failed"
    held = with_status(stage, plan)
    again = plan_stage(held, replace(world, apply_error=None), now=NOW)
    assert again.action is None, "the same spec is not tried again"


# -- other cases ----------------------------------------------------------------------------


def test_a_template_change_of_the_live_version_rolls_without_gates() -> None:
    stage, deployment = live_stage(1)
    edited = changed(stage, template={"spec": {"containers": [{"name": "s", "image": "serve:2"}]}})
    assert not gates_needed(edited, model_version(1))
    plan = plan_stage(edited, World(target=model_version(1), deployment=deployment), now=NOW)
    assert isinstance(plan.action, Apply)
    assert plan.status.live_version == 1
    assert condition(plan, ConditionType.READY) == ("False", "RolloutProgressing")


def test_serving_that_cannot_be_built_stalls_and_leaves_the_live_deployment() -> None:
    stage, deployment = live_stage(1)
    obj = stage.to_manifest()
    obj["metadata"]["annotations"]["modelplane.io/fetch-artifact"] = "true"
    fetching = ModelStage.from_object(obj)
    world = World(target=model_version(1), deployment=deployment)
    plan = plan_stage(fetching, world, now=NOW)
    assert plan.action is None
    assert condition(plan, ConditionType.STALLED) == ("True", "InvalidSpec")
    stalled = find_condition(plan.status.conditions, ConditionType.STALLED)
    assert stalled is not None
    assert "MODELPLANE_FETCH_IMAGE" in stalled.message
    assert plan.status.live_version == 1
    assert_fixed_point(with_status(fetching, plan), world)
    served = plan_stage(fetching, replace(world, fetch_image="modelplane:0.1"), now=NOW)
    assert isinstance(served.action, Apply)


def test_the_live_version_serves_on_when_its_model_version_is_deleted() -> None:
    stage, deployment = live_stage(1)
    plan = plan_stage(stage, World(target=None, deployment=deployment), now=NOW)
    assert plan.action is None
    assert condition(plan, ConditionType.READY) == ("True", "RolloutComplete")


def test_a_stage_without_serving_goes_live_once_its_gates_pass() -> None:
    stage = make_stage(1, serving=False)
    plan = plan_stage(stage, World(target=model_version(1), gates=[gate(True)]), now=NOW)
    assert plan.action is None
    assert plan.status.live_version == 1
    assert plan.status.rollout is None
    assert condition(plan, ConditionType.ROLLED_OUT) == ("True", "NoServing")
    assert condition(plan, ConditionType.READY) == ("True", "NoServing")
    assert_fixed_point(with_status(stage, plan), World(target=model_version(1)))


def test_removing_serving_deletes_the_deployment() -> None:
    stage, deployment = live_stage(1)
    obj = stage.to_manifest()
    del obj["spec"]["serving"]
    obj["metadata"]["generation"] += 1
    pointer = ModelStage.from_object(obj)
    plan = plan_stage(pointer, World(target=model_version(1), deployment=deployment), now=NOW)
    assert plan.action == Delete("churn-production")


def test_a_deployment_of_someone_else_is_left_alone() -> None:
    stage = make_stage(1)
    foreign = deployment_for(stage, 1)
    foreign["metadata"]["ownerReferences"] = []
    plan = plan_stage(stage, World(target=model_version(1), gates=[], deployment=foreign), now=NOW)
    assert plan.action is None
    assert condition(plan, ConditionType.STALLED) == ("True", "ReconcileError")


def test_status_approvals_list_approvals_of_the_desired_version() -> None:
    approval = '{"user":"bob","version":1,"at":"2025-06-01T10:00:00+00:00"}'
    stage = make_stage(1, annotations={approval_key("bob"): approval})
    plan = plan_stage(stage, World(target=model_version(1), gates=[]), now=NOW)
    assert [a.user for a in plan.status.approvals or []] == ["bob"]


def test_needs_recheck_until_the_desired_version_is_live_and_ready() -> None:
    assert needs_recheck(make_stage(1))
    stage, _deployment = live_stage(1)
    assert not needs_recheck(stage)
    assert needs_recheck(changed(stage, version=2))
