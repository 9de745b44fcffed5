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
