"""Per-process memory of the prediction API's two access queries, revoked everywhere at once.

The prediction endpoints ask the database two things on every request: the
token with its user's role, and whether the learner is enrolled in a run the
user may see (eduplatform/core/prediction_api.py). Their answers change rarely, so
each web process remembers them, under one shared *generation*: a random
string in the cache (Redis). Anything that can change an answer (a token,
user, group, course run, its instructors, an enrolment or a learner saved or
deleted) replaces the generation, and every process drops what it remembered
on its next request: a revoked token or a removed instructor is refused at
once on every worker, not after a timeout.

Rules that keep it safe:

1. A request reads the generation once, before any access query, and files
   what it learns under that generation. A change bumps the generation when
   it is made and again after its transaction commits, so an answer read
   from the database before the commit can only be filed under a generation
   that is already gone.
2. Only grants are remembered (a valid token, an enrolment that is visible);
   refusals always ask the database.
3. No generation (cache unreachable or AUTH_CACHE_SECONDS = 0): nothing is
   remembered or used, every request asks the database.
4. Entries also expire after AUTH_CACHE_SECONDS: a change made without the
   ORM's signals (``QuerySet.update``, raw SQL) takes effect within that.
5. Admin answers (which carry encrypted personal fields) are not remembered.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.db import transaction

from eduplatform.core.caches import BoundedCache
from eduplatform.core.throttles import Read, cache_backend, check_all, redis_client

logger = logging.getLogger(__name__)

GENERATION_KEY = "auth:generation"


def _seconds() -> float:
    return float(getattr(settings, "AUTH_CACHE_SECONDS", 60.0))


def enabled() -> bool:
    return _seconds() > 0


def new_generation() -> str:
    """A fresh random generation: what a read stores when the cache has none."""
    return secrets.token_hex(16)


def generation_read() -> Read:
    """The generation's read, for `throttles.check_all(reads=...)`."""
    return Read(key=GENERATION_KEY, candidate=new_generation())


def current_generation() -> str | None:
    """The shared generation (created if the cache has none), or None if it cannot be read.

    The prediction API reads it in its throttles' round trip instead
    (`throttles.check_all(reads=...)`); this is the same read on its own.
    """
    if not enabled():
        return None
    _, values = check_all([], None, None, reads=[generation_read()])
    return values.get(GENERATION_KEY)


def _bump_now() -> None:
    try:
        backend = cache_backend(cache)
        if isinstance(backend, RedisCache):
            redis_client(backend).set(
                backend.make_and_validate_key(GENERATION_KEY), new_generation().encode()
            )
        else:
            backend.set(GENERATION_KEY, new_generation(), None)
    except Exception:
        # Entries still expire after AUTH_CACHE_SECONDS; say so loudly.
        logger.error("authcache: could not revoke remembered access answers")
    remembered.clear()


def generation_bump() -> None:
    """Forget every remembered access answer, in every process: now and after commit."""
    _bump_now()
    transaction.on_commit(_bump_now)


class Remembered:
    """Grants by key, each filed under the generation it was read in."""

    def __init__(self, size: int = 20_000) -> None:
        self._memory = BoundedCache("authcache.grants", maxsize=size, ttl=_seconds)

    def get(self, key: tuple[Any, ...], generation: str | None) -> Any:
        hit = self._memory.get(key) if generation is not None else None
        if hit is None or hit[0] != generation:
            return None
        return hit[1]

    def put(self, key: tuple[Any, ...], generation: str | None, value: Any) -> None:
        if generation is not None:
            self._memory.put(key, (generation, value))

    def clear(self) -> None:
        self._memory.clear()


remembered = Remembered()


def _on_change(sender: Any, created: bool = False, **kwargs: Any) -> None:
    # A new row grants nothing that was remembered (only grants are): skip it,
    # so bulk creation (seeding, imports through save()) costs no cache writes.
    if not created:
        generation_bump()


def _on_m2m(sender: Any, action: str, **kwargs: Any) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        generation_bump()


def connect_signals() -> None:
    """Every model whose rows decide a prediction request's access (called once, at start-up)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db.models.signals import m2m_changed, post_delete, post_save
    from rest_framework.authtoken.models import Token

    from analytics.models import Course, Enrollment, Learner

    for model in (Token, get_user_model(), Group, Course, Enrollment, Learner):
        uid = f"authcache:{model._meta.label}"
        post_save.connect(_on_change, sender=model, dispatch_uid=uid + ":save")
        post_delete.connect(_on_change, sender=model, dispatch_uid=uid + ":delete")
    m2m_changed.connect(
        _on_m2m, sender=get_user_model().groups.through, dispatch_uid="authcache:groups"
    )
    m2m_changed.connect(
        _on_m2m, sender=Course.instructors.through, dispatch_uid="authcache:instructors"
    )
