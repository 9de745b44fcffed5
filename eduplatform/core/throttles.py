"""API rate limits per token, counted in the shared cache (Redis in production).

`TokenRateThrottle` caps requests per token per minute for every API view;
`PredictionBudgetThrottle` adds an hourly query budget on the prediction
endpoints, which slows down anyone trying to reconstruct a model from its
answers. Both answer 429 with Retry-After (the time left in the window).
If the cache is unreachable they count in this process instead, at the same
rates (`local_hit`: a bounded in-process counter per key and window), so a
spent budget stays spent while Redis is down; predictions keep being served
from memory and the outage is logged. With several web processes each one
counts alone until Redis is back (at most the number of processes times the
rate), which is still a limit where failing open was none.

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
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.core.cache.backends.redis import RedisCache
from django.utils.connection import ConnectionProxy
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from eduplatform.core.caches import BoundedCache

logger = logging.getLogger(__name__)

# While the shared cache is unreachable: key -> (window end on the monotonic clock,
# requests so far). Bounded (least recently counted keys go first); entries outlive
# any throttle window (a day), the window end decides.
_LOCAL_COUNTS = BoundedCache("throttles.local_counts", maxsize=50_000, ttl=86_400.0)
_LOCAL_LOCK = threading.Lock()


# One warning a minute per process while Redis is down, not one per request.
_WARN_EVERY = 60.0
_last_warning = [-_WARN_EVERY]


def _warn_counted_locally() -> None:
    now = time.monotonic()
    if now - _last_warning[0] >= _WARN_EVERY:
        _last_warning[0] = now
        logger.warning("throttle: cache unavailable, requests counted in this process")


def local_hit(key: str, duration: int) -> tuple[int, float]:
    """Count one request in this process's window of `key`: (requests so far, seconds left)."""
    now = time.monotonic()
    with _LOCAL_LOCK:
        entry = _LOCAL_COUNTS.get(key)
        end, count = entry if entry is not None and entry[0] > now else (now + duration, 0)
        _LOCAL_COUNTS.put(key, (end, count + 1))
    return count + 1, end - now


def cache_backend(cache: Any) -> Any:
    """The cache object behind Django's ``cache`` proxy (DRF's default)."""
    if isinstance(cache, ConnectionProxy):
        return cache._connections[cache._alias]
    return cache


def redis_client(cache: RedisCache) -> Any:
    # Django builds a redis.Redis object (with its ~200 response callbacks) per
    # operation; one per cache object is enough: it only wraps the pool.
    client = cache.__dict__.get("_throttle_client")
    if client is None:
        client = cache._cache.get_client(None, write=True)
        cache.__dict__["_throttle_client"] = client
    return client


@dataclass(frozen=True)
class Read:
    """A key read in the throttles' round trip (`check_all(reads=...)`).

    Without `field`: a string, set to `candidate` first if absent; its value.
    With `field`: a hash whose "run" field is set to `candidate` if absent and
    whose expiry is renewed to `seconds`; the value is "<run>:<field's value>"
    ("0" for an absent field). analytics/activity_stamps.py keeps such hashes.
    """

    key: str
    candidate: str
    field: str | None = None
    seconds: int = 0


# One script call per request instead of a pipeline of three commands per
# window: count each window (its end set by the request that opened it), then
# the reads (three arguments each: candidate, hash field or "", seconds).
_HITS_SCRIPT = """
local out = {}
local windows = tonumber(ARGV[1])
for i = 1, windows do
  local n = redis.call('INCR', KEYS[i])
  local left = redis.call('PTTL', KEYS[i])
  if left < 0 then
    redis.call('EXPIRE', KEYS[i], ARGV[1 + i])
    left = tonumber(ARGV[1 + i]) * 1000
  end
  out[#out + 1] = n
  out[#out + 1] = left
end
for i = windows + 1, #KEYS do
  local at = 2 + windows + 3 * (i - windows - 1)
  if ARGV[at + 1] == '' then
    redis.call('SET', KEYS[i], ARGV[at], 'NX')
    out[#out + 1] = redis.call('GET', KEYS[i])
  else
    redis.call('HSETNX', KEYS[i], 'run', ARGV[at])
    redis.call('EXPIRE', KEYS[i], ARGV[at + 2])
    local got = redis.call('HMGET', KEYS[i], 'run', ARGV[at + 1])
    out[#out + 1] = got[1] .. ':' .. (got[2] or '0')
  end
end
return out
"""


def _redis_hits(
    cache: RedisCache, windows: list[tuple[str, int]], reads: list[Read] | None = None
) -> tuple[list[tuple[int, float]], dict[str, str]]:
    """Count one request in each window (key, seconds) and make the `reads`.

    Returns (requests so far, seconds left) per window, and each read's value
    by key. One round trip.
    """
    client = redis_client(cache)
    script = cache.__dict__.get("_throttle_script")
    if script is None:
        script = cache.__dict__["_throttle_script"] = client.register_script(_HITS_SCRIPT)
    reads = reads or []
    keys = [cache.make_and_validate_key(key) for key, _ in windows]
    keys += [cache.make_and_validate_key(r.key) for r in reads]
    args: list[Any] = [len(windows), *(duration for _, duration in windows)]
    for r in reads:
        args += [r.candidate, r.field or "", r.seconds]
    results = script(keys=keys, args=args, client=client)
    out = []
    for i, (_, duration) in enumerate(windows):
        count, pttl = results[2 * i : 2 * i + 2]
        out.append((int(count), pttl / 1000 if pttl and pttl > 0 else float(duration)))
    values = results[2 * len(windows) :]
    return out, {
        r.key: v.decode() if isinstance(v, bytes) else v for r, v in zip(reads, values, strict=True)
    }


