"""Keeping `status.stages` of ModelVersions current: the stages each version is live in.

A ModelStage points at the live version of its model; every version of that model lists the
stages it is live in. Two indexes hold what is needed (the versions of each model,
`modelplane.operator.versionindexes.VERSIONS`, and the kopf index `modelstages_by_model`), so
no list is read. `model_stage_event` refreshes a model's versions on
every ModelStage event (the status write that changes `liveVersion` included); the ModelVersion
event handler (`modelplane.operator.modelversions`) asks `stages_wanted` for the one version and
writes only when it lists other stages.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes.client import ApiException
from pydantic import ValidationError

from modelplane.api import GROUP, VERSION, ModelStage, ModelVersion
from modelplane.core.stages import StagePointer, stages_of_version
from modelplane.operator import kube
from modelplane.operator.versionindexes import Indexes, StagesIndex

logger = logging.getLogger(__name__)

PLURAL = "modelversions"
MODELSTAGES = "modelstages"


@kopf.index(GROUP, VERSION, MODELSTAGES)
async def modelstages_by_model(
    body: kopf.Body, namespace: str | None, **_: Any
) -> dict[tuple[str, str], StagePointer] | None:
    """ModelStages by (namespace, model): the stage name and its live version."""
    try:
        stage = ModelStage.from_object(body)
    except ValidationError:
        return None
    if namespace is None:
        return None
    live = stage.status.live_version if stage.status is not None else None
    return {(namespace, stage.spec.model): StagePointer(stage.spec.stage, live)}


@kopf.on.event(GROUP, VERSION, MODELSTAGES)
def model_stage_event(*, body: kopf.Body, namespace: str | None, **kwargs: Any) -> None:
    """A ModelStage changed (or went away): its model's versions list their stages again."""
    try:
        stage = ModelStage.from_object(body)
    except ValidationError:
        return
    if namespace is None:
        return
    refresh_stages(namespace, stage.spec.model, Indexes.from_kwargs(kwargs))


def refresh_stages(namespace: str, model: str, indexes: Indexes) -> None:
    """Writes `status.stages` of every version of `model` whose listed stages are out of date.

    It runs on every ModelStage event already (status.liveVersion included). A ModelStage
    handler may also call it right after changing the live version:
    `refresh_stages(namespace, model, Indexes.from_kwargs(kwargs))`.
    """
    pointers = list(indexes.stages.get((namespace, model), ()))
    for entry in list(indexes.versions.get((namespace, model), ())):
        desired = stages_of_version(entry.version, pointers)
        if list(entry.stages) != desired:
            write_stages(namespace, entry.name, desired)


def stages_wanted(namespace: str, version: ModelVersion, stages: StagesIndex) -> list[str] | None:
    """The stages `version` should list, or None when it lists them already. Quick: no API
    call."""
    pointers = list(stages.get((namespace, version.spec.model), ()))
    desired = stages_of_version(version.spec.version, pointers)
    current = list(version.status.stages or ()) if version.status else []
    return None if current == desired else desired


def write_stages(namespace: str, name: str, stages: list[str]) -> None:
    """Writes `status.stages` of one version (None when it is live in no stage)."""
    logger.info("ModelVersion %s/%s is live in %s", namespace, name, stages or "no stage")
    try:
        kube.patch_status(PLURAL, namespace, name, {"stages": stages or None})
    except ApiException as error:
        # A version deleted meanwhile has no stages to list.
        if error.status != 404:
            raise
