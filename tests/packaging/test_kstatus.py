"""The statuses the operator writes, judged the way kstatus (and so Flux) judges them.

`compute` follows sigs.k8s.io/cli-utils/pkg/kstatus/status for a custom resource: a deletion
timestamp means Terminating; a present status.observedGeneration that differs from the
generation means InProgress; then the first condition in the list that is Reconciling=True
(InProgress) or Stalled=True (Failed) decides; otherwise the resource is Current. kstatus never
reads Ready, so an object that is not Ready must say why with Reconciling or Stalled, or Flux
takes it for done. The statuses come from the operator's own planners in modelplane.core.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from modelplane.api import (
    ArtifactStatus,
    Experiment,
    Lineage,
    ModelVersionStatus,
    Run,
)
from modelplane.core.artifacts import ArtifactOutcome
from modelplane.core.conditions import ConditionType, Reason
from modelplane.core.experiments import desired_status
from modelplane.core.lineage import LineageOutcome
from modelplane.core.modelversions import assemble_status
from modelplane.core.runs import plan_run, references

from .conftest import REPO

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
GENERATION = 3


def compute(obj: Mapping[str, Any]) -> str:
    """kstatus' status of a custom resource: Current, InProgress, Failed or Terminating."""
    metadata = obj.get("metadata", {})
    if metadata.get("deletionTimestamp"):
        return "Terminating"
    status = obj.get("status") or {}
    generation = metadata.get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed != generation:
        return "InProgress"
    for condition in status.get("conditions") or ():
        if condition["type"] == "Reconciling" and condition["status"] == "True":
            return "InProgress"
        if condition["type"] == "Stalled" and condition["status"] == "True":
            return "Failed"
    return "Current"


def wrap(kind: str, status: Mapping[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "ml", "generation": GENERATION},
    }
    if status is not None:
        body["status"] = dict(status)
    return body


def test_compute_follows_kstatus_on_plain_samples() -> None:
    """The rules above, on hand-made objects (including kstatus' blind spots)."""
    ready = {"type": "Ready", "status": "True", "reason": "Reconciled"}
    stalled = {"type": "Stalled", "status": "True", "reason": "DigestMismatch"}
    reconciling = {"type": "Reconciling", "status": "True", "reason": "Verifying"}
    assert compute(wrap("Run", {"observedGeneration": GENERATION, "conditions": [ready]})) == (
        "Current"
    )
    assert compute(wrap("Run", {"observedGeneration": 2, "conditions": [ready]})) == "InProgress"
    assert compute(wrap("Run", {"conditions": [stalled]})) == "Failed"
    assert compute(wrap("Run", {"conditions": [reconciling, stalled]})) == "InProgress"
    assert compute(wrap("Run", {"conditions": [stalled, reconciling]})) == "Failed"
    # kstatus' blind spots: no status at all, and Ready=False alone, both count as Current.
    assert compute(wrap("Run", None)) == "Current"
    not_ready = {"type": "Ready", "status": "False", "reason": "ExperimentNotFound"}
    assert compute(wrap("Run", {"observedGeneration": GENERATION, "conditions": [not_ready]})) == (
        "Current"
    )
    deleting = wrap("Run", None)
    deleting["metadata"]["deletionTimestamp"] = "2026-03-01T12:00:00Z"
    assert compute(deleting) == "Terminating"


def assert_kstatus_rules(kind: str, status: Mapping[str, Any]) -> str:
    """The conventions our statuses keep for kstatus; returns kstatus' verdict.

    observedGeneration is the object's generation; Ready is present with that
    observedGeneration; Reconciling and Stalled appear only while True (kstatus' abnormal-true
    polarity) and never together; Ready=False comes with one of them, so kstatus cannot call a
    not-ready object Current.
    """
    assert status["observedGeneration"] == GENERATION
    conditions = {c["type"]: c for c in status["conditions"]}
    ready = conditions[ConditionType.READY]
    assert ready["observedGeneration"] == GENERATION
    abnormal = [
        conditions[t] for t in (ConditionType.RECONCILING, ConditionType.STALLED) if t in conditions
    ]
    assert all(c["status"] == "True" for c in abnormal)
    assert len(abnormal) <= 1
    verdict = compute(wrap(kind, status))
    if ready["status"] == "True":
        assert verdict == "Current"
    else:
        assert verdict in {"InProgress", "Failed"}, f"Ready=False but kstatus says {verdict}"
    return verdict


