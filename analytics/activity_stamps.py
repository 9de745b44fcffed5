"""Activity stamps: which learners' events in a course run changed, without reading them.

An answer computed from one learner's events in one run (the recommender's
next items) can be reused until those events change. Reading the events to
find out costs a database query per request; instead every writer of events
replaces a random *stamp* in the shared cache (Redis), and the answer's cache
key carries the stamps it was computed under:

- ``activity:{course}:{learner}``: replaced by the events API / xAPI for
  each learner of a stored batch, and by a single ``LearningEvent.save()``;
- ``activity:{course}``: replaced by bulk loads of a whole run (OULAD import,
  demo seeding, rollup rebuilds), which would otherwise touch thousands of
  learner stamps.

A stamp is replaced when the write is made and again after its transaction
commits, so an answer computed from data read before the commit is filed
under a stamp that is already gone. A missing stamp (never written, or the
cache was flushed) is created at random on read, so an answer filed before a
flush can never match again. If the cache cannot be reached, `stamps_for`
returns None and callers fall back to reading the data.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.db import transaction

from eduplatform.throttles import _backend, _redis_client

logger = logging.getLogger(__name__)

# Stamps outlive any answer keyed by them (answers are cached for minutes).
STAMP_SECONDS = 7 * 24 * 3600


def _run_key(course_id: int) -> str:
    return f"activity:{course_id}"


def _learner_key(course_id: int, learner_id: int) -> str:
    return f"activity:{course_id}:{learner_id}"


def _write(keys: list[str]) -> None:
    if not keys:
        return
    try:
        backend = _backend(cache)
        if isinstance(backend, RedisCache):
            pipe = _redis_client(backend).pipeline(transaction=False)
            for key in keys:
                pipe.set(
                    backend.make_and_validate_key(key),
                    secrets.token_hex(8).encode(),
                    ex=STAMP_SECONDS,
                )
            pipe.execute()
        else:
            backend.set_many({key: secrets.token_hex(8) for key in keys}, STAMP_SECONDS)
    except Exception:
        # Answers keyed by the old stamps expire on their own (minutes).
        logger.error("activity stamps: could not record new activity")


def stamps_bump(*, pairs: Iterable[tuple[int, int]] = (), course_ids: Iterable[int] = ()) -> None:
    """Record new or removed events of (course id, learner id) pairs and of whole runs."""
    keys = [_learner_key(c, learner) for c, learner in set(pairs)]
    keys += [_run_key(c) for c in set(course_ids)]
    _write(keys)
    transaction.on_commit(lambda: _write(keys))


def stamps_for(*, course_id: int, learner_id: int) -> str | None:
    """The run's and the learner's stamps as one string, or None if the cache is unreachable."""
    keys = [_run_key(course_id), _learner_key(course_id, learner_id)]
    try:
        backend = _backend(cache)
        if isinstance(backend, RedisCache):
            client = _redis_client(backend)
            full = [backend.make_and_validate_key(k) for k in keys]
            values: list[Any] = client.mget(full)
            if any(v is None for v in values):
                pipe = client.pipeline(transaction=False)
                for key, value in zip(full, values, strict=True):
                    if value is None:
                        pipe.set(key, secrets.token_hex(8).encode(), nx=True, ex=STAMP_SECONDS)
                pipe.mget(full)
                values = pipe.execute()[-1]
            return ":".join(v.decode() if isinstance(v, bytes) else str(v) for v in values)
        found = backend.get_many(keys)
        for key in keys:
            if key not in found:
                backend.add(key, secrets.token_hex(8), STAMP_SECONDS)
        found = backend.get_many(keys)
        if len(found) < len(keys):
            return None
        return ":".join(str(found[k]) for k in keys)
    except Exception:
        logger.warning("activity stamps: unreadable, reading the events instead")
        return None


def _on_event_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    stamps_bump(pairs=[(instance.course_id, instance.learner_id)])


def connect_signals() -> None:
    """Single event saves (admin, tests); bulk writers call `stamps_bump` themselves.

    Deletions are not watched: a receiver would make Django load every event
    before deleting it. The one deleting path, erasure, removes the learner
    (and so every answer about them) too.
    """
    from django.db.models.signals import post_save

    from analytics.models import LearningEvent

    post_save.connect(_on_event_saved, sender=LearningEvent, dispatch_uid="activity:event")
