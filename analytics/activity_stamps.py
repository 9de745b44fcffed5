"""Activity stamps: which learners' events in a course run changed, without reading them.

An answer computed from one learner's events in one run (the recommender's
next items) can be reused until those events change. Reading the events to
find out costs a database query per request; instead every writer of events
changes a *stamp* in the shared cache (Redis), and the answer's cache key
carries the stamps it was computed under:

- per learner: bumped by the events API / xAPI for each learner of a
  stored batch, and by a single ``LearningEvent.save()``;
- per run: replaced by bulk loads of a whole run (OULAD import, demo
  seeding), which would otherwise touch thousands of learner stamps.

Both live in one Redis hash per run (``activity-stamps:{course}``), written by one
script call per run and batch, read with the learner's in one call.

A stamp changes after the write's transaction commits, so an answer computed
from data read before the commit is filed under a stamp that is already gone
(and, for readers in the writing transaction, also at once). A missing run
token (never written, or the cache was flushed) is created at random on read,
so an answer filed before a flush can never match again. If the cache cannot
be reached, `stamps_for` returns None and callers fall back to reading the data.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.db import transaction

from eduplatform.core.throttles import Read, cache_backend, check_all, redis_client

logger = logging.getLogger(__name__)

# Stamps outlive any answer keyed by them (answers are cached for minutes).
STAMP_SECONDS = 7 * 24 * 3600

# One hash per run: field "run" holds a random token (replaced by bulk loads,
# created at random when missing), and one counter per learner. A stamp is
# the token plus the learner's counter: a counter may start again from 0
# after a flush, but under a new token, so no stamp is ever repeated.
_BUMP_SCRIPT = """
local fresh = redis.call('HSETNX', KEYS[1], 'run', ARGV[1])
if ARGV[3] == 'run' and fresh == 0 then
  redis.call('HSET', KEYS[1], 'run', ARGV[1])
end
for i = 4, #ARGV do
  redis.call('HINCRBY', KEYS[1], ARGV[i], 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""


def _key(course_id: int) -> str:
    return f"activity-stamps:{course_id}"


def _script(backend: RedisCache, name: str, source: str) -> Any:
    script = backend.__dict__.get(name)
    if script is None:
        script = backend.__dict__[name] = redis_client(backend).register_script(source)
    return script


def _bump(course_id: int, pseudonyms: list[str], whole_run: bool) -> None:
    backend = cache_backend(cache)
    token = secrets.token_hex(8)
    if isinstance(backend, RedisCache):
        _script(backend, "_stamps_bump", _BUMP_SCRIPT)(
            keys=[backend.make_and_validate_key(_key(course_id))],
            args=[token, STAMP_SECONDS, "run" if whole_run else "-", *pseudonyms],
            client=redis_client(backend),
        )
        return
    # Other backends (per-process memory in development): the same hash as a dict.
    stamps = backend.get(_key(course_id)) or {"run": token}
    if whole_run:
        stamps["run"] = token
    for pseudonym in pseudonyms:
        stamps[pseudonym] = int(stamps.get(pseudonym, 0)) + 1
    backend.set(_key(course_id), stamps, STAMP_SECONDS)


def _write(by_course: dict[int, list[str]], runs: set[int]) -> None:
    try:
        for course_id in sorted(set(by_course) | runs):
            _bump(course_id, by_course.get(course_id, []), course_id in runs)
    except Exception:
        # Answers keyed by the old stamps expire on their own (minutes).
        logger.error("activity stamps: could not record new activity")


def stamps_bump(
    *,
    pairs: Iterable[tuple[int, str]] = (),
    course_ids: Iterable[int] = (),
    now: bool = True,
) -> None:
    """Record new or removed events of (course id, learner pseudonym) pairs and of whole runs.

    After the transaction commits, and with `now` also at once, for readers
    inside the same transaction (a request that writes events and then reads
    recommendations); writers with no such reader (the events API) skip it.
    """
    by_course: dict[int, list[str]] = {}
    for course_id, pseudonym in set(pairs):
        by_course.setdefault(int(course_id), []).append(pseudonym)
    runs = {int(c) for c in course_ids}
    if not by_course and not runs:
        return
    if now:
        _write(by_course, runs)
    transaction.on_commit(lambda: _write(by_course, runs))


def stamps_read(*, course_id: int, pseudonym: str) -> Read:
    """The read of a learner's stamps, for `throttles.check_all(reads=...)`: requests that
    count their throttles anyway get the stamps in the same round trip."""
    return Read(
        key=_key(course_id), candidate=secrets.token_hex(8), field=pseudonym, seconds=STAMP_SECONDS
    )


def stamps_for(*, course_id: int, pseudonym: str) -> str | None:
    """The run's token and the learner's counter as one string, or None if unreachable."""
    read = stamps_read(course_id=course_id, pseudonym=pseudonym)
    return check_all([], None, None, reads=[read])[1].get(read.key)


def _on_event_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    stamps_bump(pairs=[(instance.course_id, instance.learner.pseudonym)])


def connect_signals() -> None:
    """Single event saves (admin, tests); bulk writers call `stamps_bump` themselves.

    Deletions are not watched: a receiver would make Django load every event
    before deleting it. The one deleting path, erasure, removes the learner
    (and so every answer about them) too.
    """
    from django.db.models.signals import post_save

    from analytics.models import LearningEvent

    post_save.connect(_on_event_saved, sender=LearningEvent, dispatch_uid="activity:event")
