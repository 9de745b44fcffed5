"""A process's bounded, timed memory of answers (least recently put out first)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class TimedMemory:
    """At most `size` entries; an entry older than `seconds()` reads as absent.

    `seconds` is a callable so a setting changed at run time (tests) applies
    to entries already held.
    """

    def __init__(self, size: int, seconds: Callable[[], float]) -> None:
        self._size = size
        self._seconds = seconds
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        hit = self._items.get(key)
        if hit is None or time.monotonic() - hit[0] >= self._seconds():
            return None
        return hit[1]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = (time.monotonic(), value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
