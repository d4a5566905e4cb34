"""kopf's watch streams as the operator reads them: lean objects, feeds, and pacing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kopf._cogs.clients import watching
from kopf._cogs.structs.references import Resource
from kopf._core.reactor import processing

from modelplane.operator import kopfstreams

WIDGETS = Resource("example.com", "v1", "widgets")


class Recorder:
    """A feed that writes down what it is shown."""

    def __init__(self) -> None:
        self.seen: list[tuple[str | None, str, str | None]] = []

    def observe(self, event_type: str | None, obj: Mapping[str, Any], scope: str | None) -> None:
        self.seen.append((event_type, obj["metadata"]["name"], scope))

    def listed(self, scope: str | None) -> None:
        self.seen.append(("LISTED", "", scope))


def stream(events: list[Any]) -> Any:
    async def watch(**_: Any) -> AsyncIterator[Any]:
        for event in events:
            yield event

    return kopfstreams.lean(watch)


def test_the_operator_reads_kopf_streams_through_the_lean_watch() -> None:
    kopfstreams.install()
    kopfstreams.install()
    assert getattr(watching.infinite_watch, "modelplane_lean", False)
    assert getattr(processing.process_resource_event, "modelplane_counted", False)


def test_watched_objects_lose_their_managed_fields_only() -> None:
    listed = {"metadata": {"name": "m-v1", "managedFields": [{"manager": "kubectl"}]}}
    events: list[Any] = [
        {"type": None, "object": listed},
        {"type": "DELETED", "object": {"metadata": {"name": "m-v2"}}},
        "a kopf bookmark",
    ]

    async def collect() -> list[Any]:
        return [event async for event in stream(events)(settings=None)]

    seen = asyncio.run(collect())
    assert seen == events
    assert seen[0]["object"] == {"metadata": {"name": "m-v1"}}


def test_a_feed_sees_each_object_as_read_and_the_end_of_each_listing(monkeypatch: Any) -> None:
    monkeypatch.setattr(kopfstreams, "_feeds", {})
    recorder = Recorder()
    kopfstreams.feed("example.com", "gadgets", recorder)
    gadgets = Resource("example.com", "v1", "gadgets")
    events: list[Any] = [
        {"type": None, "object": {"metadata": {"name": "a"}}},
        watching.Bookmark.LISTED,
        {"type": "ADDED", "object": {"metadata": {"name": "b"}}},
    ]

    async def collect() -> list[Any]:
        watch = stream(events)
        return [event async for event in watch(resource=gadgets, namespace="ml")]

    assert asyncio.run(collect()) == events
    assert recorder.seen == [(None, "a", "ml"), ("LISTED", "", "ml"), ("ADDED", "b", "ml")]


def test_a_stream_is_read_on_only_while_few_of_its_events_are_being_handled(
    monkeypatch: Any,
) -> None:
    """Two events at most in kopf's hands: the third waits until one of them is handled."""
    monkeypatch.setattr(kopfstreams, "PACE", 2)
    monkeypatch.setattr(kopfstreams, "_pacers", {})
    events = [{"type": None, "object": {"metadata": {"name": f"w{i}"}}} for i in range(5)]
    handled: list[str] = []

    async def process(*, raw_event: Any, resource: Resource) -> None:
        handled.append(raw_event["object"]["metadata"]["name"])

    counted = kopfstreams.counted(process)

    async def scenario() -> None:
        watch = stream(events)(resource=WIDGETS, namespace=None)
        read = [await anext(watch), await anext(watch)]
        third = asyncio.ensure_future(anext(watch))
        await asyncio.sleep(0.01)
        assert not third.done()
        await counted(raw_event=read[0], resource=WIDGETS)
        assert (await asyncio.wait_for(third, 1))["object"]["metadata"]["name"] == "w2"
        await counted(raw_event=read[1], resource=WIDGETS)
        await counted(raw_event=events[2], resource=WIDGETS)
        rest = [event async for event in watch]
        assert [e["object"]["metadata"]["name"] for e in rest] == ["w3", "w4"]

    asyncio.run(scenario())
    assert handled == ["w0", "w1", "w2"]


def test_a_kind_with_index_handlers_is_read_unpaced(monkeypatch: Any) -> None:
    """kopf holds such a kind's events until its whole listing is indexed: pacing it would
    never let the listing end."""
    monkeypatch.setattr(kopfstreams, "PACE", 1)
    monkeypatch.setattr(kopfstreams, "_pacers", {})

    class Indexing:
        def has_handlers(self, resource: Resource) -> bool:
            return True

    class Registry:
        _indexing = Indexing()

    monkeypatch.setattr(kopfstreams.registries, "get_default_registry", Registry)
    events = [{"type": None, "object": {"metadata": {"name": f"w{i}"}}} for i in range(3)]

    async def collect() -> list[Any]:
        return [event async for event in stream(events)(resource=WIDGETS, namespace=None)]

    assert asyncio.run(asyncio.wait_for(collect(), 1)) == events
