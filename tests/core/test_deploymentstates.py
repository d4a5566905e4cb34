"""How a serving Deployment's state is read, and whether it runs what the ModelStage asks for.
No cluster: Deployments are dicts shaped as the API server returns them.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelplane.core.deploymentstates import covers, matches, observe
from modelplane.core.rollouts import FETCH_ANNOTATION, LAST_GOOD_ANNOTATION, LAST_GOOD_LABEL
from tests.core.serving import UID, build, deployment, make_stage


def test_a_deployment_with_all_replicas_updated_and_available_is_complete() -> None:
    state = observe(deployment())
    assert state.phase == "Complete"
    assert state.version == 3
    assert state.revision == 4
    assert state.controller_uid == UID
    assert (state.replicas, state.updated_replicas, state.available_replicas) == (2, 2, 2)


@pytest.mark.parametrize(
    ("kwargs", "phase", "message"),
    [
        ({"observed": 1}, "Pending", "take the new spec"),
        ({"updated": 1, "available": 1}, "Progressing", "1 of 2 replicas updated"),
        ({"total": 3}, "Progressing", "1 old replicas pending termination"),
        ({"available": 1}, "Progressing", "1 of 2 updated replicas available"),
        (
            {"updated": 1, "available": 0, "progressing": "ProgressDeadlineExceeded"},
            "Failed",
            "ProgressDeadlineExceeded: ReplicaSet",
        ),
    ],
)
def test_a_rollout_is_read_like_kubectl_rollout_status(
    kwargs: dict[str, Any], phase: str, message: str
) -> None:
    state = observe(deployment(**kwargs))
    assert state.phase == phase
    assert message in state.message


def test_a_deployment_scaled_to_zero_is_complete() -> None:
    assert observe(deployment(replicas=0, updated=0, available=0)).phase == "Complete"


def test_a_deployment_without_status_is_pending_or_progressing_not_an_error() -> None:
    obj = build()
    obj["metadata"]["generation"] = 1
    assert observe(obj).phase == "Pending"
    assert observe({}).phase in ("Pending", "Progressing")


def test_matches_the_desired_deployment_until_spec_or_template_changes() -> None:
    desired = build()
    assert matches(observe(deployment(desired)), desired)
    assert not matches(observe(deployment(desired)), build(version=4))
    assert not matches(observe(deployment(desired, replicas=3)), desired)
    relabelled = deployment(desired)
    relabelled["metadata"]["labels"] = {}
    assert not matches(observe(relabelled), desired)


def defaulted(template: dict[str, Any]) -> dict[str, Any]:
    """`template` as the API server returns it: defaults filled in, empty values left out."""
    result = copy.deepcopy(template)
    result["metadata"]["creationTimestamp"] = None
    spec = result["spec"]
    spec.update(restartPolicy="Always", dnsPolicy="ClusterFirst", terminationGracePeriodSeconds=30)
    for container in spec["containers"]:
        container.update(
            imagePullPolicy="IfNotPresent",
            terminationMessagePath="/dev/termination-log",
            resources=container.get("resources", {}),
        )
        for mount in container.get("volumeMounts", []):
            if mount.get("readOnly") is False:
                del mount["readOnly"]
    return result


def test_a_template_with_the_api_servers_defaults_still_matches() -> None:
    stage = make_stage(annotations={FETCH_ANNOTATION: "true"})
    desired = build(stage, fetch_image="modelplane:0.1")
    template = desired["spec"]["template"]
    assert covers(defaulted(template), template)
    live = deployment(desired)
    live["spec"]["template"] = defaulted(template)
    assert matches(observe(live), desired)


@pytest.mark.parametrize(
    "edit",
    [
        lambda c: c.update(image="example.com/other:2"),
        lambda c: c["env"].append({"name": "EXTRA", "value": "1"}),
        lambda c: next(e for e in c["env"] if e["name"] == "MODEL_VERSION").update(value="9"),
        lambda c: c.pop("env"),
    ],
)
def test_an_edited_template_that_keeps_the_hash_does_not_match(edit: Any) -> None:
    desired = build()
    live = deployment(desired)
    live["spec"]["template"] = defaulted(desired["spec"]["template"])
    edit(live["spec"]["template"]["spec"]["containers"][0])
    assert not matches(observe(live), desired)


def test_covers_compares_quantities_by_value_only_under_resources() -> None:
    assert covers(
        {"resources": {"limits": {"cpu": "1"}}}, {"resources": {"limits": {"cpu": "1000m"}}}
    )
    assert not covers(
        {"resources": {"limits": {"cpu": "2"}}}, {"resources": {"limits": {"cpu": "1"}}}
    )
    assert not covers({"env": [{"value": "1"}]}, {"env": [{"value": "1000m"}]})


def test_covers_treats_missing_as_empty_but_not_as_a_value() -> None:
    assert covers({}, {"hostNetwork": False, "args": [], "securityContext": {}})
    assert not covers({}, {"hostNetwork": True})
    assert not covers({"replicas": True}, {"replicas": 1})
    assert not covers({"args": ["a"]}, {"args": []})


def test_the_last_good_template_is_read_from_its_label_else_the_old_annotation() -> None:
    labelled = deployment()
    labelled["metadata"]["labels"][LAST_GOOD_LABEL] = "from-label"
    assert observe(labelled).good_hash == "from-label"
    annotated = deployment()
    annotated["metadata"]["annotations"][LAST_GOOD_ANNOTATION] = "from-annotation"
    assert observe(annotated).good_hash == "from-annotation"
    annotated["metadata"]["labels"][LAST_GOOD_LABEL] = "from-label"
    assert observe(annotated).good_hash == "from-label"
    assert observe(deployment()).good_hash is None
