"""The lineage tree of a model version: from the snapshot, from the run, or none."""

from __future__ import annotations

from datetime import UTC, datetime

from cli_objects import (
    ARTIFACT_DIGEST,
    COMMIT,
    IMAGE,
    TRAIN_DIGEST,
    experiment,
    lineage_status,
    model_version,
    run,
    summary,
)

from modelplane.api import Experiment, ModelVersion, Run
from modelplane.cli.lineage_tree import build_report, lineage_data, lineage_tree
from modelplane.cli.output import render_tree

NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)


def source_run(**overrides: object) -> dict:
    return run(
        "xgb-002",
        params={"learning_rate": "0.05", "max_depth": "6"},
        metrics={"val_auc": summary(0.87, step=99, low=0.61, high=0.88)},
        **overrides,  # type: ignore[arg-type]
    )


def registered(with_snapshot: bool = True) -> ModelVersion:
    obj = model_version("churn", 3, run="xgb-002")
    obj["status"] = {
        "artifact": {"verified": True, "size": 2048, "digest": ARTIFACT_DIGEST},
        "stages": ["Staging", "Production"],
    }
    if with_snapshot:
        obj["status"]["lineage"] = lineage_status(source_run())
    return ModelVersion.from_object(obj)


def test_the_tree_follows_version_run_experiment_and_inputs() -> None:
    report = build_report(
        registered(),
        Run.from_object(source_run()),
        Experiment.from_object(experiment()),
        NOW,
    )
    assert report.source == "snapshot"
    assert render_tree(lineage_tree(report)).splitlines() == [
        "churn v3 (ModelVersion churn-v3)",
        "├── run xgb-002 (Finished)",
        "│   ├── experiment churn (objective: maximize val_auc)",
        f"│   ├── code https://git.example.com/ml/churn.git@{COMMIT} (clean, path train.py)",
        "│   ├── data",
        f"│   │   └── train s3://datasets/churn/train.parquet {TRAIN_DIGEST}",
        "│   ├── params",
        "│   │   ├── learning_rate = 0.05",
        "│   │   └── max_depth = 6",
        "│   ├── metrics",
        "│   │   └── val_auc = 0.87 (step 99, min 0.61, max 0.88, 100 values)",
        "│   └── environment",
        f"│       ├── image {IMAGE}",
        "│       ├── python 3.11.7",
        "│       └── requirements <none>",
        "├── artifact s3://models/churn/3/",
        f"│   ├── digest {ARTIFACT_DIGEST}",
        "│   └── verified true (2048 bytes)",
        "└── stages Production, Staging",
    ]
    assert report.note == "lineage: snapshot recorded at 2025-03-01T12:06:00Z (status.lineage)"


def test_the_snapshot_wins_over_the_run_as_it_is_now() -> None:
    later = source_run(dirty=True)
    later["spec"]["params"]["learning_rate"] = "0.5"
    report = build_report(registered(), Run.from_object(later), None, NOW)
    text = render_tree(lineage_tree(report))
    assert "learning_rate = 0.05" in text
    assert "(clean, path train.py)" in text
    assert "experiment churn (experiment not found)" in text


def test_without_a_snapshot_the_run_is_read_and_the_note_says_so() -> None:
    running = source_run(phase="Running", dirty=True)
    report = build_report(
        registered(with_snapshot=False),
        Run.from_object(running),
        Experiment.from_object(experiment(metric="loss", goal="minimize")),
        NOW,
    )
    assert report.source == "run"
    assert "no snapshot in status yet; read from Run xgb-002 as it is now" in report.note
    text = render_tree(lineage_tree(report))
    assert "├── run xgb-002 (Running)" in text
    assert "experiment churn (objective: minimize loss)" in text
    assert "(dirty: uncommitted changes, path train.py)" in text
    assert lineage_data(report)["lineageSource"] == "run"


def test_without_a_snapshot_or_a_run_there_is_no_lineage() -> None:
    report = build_report(registered(with_snapshot=False), None, None, NOW)
    assert report.source == "none"
    assert report.note == "lineage: no snapshot in status, and Run xgb-002 was not found"
    lines = render_tree(lineage_tree(report)).splitlines()
    assert lines[1] == "├── run xgb-002 (run not found)"
    assert lines[2].startswith("├── artifact ")


def test_a_version_trained_outside_modelplane_has_no_run() -> None:
    mv = ModelVersion.from_object(model_version("churn", 1))
    report = build_report(mv, None, None, NOW)
    assert report.note == "lineage: none; the version names no run (trained outside modelplane)"
    assert render_tree(lineage_tree(report)).splitlines() == [
        "churn v1 (ModelVersion churn-v1)",
        "├── run <none> (trained outside modelplane)",
        "├── artifact s3://models/churn/1/",
        f"│   ├── digest {ARTIFACT_DIGEST}",
        "│   └── verified unknown (not checked yet)",
        "└── stages <none>",
    ]
    data = lineage_data(report)
    assert data["run"] is None
    assert data["params"] == {}


def test_a_failed_verification_shows_the_digest_found() -> None:
    obj = model_version("churn", 1)
    found = "sha256:" + "0" * 64
    obj["status"] = {"artifact": {"verified": False, "size": 10, "digest": found}}
    tree = render_tree(lineage_tree(build_report(ModelVersion.from_object(obj), None, None, NOW)))
    assert f"verified false (10 bytes, found {found})" in tree


def test_lineage_data_holds_the_full_record() -> None:
    report = build_report(
        registered(), Run.from_object(source_run()), Experiment.from_object(experiment()), NOW
    )
    data = lineage_data(report)
    assert data["run"] == {"name": "xgb-002", "phase": "Finished", "found": True}
    assert data["experiment"] == {
        "name": "churn",
        "objective": {"metric": "val_auc", "goal": "maximize"},
        "found": True,
    }
    assert data["code"]["commit"] == COMMIT
    assert data["data"] == [
        {"name": "train", "uri": "s3://datasets/churn/train.parquet", "digest": TRAIN_DIGEST}
    ]
    assert data["metrics"]["val_auc"]["last"] == 0.87
    assert data["artifact"]["verified"] is True
    assert data["stages"] == ["Production", "Staging"]
    assert data["recordedAt"] == "2025-03-01T12:06:00Z"
