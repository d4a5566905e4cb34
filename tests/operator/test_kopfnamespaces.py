"""kopf's namespace tracking and readiness toggles as `kopfnamespaces` changes them."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from kopf._cogs.aiokits import aiotoggles

from modelplane.operator.kopfnamespaces import releasing_toggles, revise_namespaces


def namespace(name: str, *, terminating: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": name}}
    if terminating:
        body["metadata"]["deletionTimestamp"] = "2026-11-22T10:00:00Z"
        body["status"] = {
            "phase": "Terminating",
            "conditions": [{"type": "NamespaceContentRemaining", "status": "False"}],
        }
    return body


def test_a_terminating_namespace_is_served_until_it_is_deleted() -> None:
    insights = SimpleNamespace(namespaces=set())
    patterns = ["ml-*"]
    revise_namespaces(
        insights=insights,
        namespaces=patterns,
        raw_bodies=[namespace("ml-a", terminating=True), namespace("ml-b"), namespace("other")],
    )
    assert insights.namespaces == {"ml-a", "ml-b"}
    revise_namespaces(
        insights=insights,
        namespaces=patterns,
        raw_events=[{"type": "MODIFIED", "object": namespace("ml-b", terminating=True)}],
    )
    assert insights.namespaces == {"ml-a", "ml-b"}
    revise_namespaces(
        insights=insights,
        namespaces=patterns,
        raw_events=[{"type": "DELETED", "object": namespace("ml-b", terminating=True)}],
    )
    assert insights.namespaces == {"ml-a"}


def test_a_watch_cancelled_before_its_listing_releases_the_operator() -> None:
    async def scenario() -> bool:
        indexed = aiotoggles.ToggleSet(all)
        toggle = await indexed.make_toggle(name="modelstages@gone-namespace")

        async def never_lists(**_: Any) -> None:
            await asyncio.Event().wait()

        task = asyncio.ensure_future(
            releasing_toggles(never_lists)(operator_indexed=indexed, resource_indexed=toggle)
        )
        await asyncio.sleep(0)
        assert not indexed.is_on()
        task.cancel()
        await asyncio.wait_for(indexed.wait_for(True), timeout=5)
        return indexed.is_on()

    assert asyncio.run(scenario())
