"""API rate limits per token, counted in the shared cache (Redis in production).

`TokenRateThrottle` caps requests per token per minute for every API view;
`PredictionBudgetThrottle` adds an hourly query budget on the prediction
endpoints, which slows down anyone trying to reconstruct a model from its
answers. Both answer 429 with Retry-After (the time left in the window).
If the cache is unreachable they let the request through: predictions keep
being served from memory while Redis is down, and the outage is logged.

Counting: one counter per token and window, started by the token's first
request (a fixed window of the rate's period, not DRF's sliding list of
timestamps). On Redis that is one round trip (INCR, EXPIRE NX, PTTL in a
pipeline) whatever the rate; DRF's list grew with every request of the
window and was read, unpickled, pickled and written back on each one, which
made a high-traffic token's requests slower and slower. The price: a client
can spend one window's quota at its very end and the next at the start of
the following one, so at most twice the rate in a short burst.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from django.core.cache.backends.redis import RedisCache
from django.utils.connection import ConnectionProxy
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


def _backend(cache: Any) -> Any:
    """The cache object behind Django's ``cache`` proxy (DRF's default)."""
    if isinstance(cache, ConnectionProxy):
        return cache._connections[cache._alias]
    return cache


def _redis_client(cache: RedisCache) -> Any:
    # Django builds a redis.Redis object (with its ~200 response callbacks) per
    # operation; one per cache object is enough: it only wraps the pool.
    client = cache.__dict__.get("_throttle_client")
    if client is None:
        client = cache._cache.get_client(None, write=True)
        cache.__dict__["_throttle_client"] = client
    return client


def _redis_hits(cache: RedisCache, windows: list[tuple[str, int]]) -> list[tuple[int, float]]:
    """Count one request in each window (key, seconds): (requests so far, seconds left) each.

    One round trip for all of them: INCR, EXPIRE NX, PTTL per key in a pipeline.
    """
    pipe = _redis_client(cache).pipeline(transaction=False)
    for key, duration in windows:
        full_key = cache.make_and_validate_key(key)
        pipe.incr(full_key)
        # NX: only the request that opened the window sets its end (Redis >= 7).
        pipe.expire(full_key, duration, nx=True)
        pipe.pttl(full_key)
    results = pipe.execute()
    out = []
    for i, (_, duration) in enumerate(windows):
        count, _, pttl = results[3 * i : 3 * i + 3]
        out.append((int(count), pttl / 1000 if pttl and pttl > 0 else float(duration)))
    return out


def _redis_hit(cache: RedisCache, key: str, duration: int) -> tuple[int, float]:
    return _redis_hits(cache, [(key, duration)])[0]


def _generic_hit(cache: Any, key: str, duration: int) -> tuple[int, float]:
    """The same counter on any cache backend (per-process memory in development)."""
    now = time.time()
    cache.add(f"{key}:end", now + duration, duration)
    cache.add(key, 0, duration)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr: this request opens a new window
        cache.set(f"{key}:end", now + duration, duration)
        cache.set(key, 1, duration)
        count = 1
    end = cache.get(f"{key}:end") or now + duration
    return int(count), max(0.0, end - now)


class _FailOpen(SimpleRateThrottle):
    # Not DRF's format: its lists of timestamps may still sit under those keys.
    cache_format = "throttle:n:%(scope)s:%(ident)s"

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        try:
            backend = _backend(self.cache)
            if isinstance(backend, RedisCache):
                count, self._left = _redis_hit(backend, key, self.duration)
            else:
                count, self._left = _generic_hit(backend, key, self.duration)
        except Exception:
            logger.warning("throttle: cache unavailable, request not counted")
            return True
        return count <= self.num_requests

    def wait(self) -> float | None:
        # DRF sends ceil(wait) as Retry-After: at least one second.
        left: float | None = getattr(self, "_left", None)
        if left is None:
            left = float(self.duration or 1)
        return max(1.0, float(math.ceil(left)))

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = getattr(request, "auth", None)
        key = getattr(token, "key", None)
        if key:
            # Hash so raw tokens never sit in the cache's key space.
            ident = "t:" + hashlib.sha256(key.encode()).hexdigest()[:32]
        elif request.user and request.user.is_authenticated:
            ident = f"u:{request.user.pk}"
        else:
            ident = "ip:" + (self.get_ident(request) or "unknown")
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TokenRateThrottle(_FailOpen):
    scope = "token"


class IngestRateThrottle(_FailOpen):
    scope = "ingest"


class PredictionBudgetThrottle(_FailOpen):
    scope = "prediction_budget"


def check_all(throttles: list[Any], request: Request, view: Any) -> list[float | None]:
    """Count the request in every throttle; the waits of those that refuse it.

    What DRF's check_throttles does one throttle at a time, with the Redis
    counters of all of them in one round trip (fail-open as each one alone).
    """
    waits: list[float | None] = []
    batched: list[tuple[_FailOpen, str]] = []
    backend = None
    for throttle in throttles:
        if isinstance(throttle, _FailOpen) and throttle.rate is not None:
            candidate = _backend(throttle.cache)
            if isinstance(candidate, RedisCache) and (backend is None or candidate is backend):
                key = throttle.get_cache_key(request, view)
                if key is None:
                    continue
                backend = candidate
                batched.append((throttle, key))
                continue
        if not throttle.allow_request(request, view):
            waits.append(throttle.wait())
    if batched and backend is not None:
        try:
            counts = _redis_hits(backend, [(key, t.duration) for t, key in batched])
        except Exception:
            logger.warning("throttle: cache unavailable, request not counted")
            return waits
        for (throttle, _), (count, left) in zip(batched, counts, strict=True):
            throttle._left = left
            if count > throttle.num_requests:
                waits.append(throttle.wait())
    return waits
