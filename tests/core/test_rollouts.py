"""How the serving Deployment is built from a ModelStage, and how it replaces the one that runs.
No cluster: Deployments are dicts shaped as the API server returns them.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelplane.core.deploymentstates import REVISION_ANNOTATION
from modelplane.core.rollouts import (
    FETCH_ANNOTATION,
    FETCH_CREDENTIALS_ANNOTATION,
    LAST_GOOD_ANNOTATION,
    LAST_GOOD_LABEL,
    TEMPLATE_HASH_ANNOTATION,
    VERSION_ANNOTATION,
    ServingError,
    deployment_name,
    owner_reference,
    replacement,
    template_hash,
)
from tests.core.serving import UID, URI, build, deployment, make_stage


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value") for item in container.get("env", [])}


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


def test_replacement_keeps_others_annotations_and_the_resource_version() -> None:
    current = deployment()
    current["metadata"]["annotations"][LAST_GOOD_ANNOTATION] = "abc"
    current["metadata"]["labels"][LAST_GOOD_LABEL] = "def"
    body = replacement(build(version=4), current)
    assert body["metadata"]["labels"][LAST_GOOD_LABEL] == "def"
    assert body["metadata"]["resourceVersion"] == "812"
    annotations = body["metadata"]["annotations"]
    assert annotations[REVISION_ANNOTATION] == "4"
    assert annotations[LAST_GOOD_ANNOTATION] == "abc"
    assert annotations[VERSION_ANNOTATION] == "4"
    assert "status" not in body
