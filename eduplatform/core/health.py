"""Probes: /healthz (liveness) and /readyz (readiness).

/healthz touches no database, session or template: it says the process answers (and is the
load test's bare-view baseline). /readyz says whether this process can do its work: the
database answers, the cache (Redis with REDIS_URL) stores and reads, the Celery broker
accepts a connection and ARTIFACT_DIR takes a file. It answers JSON naming each check
"ok" or its error, 200 when every check is ok, else 503, and is never cached.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.cache import caches
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from eduplatform.core.access import PUBLIC, declare

OK = "ok"
# Errors are cut to this length: enough to name the fault, not a traceback.
MAX_ERROR_CHARS = 200
# The broker check's connection timeout (seconds): a probe must answer promptly.
BROKER_TIMEOUT = 2.0


@declare(PUBLIC)
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


def check_database() -> None:
    connection = connections["default"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache() -> None:
    cache = caches["default"]
    key = f"readyz:{uuid.uuid4().hex}"
    cache.set(key, OK, timeout=10)
    try:
        if cache.get(key) != OK:
            raise RuntimeError("a value written to the cache was not read back")
    finally:
        cache.delete(key)


def check_broker() -> None:
    from eduplatform.celery import app

    with app.connection_for_write() as connection:
        connection.ensure_connection(max_retries=0, timeout=BROKER_TIMEOUT)


def check_artifact_store() -> None:
    directory = Path(settings.ARTIFACT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".readyz-") as probe:
        probe.write(b"ok")
        probe.flush()


CHECKS: dict[str, Callable[[], None]] = {
    "database": check_database,
    "cache": check_cache,
    "broker": check_broker,
    "artifact_store": check_artifact_store,
}


def readiness() -> dict[str, str]:
    """Each check's name -> "ok" or "<ExceptionType>: <message>"."""
    results: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # a probe reports every failure, whatever its type
            results[name] = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        else:
            results[name] = OK
    return results


@declare(PUBLIC)
@never_cache
def readyz(request: HttpRequest) -> HttpResponse:
    results = readiness()
    ready = all(value == OK for value in results.values())
    return JsonResponse(
        {"status": OK if ready else "unavailable", "checks": results},
        status=200 if ready else 503,
    )
