"""The one in-process cache primitive and the one registry that resets them all.

Every per-process memory of the web workers (served predictions, feature frames,
page bundles, access grants, recommendation answers) is a `BoundedCache`: at most
`maxsize` entries, least recently put out first, and an entry older than `ttl()`
reads as absent. Each cache registers itself (with a name, for inspection) on creation, so
`reset_all()` (tests, a process that must forget everything) clears every one
without any app importing another app's caches.

Why not cachetools: its TTL caches fix an entry's expiry when it is stored, while
callers here need the TTL read at lookup time (a setting changed at run time
applies to entries already held) and the age of a stale entry (the churn run
scores are served stale while one thread rescores them). That is 60 lines here
against a wrapper of about the same size around the library.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

# Weak: a cache made for one test or one job leaves the registry with its owner.
_REGISTRY: weakref.WeakSet[BoundedCache] = weakref.WeakSet()
_REGISTRY_LOCK = threading.Lock()


class BoundedCache:
    """At most `maxsize` entries; an entry older than `ttl()` seconds reads as absent.

    `ttl` is a callable so a setting changed at run time (tests) applies to
    entries already held; a plain number is accepted too.
    """

    def __init__(self, name: str, *, maxsize: int, ttl: Callable[[], float] | float) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.name = name
        self.maxsize = maxsize
        self._ttl = ttl if callable(ttl) else (lambda: float(ttl))
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        with _REGISTRY_LOCK:
            _REGISTRY.add(self)

    def peek(self, key: Hashable) -> tuple[float, Any] | None:
        """(age in seconds, value) of the entry, however old, or None."""
        hit = self._items.get(key)
        if hit is None:
            return None
        return time.monotonic() - hit[0], hit[1]

    def get(self, key: Hashable) -> Any | None:
        hit = self.peek(key)
        if hit is None or hit[0] >= self._ttl():
            return None
        return hit[1]

    def put(self, key: Hashable, value: Any, *, age: float = 0.0) -> None:
        """Store `value`; `age` back-dates it (a value computed elsewhere earlier)."""
        with self._lock:
            self._items[key] = (time.monotonic() - age, value)
            self._items.move_to_end(key)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        with self._lock:
            self._items.pop(key, None)

    def discard_where(self, predicate: Callable[[Any], bool]) -> None:
        """Drop every entry whose key matches (e.g. older days of the same run)."""
        with self._lock:
            for key in [k for k in self._items if predicate(k)]:
                del self._items[key]

    def __contains__(self, key: Hashable) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def registered() -> list[BoundedCache]:
    """Every live cache of this process, by name."""
    with _REGISTRY_LOCK:
        return sorted(_REGISTRY, key=lambda c: c.name)


def reset_all() -> None:
    """Forget every cached entry of this process (tests; after a restore)."""
    for cache in registered():
        cache.clear()
