"""Which pod template a rollback puts back, and the Deployment it makes. No cluster: Deployments
and ReplicaSets are dicts shaped as the API server returns them.
"""

from __future__ import annotations

import copy
from typing import Any

from modelplane.core.deploymentstates import REVISION_ANNOTATION, observe
from modelplane.core.rollbacks import rollback_deployment, rollback_template
from modelplane.core.rollouts import (
    LAST_GOOD_LABEL,
    TEMPLATE_HASH_ANNOTATION,
    VERSION_ANNOTATION,
)
from tests.core.serving import DEPLOYMENT_UID, build, deployment, make_stage


def replicaset(version: int, revision: int, *, owner: str = DEPLOYMENT_UID, **kw: Any) -> Any:
    template = copy.deepcopy(build(version=version, **kw)["spec"]["template"])
    template["metadata"]["labels"]["pod-template-hash"] = f"h{revision}"
    return {
        "metadata": {
            "name": f"churn-model-production-h{revision}",
            "annotations": {REVISION_ANNOTATION: str(revision)},
            "ownerReferences": [{"uid": owner, "controller": True, "kind": "Deployment"}],
        },
        "spec": {"template": template},
    }


def failing(version: int = 4) -> Any:
    return observe(
        deployment(build(version=version), progressing="ProgressDeadlineExceeded", available=0)
    )


def test_the_rollback_template_is_the_last_good_one_without_its_pod_template_hash() -> None:
    good = replicaset(3, 1)
    marked = deployment(build(version=4), progressing="ProgressDeadlineExceeded")
    good_hash = good["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
    marked["metadata"].setdefault("labels", {})[LAST_GOOD_LABEL] = good_hash
    state = observe(marked)
    template = rollback_template(
        [good, replicaset(4, 2)], state, deployment_uid=DEPLOYMENT_UID, live_version=3
    )
    assert template is not None
    assert template["metadata"]["annotations"][VERSION_ANNOTATION] == "3"
    assert "pod-template-hash" not in template["metadata"]["labels"]


def test_the_marked_good_template_wins_over_a_newer_one_of_the_same_version() -> None:
    """A template change of the live version that never completed is not gone back to."""
    good = replicaset(3, 1)
    bad = replicaset(3, 2)
    bad["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] = "bad"
    obj = deployment(build(version=4), progressing="ProgressDeadlineExceeded")
    good_hash = good["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION]
    obj["metadata"].setdefault("labels", {})[LAST_GOOD_LABEL] = good_hash
    template = rollback_template(
        [bad, good], observe(obj), deployment_uid=DEPLOYMENT_UID, live_version=3
    )
    assert template is not None
    assert template["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] == good_hash


def test_without_a_mark_the_newest_replicaset_of_the_live_version_is_chosen() -> None:
    older, newer = replicaset(3, 1), replicaset(3, 5)
    newer["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] = "newer"
    template = rollback_template(
        [newer, older], failing(), deployment_uid=DEPLOYMENT_UID, live_version=3
    )
    assert template is not None
    assert template["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION] == "newer"


def test_no_template_when_the_live_version_has_no_replicaset_of_this_deployment() -> None:
    assert (
        rollback_template(
            [replicaset(3, 1, owner="someone-else"), replicaset(4, 2)],
            failing(),
            deployment_uid=DEPLOYMENT_UID,
            live_version=3,
        )
        is None
    )


def test_rollback_deployment_puts_the_old_template_back_and_keeps_current_settings() -> None:
    desired = build(make_stage(replicas=4), version=4)
    old_template = replicaset(3, 1)["spec"]["template"]
    body = rollback_deployment(desired, old_template)
    assert body["spec"]["template"] == old_template
    assert body["spec"]["replicas"] == 4
    assert body["metadata"]["annotations"][VERSION_ANNOTATION] == "3"
    assert desired["spec"]["template"]["metadata"]["annotations"][VERSION_ANNOTATION] == "4"
