"""What `modelplane models` shows: models grouped from versions and stages, and versions."""

from __future__ import annotations

from datetime import UTC, datetime

from cli_objects import model_stage, model_version

from modelplane.api import ModelStage, ModelVersion
from modelplane.cli.model_views import (
    model_record,
    models_table,
    summarize_models,
    version_record,
    versions_of,
    versions_table,
)

NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)


def versions() -> list[ModelVersion]:
    found = []
    for model, version, stages, verified in [
        ("churn", 1, None, True),
        ("churn", 3, ["Production"], True),
        ("churn", 2, None, False),
        ("fraud", 1, ["Staging"], True),
    ]:
        obj = model_version(model, version, run=f"{model}-run-{version}")
        obj["status"] = {"artifact": {"verified": verified}}
        if stages:
            obj["status"]["stages"] = stages
        found.append(ModelVersion.from_object(obj))
    return found


def stage(model: str, name: str, desired: int, live: int | None) -> ModelStage:
    obj = model_stage(model, name, desired)
    if live is not None:
        obj["status"] = {"liveVersion": live}
    return ModelStage.from_object(obj)


def stages() -> list[ModelStage]:
    return [
        stage("churn", "Staging", 3, 3),
        stage("churn", "Production", 3, 2),
        stage("fraud", "Staging", 1, 1),
        stage("spam", "Production", 1, None),
    ]


def test_models_are_grouped_by_name_with_latest_count_and_stages() -> None:
    summaries = summarize_models(versions(), stages())
    assert [(s.model, s.latest, s.versions) for s in summaries] == [
        ("churn", 3, 3),
        ("fraud", 1, 1),
        ("spam", None, 0),
    ]
    assert models_table(summaries).splitlines() == [
        "MODEL   LATEST   VERSIONS   STAGES",
        "churn   3        3          Production=2 (desired 3), Staging=3",
        "fraud   1        1          Staging=1",
        "spam    <none>   0          Production=<none> (desired 1)",
    ]


def test_a_model_record_lists_desired_and_live_versions() -> None:
    record = model_record(summarize_models(versions(), stages())[0])
    assert record == {
        "model": "churn",
        "latestVersion": 3,
        "versions": 3,
        "stages": [
            {"stage": "Production", "desiredVersion": 3, "liveVersion": 2},
            {"stage": "Staging", "desiredVersion": 3, "liveVersion": 3},
        ],
    }


def test_versions_of_a_model_are_newest_first() -> None:
    found = versions_of("churn", versions())
    assert [mv.spec.version for mv in found] == [3, 2, 1]
    assert versions_table(found, NOW).splitlines() == [
        "VERSION   NAME       RUN           VERIFIED   STAGES       AGE",
        "3         churn-v3   churn-run-3   true       Production   24h",
        "2         churn-v2   churn-run-2   false      <none>       24h",
        "1         churn-v1   churn-run-1   true       <none>       24h",
    ]
    assert version_record(found[0])["artifact"] == {
        "uri": "s3://models/churn/3/",
        "digest": "sha256:" + "f" * 64,
        "verified": True,
    }
