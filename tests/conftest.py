"""Shared fixtures. Services (PostgreSQL, Redis) are real; with CI=true a missing one fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
OULAD_SLICE = FIXTURES / "oulad_slice"
SHARED_OULAD = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "oulad"


def service_missing(reason: str) -> None:
    """Skip locally, fail in CI: CI must exercise every service-backed test."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"required service missing in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def oulad_slice() -> Path:
    return OULAD_SLICE


@pytest.fixture
def shared_oulad() -> Path:
    if not (SHARED_OULAD / "courses.csv").exists():
        pytest.skip("../shared/datasets/oulad is not present")
    return SHARED_OULAD


@pytest.fixture(autouse=True)
def _clear_cache() -> None:
    """Each test starts with an empty shared cache and no model loaded in this process."""
    from django.core.cache import cache

    from eduplatform.core import caches
    from eduplatform.registry import serving

    cache.clear()
    caches.reset_all()
    serving.reset()


@pytest.fixture
def redis_url() -> str:
    import redis

    url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {url}: {exc}")
    return url


# How long streaming may take to show a committed row (milliseconds here; bounded for CI).
REPLICA_CATCH_UP_SECONDS = 15.0


def wait_for_replica(timeout: float = REPLICA_CATCH_UP_SECONDS) -> None:
    """Until the read replica has replayed everything the primary committed so far."""
    import time

    from django.db import connections

    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()")
        target = cursor.fetchone()[0]
    deadline = time.monotonic() + timeout
    while True:
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
            if cursor.fetchone()[0]:
                return
        assert time.monotonic() < deadline, f"the replica did not replay {target} in {timeout}s"
        time.sleep(0.05)


@pytest.fixture
def replica(settings) -> None:
    """A reachable streaming read replica (DATABASE_REPLICA_URL; CI starts one with
    .ci/pg_replica.sh), with replica reads on: the test settings keep them off. The test
    must be transactional and allow both databases."""
    from django.db import DatabaseError, connections

    if "replica" not in settings.DATABASES:
        service_missing("DATABASE_REPLICA_URL is not set (.ci/pg_replica.sh starts a replica)")
    try:
        with connections["replica"].cursor() as cursor:
            cursor.execute("SELECT pg_is_in_recovery()")
            standby = cursor.fetchone()[0]
    except DatabaseError as exc:
        connections["replica"].close()
        service_missing(f"the read replica is unreachable: {exc}")
    assert standby, "DATABASE_REPLICA_URL names a server that is not a standby"
    settings.DATABASE_REPLICA_READS = True