DIGEST = "sha256:" + "ab" * 32
SNAPSHOT = Lineage(experiment="churn", run="r1", recorded_at=NOW)
LINEAGES = {
    "recorded": LineageOutcome(SNAPSHOT, "True", Reason.LINEAGE_RECORDED, "recorded"),
    "run running": LineageOutcome(SNAPSHOT, "False", Reason.RUN_RUNNING, "still running"),
    "run missing": LineageOutcome(None, "False", Reason.RUN_NOT_FOUND, "run r1 not found"),
    "no run": LineageOutcome(None, None, "", ""),
}
ARTIFACTS = {
    "verified": ArtifactOutcome(
        ArtifactStatus(verified=True, size=3, digest=DIGEST, verified_at=NOW),
        "True",
        Reason.ARTIFACT_VERIFIED,
        "verified",
    ),
    "mismatch": ArtifactOutcome(
        ArtifactStatus(verified=False, size=3, digest=DIGEST, verified_at=NOW),
        "False",
        Reason.DIGEST_MISMATCH,
        "expected A got B",
    ),
    "verifying": ArtifactOutcome(None, "Unknown", Reason.VERIFYING, "not verified yet"),
    "unreachable": ArtifactOutcome(
        ArtifactStatus(verified=False), "Unknown", Reason.STORE_UNREACHABLE, "cannot reach"
    ),
}
# kstatus' verdict for each (lineage, artifact): a problem a person must fix is Failed, work
# under way (a running run, verification, an unreachable store) is InProgress.
EXPECTED = {
    ("recorded", "verified"): "Current",
    ("no run", "verified"): "Current",
    ("recorded", "verifying"): "InProgress",
    ("recorded", "unreachable"): "InProgress",
    ("run running", "verified"): "InProgress",
    ("recorded", "mismatch"): "Failed",
    ("run missing", "verified"): "Failed",
    ("no run", "mismatch"): "Failed",
}


@pytest.mark.parametrize(("lineage", "artifact"), sorted(EXPECTED))
def test_model_version_statuses_keep_the_kstatus_rules(lineage: str, artifact: str) -> None:
    status: ModelVersionStatus = assemble_status(
        None,
        generation=GENERATION,
        lineage=LINEAGES[lineage],
        artifact=ARTIFACTS[artifact],
        now=NOW,
    )
    verdict = assert_kstatus_rules("ModelVersion", status.to_dict())
    assert verdict == EXPECTED[lineage, artifact]


def test_model_version_mixing_a_problem_and_work_under_way_is_stalled_for_kstatus() -> None:
    """A digest mismatch while the run still runs: kstatus must not wait forever (InProgress)
    on an object a person has to fix."""
    status = assemble_status(
        None,
        generation=GENERATION,
        lineage=LINEAGES["run running"],
        artifact=ARTIFACTS["mismatch"],
        now=NOW,
    ).to_dict()
    assert compute(wrap("ModelVersion", status)) == "Failed"


def test_experiment_status_is_current_for_kstatus() -> None:
    experiment = Experiment.model_validate(
        {
            "apiVersion": "modelplane.io/v1alpha1",
            "kind": "Experiment",
            "metadata": {"name": "churn", "namespace": "ml", "generation": GENERATION},
            "spec": {"objective": {"metric": "val_auc", "goal": "maximize"}},
        }
    )
    status = desired_status(experiment, [], now=NOW).to_dict()
    assert assert_kstatus_rules("Experiment", status) == "Current"


def run_object(**spec: Any) -> Run:
    return Run.model_validate(
        {
            "apiVersion": "modelplane.io/v1alpha1",
            "kind": "Run",
            "metadata": {"name": "xgb-001", "namespace": "ml", "generation": GENERATION},
            "spec": {"experiment": "churn", **spec},
        }
    )


def test_run_with_its_references_is_current_for_kstatus() -> None:
    run = run_object()
    plan = plan_run(run, (), now=NOW, timeout=timedelta(minutes=10))
    assert plan.patch is not None
    assert assert_kstatus_rules("Run", plan.patch) == "Current"


def test_run_missing_its_experiment_is_not_current_for_kstatus() -> None:
    run = run_object()
    plan = plan_run(run, references(run.spec), now=NOW, timeout=timedelta(minutes=10))
    assert plan.patch is not None
    ready = next(c for c in plan.patch["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert_kstatus_rules("Run", plan.patch)


def test_flux_examples_parse_and_point_at_the_repository_layout() -> None:
    """The Flux examples are valid YAML naming the chart and the kustomize base that exist."""
    flux = REPO / "manifests" / "gitops" / "flux"
    release = [o for o in yaml.safe_load_all((flux / "helmrelease.example.yaml").read_text()) if o]
    [helm_release] = [o for o in release if o["kind"] == "HelmRelease"]
    chart = helm_release["spec"]["chart"]["spec"]["chart"]
    assert (REPO / chart / "Chart.yaml").is_file()
    values = yaml.safe_load((REPO / chart / "values.yaml").read_text())
    assert helm_release["spec"]["values"].keys() <= values.keys()
    kustomization = yaml.safe_load((flux / "kustomization.example.yaml").read_text())
    assert (REPO / kustomization["spec"]["path"] / "kustomization.yaml").is_file()
