"""TimedMemory: bounded (least recently put out) and timed (old entries read as absent)."""

from __future__ import annotations

from eduplatform.core.caches import TimedMemory


def test_oldest_put_goes_first_when_full() -> None:
    memory = TimedMemory(2, lambda: 60.0)
    memory.put("a", 1)
    memory.put("b", 2)
    memory.put("a", 3)  # a is now the most recent
    memory.put("c", 4)
    assert memory.get("b") is None
    assert (memory.get("a"), memory.get("c")) == (3, 4)


def test_entries_older_than_the_setting_read_as_absent() -> None:
    seconds = [60.0]
    memory = TimedMemory(10, lambda: seconds[0])
    memory.put("a", 1)
    assert memory.get("a") == 1
    seconds[0] = 0.0  # the setting changed: entries already held expire too
    assert memory.get("a") is None
    memory.clear()
    seconds[0] = 60.0
    assert memory.get("a") is None