def _redis_hit(cache: RedisCache, key: str, duration: int) -> tuple[int, float]:
    return _redis_hits(cache, [(key, duration)])[0][0]


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


class _CountedThrottle(SimpleRateThrottle):
    # Not DRF's format: its lists of timestamps may still sit under those keys.
    cache_format = "throttle:n:%(scope)s:%(ident)s"

    def allow_request(self, request: Request, view: Any) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        try:
            backend = cache_backend(self.cache)
            if isinstance(backend, RedisCache):
                count, self._left = _redis_hit(backend, key, self.duration)
            else:
                count, self._left = _generic_hit(backend, key, self.duration)
        except Exception:
            _warn_counted_locally()
            count, self._left = local_hit(key, self.duration)
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
            ident = token_ident(key)
        elif request.user and request.user.is_authenticated:
            ident = f"u:{request.user.pk}"
        else:
            ident = "ip:" + (self.get_ident(request) or "unknown")
        return self.key_for(ident)

    def key_for(self, ident: str) -> str:
        return self.cache_format % {"scope": self.scope, "ident": ident}


def token_ident(key: str) -> str:
    # Hash so raw tokens never sit in the cache's key space.
    return "t:" + hashlib.sha256(key.encode()).hexdigest()[:32]


class TokenRateThrottle(_CountedThrottle):
    scope = "token"


class IngestRateThrottle(_CountedThrottle):
    scope = "ingest"


class PredictionBudgetThrottle(_CountedThrottle):
    scope = "prediction_budget"


def check_all(
    throttles: list[Any],
    request: Request,
    view: Any,
    *,
    ident: str | None = None,
    reads: list[Read] | None = None,
) -> tuple[list[float | None], dict[str, str]]:
    """Count the request in every throttle: the waits of those that refuse it.

    What DRF's check_throttles does one throttle at a time, with the Redis
    counters of all of them in one round trip (counted in this process, as
    each one alone, when Redis is unreachable).
    `ident` counts the request under that identity (e.g. `token_ident` of
    the token in its header, before authentication has run); `reads` are
    made in the same round trip (see `Read`): their values come back by key,
    or none of them if the cache is unreachable.
    """
    waits: list[float | None] = []
    batched: list[tuple[_CountedThrottle, str]] = []
    backend = None
    for throttle in throttles:
        if isinstance(throttle, _CountedThrottle) and throttle.rate is not None:
            candidate = cache_backend(throttle.cache)
            if isinstance(candidate, RedisCache) and (backend is None or candidate is backend):
                key = throttle.key_for(ident) if ident else throttle.get_cache_key(request, view)
                if key is None:
                    continue
                backend = candidate
                batched.append((throttle, key))
                continue
        if not throttle.allow_request(request, view):
            waits.append(throttle.wait())
    values: dict[str, str] = {}
    if backend is None and reads:
        candidate = cache_backend(_default_cache())
        if not isinstance(candidate, RedisCache):
            return waits, _generic_reads(candidate, reads)
        backend = candidate
    if backend is not None:
        try:
            counts, values = _redis_hits(backend, [(key, t.duration) for t, key in batched], reads)
        except Exception:
            _warn_counted_locally()
            counts, values = [local_hit(key, t.duration) for t, key in batched], {}
        for (throttle, _), (count, left) in zip(batched, counts, strict=True):
            throttle._left = left
            if count > throttle.num_requests:
                waits.append(throttle.wait())
    return waits, values


def counted_in_redis() -> bool:
    """Whether the throttles count in Redis (one script call), not per backend call."""
    return isinstance(cache_backend(_default_cache()), RedisCache)


def _default_cache() -> Any:
    from django.core.cache import cache

    return cache


def _generic_reads(backend: Any, reads: list[Read]) -> dict[str, str]:
    """`reads` on any cache backend (hashes stored as dicts), or {} if unreachable."""
    values: dict[str, str] = {}
    try:
        for r in reads:
            if r.field is None:
                backend.add(r.key, r.candidate, None)
                value = backend.get(r.key)
                if value is None:
                    return {}
                values[r.key] = value
            else:
                stamps = backend.get(r.key)
                if stamps is None:
                    backend.add(r.key, {"run": r.candidate}, r.seconds or None)
                    stamps = backend.get(r.key)
                if stamps is None:
                    return {}
                values[r.key] = f"{stamps['run']}:{stamps.get(r.field, 0)}"
    except Exception:
        logger.warning("throttle: cache unavailable, keys not read")
        return {}
    return values
