"""The ModelVersion indexes, kept from the watch stream as it is read."""

from __future__ import annotations

import asyncio
from typing import Any

from modelplane.api import GROUP, VERSION
from modelplane.operator.versionindexes import RunHolder, VersionIndex, VersionStages

DIGEST = "sha256:" + "ab" * 32


def version(
    name: str, *, namespace: str = "ml", run: str | None = None, **extra: Any
) -> dict[str, Any]:
    model, _, number = name.rpartition("-v")
    spec: dict[str, Any] = {
        "model": model,
        "version": int(number),
        "artifact": {"uri": "s3://models/m.pkl", "digest": DIGEST},
    }
    if run is not None:
        spec["run"] = run
    metadata = {"name": name, "namespace": namespace, **extra.pop("metadata", {})}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelVersion",
        "metadata": metadata,
        "spec": spec,
        **extra,
    }


def test_versions_are_found_by_model_and_by_the_run_they_name() -> None:
    index = VersionIndex()
    index.observe(None, version("churn-v1", run="r1"), "ml")
    index.observe(None, version("churn-v2", status={"stages": ["Production"]}), "ml")
    index.observe(None, version("fraud-v1", run="r1"), "ml")
    assert sorted(index.by_model[("ml", "churn")], key=lambda e: e.name) == [
        VersionStages("churn-v1", 1, ()),
        VersionStages("churn-v2", 2, ("Production",)),
    ]
    assert {h.name for h in index.by_run[("ml", "r1")]} == {"churn-v1", "fraud-v1"}
    assert index.by_run.get(("ml", "r2"), ()) == ()


def test_a_change_moves_a_version_and_a_deletion_forgets_it() -> None:
    index = VersionIndex()
    index.observe(None, version("churn-v1", run="r1"), "ml")
    index.observe("MODIFIED", version("churn-v1", run="r2"), "ml")
    assert ("ml", "r1") not in index.by_run
    assert [h.name for h in index.by_run[("ml", "r2")]] == ["churn-v1"]
    index.observe("DELETED", version("churn-v1", run="r2"), "ml")
    assert len(index.by_model) == 0
    assert len(index.by_run) == 0


def test_a_version_being_deleted_holds_no_run_and_one_that_does_not_parse_is_left_out() -> None:
    index = VersionIndex()
    deleting = {"deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["x"]}
    index.observe(None, version("churn-v1", run="r1", metadata=deleting), "ml")
    broken = version("churn-v2", run="r1")
    broken["spec"]["version"] = "two"
    index.observe(None, broken, "ml")
    assert ("ml", "r1") not in index.by_run
    assert [e.name for e in index.by_model[("ml", "churn")]] == ["churn-v1"]


def test_the_lineage_of_a_holder_is_its_lineage_recorded_condition() -> None:
    index = VersionIndex()
    condition = {
        "type": "LineageRecorded",
        "status": "False",
        "reason": "RunRunning",
        "message": "run r1 is still Running",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
    index.observe(None, version("churn-v1", run="r1", status={"conditions": [condition]}), "ml")
    assert list(index.by_run[("ml", "r1")]) == [RunHolder("churn-v1", ("False", "RunRunning"))]


def test_a_namespace_is_complete_once_its_listing_or_the_clusters_is_read() -> None:
    index = VersionIndex()
    index.observe(None, version("churn-v1"), "ml")
    assert not index.is_listed("ml")
    index.listed("ml")
    assert index.is_listed("ml")
    assert not index.is_listed("other")
    index.listed(None)
    assert index.is_listed("other")


def test_a_listing_read_again_forgets_the_versions_it_no_longer_shows() -> None:
    """After the watch lost its history, kopf lists again: a version deleted meanwhile sent
    no DELETED event."""
    index = VersionIndex()
    index.observe(None, version("churn-v1"), "ml")
    index.observe(None, version("churn-v2"), "ml")
    index.observe(None, version("churn-v1", namespace="other"), "other")
    index.listed("ml")
    index.listed("other")
    index.observe(None, version("churn-v2"), "ml")
    index.listed("ml")
    assert [e.name for e in index.by_model[("ml", "churn")]] == ["churn-v2"]
    assert [e.name for e in index.by_model[("other", "churn")]] == ["churn-v1"]


def test_waiting_for_a_listing_ends_when_it_is_read_or_after_the_timeout() -> None:
    async def scenario() -> tuple[bool, bool]:
        index = VersionIndex()
        waiting = asyncio.ensure_future(index.wait_listed("ml", timeout=5))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        index.listed("ml")
        return await waiting, await index.wait_listed("other", timeout=0.01)

    assert asyncio.run(scenario()) == (True, False)
