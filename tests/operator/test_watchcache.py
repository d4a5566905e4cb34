"""The watch cache: what a reconciliation reads instead of a GET (pure, no cluster)."""

from __future__ import annotations

from typing import Any

from modelplane.operator.watchcache import WatchCache


def obj(name: str, rv: str, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "namespace": "ns",
            "name": name,
            "resourceVersion": rv,
            "managedFields": [{"manager": "kubectl"}],
        },
        **extra,
    }


def never() -> dict[str, Any] | None:
    raise AssertionError("the cache went to the API server")


def test_every_object_of_the_watch_is_read_from_memory() -> None:
    cache = WatchCache(every=True)
    cache.observe(obj("a", "1"))
    cache.observe(obj("a", "2"))
    got = cache.get("ns", "a", never)
    assert got is not None
    assert got["metadata"]["resourceVersion"] == "2"
    assert "managedFields" not in got["metadata"]


def test_a_miss_fetches_and_keeps_the_answer() -> None:
    cache = WatchCache(every=True)
    fetched: list[str] = []

    def fetch() -> dict[str, Any]:
        fetched.append("a")
        return obj("a", "5")

    assert cache.get("ns", "a", fetch) == {
        "metadata": {"namespace": "ns", "name": "a", "resourceVersion": "5"}
    }
    assert cache.get("ns", "a", fetch) is not None
    assert fetched == ["a"]


def test_an_absent_object_is_not_kept() -> None:
    cache = WatchCache(every=True)
    assert cache.get("ns", "a", lambda: None) is None
    assert len(cache) == 0


def test_a_selective_cache_keeps_only_what_was_read_and_then_follows_it() -> None:
    cache = WatchCache(every=False)
    cache.observe(obj("a", "1"))
    cache.observe(obj("b", "1"))
    assert len(cache) == 0
    assert cache.get("ns", "a", lambda: obj("a", "1")) is not None
    cache.observe(obj("a", "2"))
    cache.observe(obj("b", "2"))
    got = cache.get("ns", "a", never)
    assert got is not None
    assert got["metadata"]["resourceVersion"] == "2"
    assert len(cache) == 1


def test_an_event_during_the_fetch_wins_over_the_older_answer() -> None:
    cache = WatchCache(every=False)

    def slow_fetch() -> dict[str, Any]:
        # The watch delivers a newer version while the GET's answer is on its way.
        cache.observe(obj("a", "7"))
        return obj("a", "6")

    got = cache.get("ns", "a", slow_fetch)
    assert got is not None
    assert got["metadata"]["resourceVersion"] == "7"


def test_deleted_and_forgotten_objects_are_read_from_the_server_again() -> None:
    cache = WatchCache(every=True)
    cache.observe(obj("a", "1"))
    cache.observe(obj("a", "1"), deleted=True)
    assert cache.get("ns", "a", lambda: None) is None
    cache.observe(obj("b", "1"))
    cache.forget("ns", "b")
    got = cache.get("ns", "b", lambda: obj("b", "3"))
    assert got is not None
    assert got["metadata"]["resourceVersion"] == "3"


def test_readers_get_their_own_copy() -> None:
    cache = WatchCache(every=True)
    cache.observe(obj("a", "1", spec={"replicas": 1}))
    got = cache.get("ns", "a", never)
    assert got is not None
    got["spec"]["replicas"] = 5
    again = cache.get("ns", "a", never)
    assert again is not None
    assert again["spec"]["replicas"] == 1


def test_objects_without_a_namespace_and_name_are_ignored() -> None:
    cache = WatchCache(every=True)
    cache.observe({"metadata": {"name": "cluster-scoped"}})
    assert len(cache) == 0


def test_the_answer_to_our_own_write_replaces_the_version_it_was_based_on() -> None:
    cache = WatchCache(every=True)
    cache.observe(obj("a", "1"))
    based_on = cache.get("ns", "a", never)
    assert based_on is not None
    cache.written(based_on, obj("a", "2", status={"phase": "Done"}))
    got = cache.get("ns", "a", never)
    assert got is not None
    assert got["metadata"]["resourceVersion"] == "2"


def test_an_event_newer_than_the_read_is_not_replaced_by_a_write_answer() -> None:
    cache = WatchCache(every=True)
    cache.observe(obj("a", "1"))
    based_on = cache.get("ns", "a", never)
    assert based_on is not None
    cache.observe(obj("a", "3"))  # someone else's write arrived first
    cache.written(based_on, obj("a", "2"))
    got = cache.get("ns", "a", never)
    assert got is not None
    assert got["metadata"]["resourceVersion"] == "3"


def test_peek_reads_memory_only_and_bodies_lists_one_namespace() -> None:
    cache = WatchCache(every=True)
    assert cache.peek("ns", "a") is None
    cache.observe(obj("a", "1"))
    cache.observe(obj("b", "2"))
    cache.observe({"metadata": {"namespace": "other", "name": "c", "resourceVersion": "3"}})
    peeked = cache.peek("ns", "a")
    assert peeked is not None
    assert peeked["metadata"]["resourceVersion"] == "1"
    peeked["metadata"]["name"] = "changed"
    assert sorted(body["metadata"]["name"] for body in cache.bodies("ns")) == ["a", "b"]
    assert [body["metadata"]["name"] for body in cache.bodies("other")] == ["c"]
    assert cache.bodies("empty") == []


def test_the_late_event_of_an_earlier_write_does_not_replace_a_later_answer() -> None:
    cache = WatchCache(every=True)
    cache.observe(obj("a", "10"))
    first = cache.get("ns", "a", never)
    assert first is not None
    cache.written(first, obj("a", "11"))
    second = cache.get("ns", "a", never)
    assert second is not None
    cache.written(second, obj("a", "12"))
    cache.observe(obj("a", "11"))  # the event of the first write, arriving late
    got = cache.get("ns", "a", never)
    assert got is not None
    assert got["metadata"]["resourceVersion"] == "12"
    cache.observe(obj("a", "13"))
    assert (cache.peek("ns", "a") or {})["metadata"]["resourceVersion"] == "13"


def test_versions_that_are_not_integers_are_kept_in_the_order_they_arrive() -> None:
    cache = WatchCache(every=True)
    cache.observe(obj("a", "b"))
    cache.observe(obj("a", "a"))
    assert (cache.peek("ns", "a") or {})["metadata"]["resourceVersion"] == "a"
