"""The serving Deployment: how it is built, how its state is read, and which template a rollback
puts back. No cluster: Deployments and ReplicaSets are dicts shaped as the API server returns them.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelplane.api import ModelStage
from modelplane.core.rollouts import (
    FETCH_ANNOTATION,
    FETCH_CREDENTIALS_ANNOTATION,
    LAST_GOOD_ANNOTATION,
    REVISION_ANNOTATION,
    TEMPLATE_HASH_ANNOTATION,
    VERSION_ANNOTATION,
    ServingError,
    covers,
    deployment_name,
    desired_deployment,
    matches,
    observe,
    owner_reference,
    replacement,
    rollback_deployment,
    rollback_template,
    template_hash,
)

UID = "0b5e1f5c-1d1b-4c5b-9a57-0c1f3f8d2a10"
DEPLOYMENT_UID = "d7c1b0f0-9a2e-4a53-8d41-1e6c7b2d9f00"
URI = "s3://models/churn-model/3/"


def make_stage(
    *,
    template: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    replicas: int = 2,
    serving: bool = True,
) -> ModelStage:
    spec: dict[str, Any] = {"model": "churn-model", "stage": "Production", "version": 3}
    if serving:
        spec["serving"] = {
            "replicas": replicas,
            "progressDeadlineSeconds": 120,
            "template": template
            if template is not None
            else {
                "metadata": {"labels": {"app": "churn", "team": "growth"}},
                "spec": {
                    "containers": [
                        {
                            "name": "server",
                            "image": "registry.example.com/serve:1",
                            "env": [
                                {"name": "LOG_LEVEL", "value": "info"},
                                {"name": "MODEL_VERSION", "value": "stale"},
                            ],
                        },
                        {"name": "sidecar", "image": "registry.example.com/proxy:2"},
                    ]
                },
            },
        }
    return ModelStage.from_object(
        {
            "apiVersion": "modelplane.io/v1alpha1",
            "kind": "ModelStage",
            "metadata": {
                "name": "churn-model-production",
                "namespace": "ml",
                "uid": UID,
                "generation": 4,
                "annotations": annotations or {},
            },
            "spec": spec,
        }
    )


def build(stage: ModelStage | None = None, version: int = 3, **kwargs: Any) -> dict[str, Any]:
    stage = stage or make_stage()
    return desired_deployment(stage, version, URI, owner_reference(stage), **kwargs)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


# -- building -------------------------------------------------------------------------------


def test_the_deployment_is_named_like_the_stage_and_controlled_by_it() -> None:
    body = build()
    assert body["metadata"]["name"] == "churn-model-production" == deployment_name(make_stage())
    assert body["metadata"]["namespace"] == "ml"
    [owner] = body["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "ModelStage",
        "name": "churn-model-production",
        "uid": UID,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_serving_settings_reach_the_deployment_spec() -> None:
    spec = build(make_stage(replicas=5))["spec"]
    assert spec["replicas"] == 5
    assert spec["progressDeadlineSeconds"] == 120
    assert spec["revisionHistoryLimit"] >= 1


def test_every_container_gets_the_model_environment_replacing_same_names() -> None:
    containers = build()["spec"]["template"]["spec"]["containers"]
    for container in containers:
        env = env_of(container)
        assert env["MODEL_NAME"] == "churn-model"
        assert env["MODEL_VERSION"] == "3"
        assert env["MODEL_URI"] == URI
        assert env["MODEL_STAGE"] == "Production"
    server = containers[0]
    assert env_of(server)["LOG_LEVEL"] == "info"
    assert [item["name"] for item in server["env"]].count("MODEL_VERSION") == 1


def test_the_artifact_digest_reaches_the_containers_when_known() -> None:
    digest = "sha256:" + "b" * 64
    pod = build(artifact_digest=digest)["spec"]["template"]
    assert all(env_of(c)["MODEL_DIGEST"] == digest for c in pod["spec"]["containers"])
    assert pod["metadata"]["annotations"]["modelplane.io/model-digest"] == digest
    assert "MODEL_DIGEST" not in env_of(build()["spec"]["template"]["spec"]["containers"][0])


def test_the_pod_carries_model_annotations_and_keeps_user_labels() -> None:
    metadata = build()["spec"]["template"]["metadata"]
    assert metadata["annotations"][VERSION_ANNOTATION] == "3"
    assert metadata["annotations"]["modelplane.io/model"] == "churn-model"
    assert metadata["annotations"]["modelplane.io/model-uri"] == URI
    assert metadata["labels"]["app"] == "churn"
    assert metadata["labels"]["team"] == "growth"
    assert metadata["labels"]["modelplane.io/version"] == "3"


def test_the_selector_names_model_and_stage_only_and_stays_across_versions() -> None:
    first, second = build(version=3), build(version=4)
    selector = first["spec"]["selector"]
    assert selector == {
        "matchLabels": {"modelplane.io/model": "churn-model", "modelplane.io/stage": "Production"}
    }
    assert second["spec"]["selector"] == selector
    labels = first["spec"]["template"]["metadata"]["labels"]
    assert all(labels[key] == value for key, value in selector["matchLabels"].items())


def test_the_stage_object_is_not_modified() -> None:
    stage = make_stage()
    before = copy.deepcopy(stage.spec.serving.template if stage.spec.serving else None)
    build(stage)
    assert stage.spec.serving is not None
    assert stage.spec.serving.template == before


def test_the_template_hash_follows_the_version_and_the_template() -> None:
    def hash_of(body: dict[str, Any]) -> str:
        return str(body["spec"]["template"]["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION])

    assert hash_of(build()) == hash_of(build())
    assert hash_of(build(version=4)) != hash_of(build())
    other = make_stage(template={"spec": {"containers": [{"name": "s", "image": "other:1"}]}})
    assert hash_of(build(other)) != hash_of(build())
    template = build()["spec"]["template"]
    assert template_hash(template) == hash_of(build())


def test_replicas_do_not_change_the_template_hash() -> None:
    """Scaling must not roll the pods."""
    small = build(make_stage(replicas=1))["spec"]["template"]
    large = build(make_stage(replicas=9))["spec"]["template"]
    assert small == large


def test_the_fetch_annotation_adds_an_init_container_and_a_shared_volume() -> None:
    stage = make_stage(
        annotations={FETCH_ANNOTATION: "true", FETCH_CREDENTIALS_ANNOTATION: "store-creds"}
    )
    pod = build(stage, fetch_image="registry.example.com/modelplane:0.1")["spec"]["template"]
    spec = pod["spec"]
    [init] = spec["initContainers"]
    assert init["image"] == "registry.example.com/modelplane:0.1"
    assert init["command"] == ["modelplane", "fetch", "$(MODEL_URI)", "/models"]
    assert init["envFrom"] == [{"secretRef": {"name": "store-creds"}}]
    assert env_of(init)["MODEL_URI"] == URI
    assert {"name": "modelplane-model", "emptyDir": {}} in spec["volumes"]
    assert {"name": "modelplane-model", "mountPath": "/models", "readOnly": False} in init[
        "volumeMounts"
    ]
    for container in spec["containers"]:
        assert env_of(container)["MODEL_PATH"] == "/models"
        assert {"name": "modelplane-model", "mountPath": "/models", "readOnly": True} in container[
            "volumeMounts"
        ]


def test_without_the_annotation_there_is_no_init_container() -> None:
    spec = build(fetch_image="registry.example.com/modelplane:0.1")["spec"]["template"]["spec"]
    assert "initContainers" not in spec
    assert "volumes" not in spec


def test_fetching_without_an_image_is_refused_with_the_setting_to_change() -> None:
    stage = make_stage(annotations={FETCH_ANNOTATION: "true"})
    with pytest.raises(ServingError, match="MODELPLANE_FETCH_IMAGE"):
        build(stage)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({}, "at least one container"),
        ({"spec": {"containers": "server"}}, "list of containers"),
        ({"metadata": "x", "spec": {"containers": [{"name": "s"}]}}, "metadata must be an object"),
        ({"spec": {"containers": [{"name": "s"}], "initContainers": [1]}}, "initContainers"),
    ],
)
def test_a_template_not_shaped_like_a_pod_template_is_refused(
    template: dict[str, Any], message: str
) -> None:
    with pytest.raises(ServingError, match=message):
        build(make_stage(template=template))


def test_a_stage_without_serving_has_no_deployment() -> None:
    with pytest.raises(ServingError, match=r"spec\.serving"):
        build(make_stage(serving=False))


def test_an_unsaved_stage_has_no_owner_reference() -> None:
    stage = make_stage().model_copy(deep=True)
    stage.metadata.uid = None
    with pytest.raises(ServingError, match="uid"):
        owner_reference(stage)


# -- observing ------------------------------------------------------------------------------


def deployment(
    body: dict[str, Any] | None = None,
    *,
    generation: int = 2,
    observed: int = 2,
    replicas: int = 2,
    updated: int = 2,
    available: int = 2,
    total: int | None = None,
    progressing: str = "NewReplicaSetAvailable",
) -> dict[str, Any]:
    """`body` (a desired Deployment) as the API server would show it with this status."""
    obj = copy.deepcopy(body or build())
    obj["metadata"].update(
        {
            "uid": DEPLOYMENT_UID,
            "generation": generation,
            "resourceVersion": "812",
            "annotations": {
                **obj["metadata"].get("annotations", {}),
                REVISION_ANNOTATION: "4",
            },
        }
    )
    obj["spec"]["replicas"] = replicas
    obj["status"] = {
        "observedGeneration": observed,
        "replicas": total if total is not None else updated,
        "updatedReplicas": updated,
        "availableReplicas": available,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {
                "type": "Progressing",
                "status": "False" if progressing == "ProgressDeadlineExceeded" else "True",
                "reason": progressing,
                "message": 'ReplicaSet "churn-model-production-5d8f" has timed out progressing.'
                if progressing == "ProgressDeadlineExceeded"
                else "ok",
            },
        ],
    }
    return obj


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


def test_replacement_keeps_others_annotations_and_the_resource_version() -> None:
    current = deployment()
    current["metadata"]["annotations"][LAST_GOOD_ANNOTATION] = "abc"
    body = replacement(build(version=4), current)
    assert body["metadata"]["resourceVersion"] == "812"
    annotations = body["metadata"]["annotations"]
    assert annotations[REVISION_ANNOTATION] == "4"
    assert annotations[LAST_GOOD_ANNOTATION] == "abc"
    assert annotations[VERSION_ANNOTATION] == "4"
    assert "status" not in body


# -- going back -----------------------------------------------------------------------------


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
    marked["metadata"]["annotations"][LAST_GOOD_ANNOTATION] = good["spec"]["template"]["metadata"][
        "annotations"
    ][TEMPLATE_HASH_ANNOTATION]
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
    obj["metadata"]["annotations"][LAST_GOOD_ANNOTATION] = good_hash
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
