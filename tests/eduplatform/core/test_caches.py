"""BoundedCache: bounded (least recently put out), timed, and reset through one registry."""

from __future__ import annotations

import pytest

from eduplatform.core import caches
from eduplatform.core.caches import BoundedCache


@pytest.fixture
def named(request: pytest.FixtureRequest):
    def make(maxsize: int, ttl) -> BoundedCache:
        return BoundedCache(f"test.{request.node.name}", maxsize=maxsize, ttl=ttl)

    return make


def test_oldest_put_goes_first_when_full(named) -> None:
    memory = named(2, lambda: 60.0)
    memory.put("a", 1)
    memory.put("b", 2)
    memory.put("a", 3)  # a is now the most recent
    memory.put("c", 4)
    assert memory.get("b") is None
    assert (memory.get("a"), memory.get("c")) == (3, 4)


def test_filled_far_past_its_bound_it_holds_maxsize(named) -> None:
    memory = named(50, 60.0)
    for i in range(10_000):
        memory.put(i, i)
    assert len(memory) == 50
    assert memory.get(9_999) == 9_999 and memory.get(0) is None


def test_entries_older_than_the_setting_read_as_absent(named) -> None:
    seconds = [60.0]
    memory = named(10, lambda: seconds[0])
    memory.put("a", 1)
    assert memory.get("a") == 1
    seconds[0] = 0.0  # the setting changed: entries already held expire too
    assert memory.get("a") is None
    assert memory.peek("a")[1] == 1  # still there for a stale read
    memory.clear()
    seconds[0] = 60.0
    assert memory.get("a") is None


def test_back_dated_entries_expire_early(named) -> None:
    memory = named(10, 30.0)
    memory.put("old", 1, age=31.0)
    memory.put("new", 2, age=29.0)
    assert memory.get("old") is None and memory.get("new") == 2


def test_reset_all_clears_every_registered_cache(named) -> None:
    one, two = named(5, 60.0), named(5, 60.0)
    one.put("x", 1)
    two.put("y", 2)
    caches.reset_all()
    assert len(one) == 0 and len(two) == 0


def test_a_dropped_cache_leaves_the_registry(named) -> None:
    import gc

    cache = named(5, 60.0)
    assert cache in caches.registered()
    del cache
    gc.collect()
    assert not [c for c in caches.registered() if c.name.startswith("test.test_a_dropped")]
