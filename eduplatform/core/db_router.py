"""Which reads may go to the read replica (``DATABASE_REPLICA_URL``; docs/architecture.md).

The choice is explicit, not "every read goes to the replica": a view opts in by running its
page builder inside ``replica_reads()`` (after its access helpers ran on the primary), and
raw-SQL selectors on those pages take their cursor from ``read_connection()``. Inside that
scope the router sends a read to the replica unless

* the model belongs to an app whose rows decide who may do what or are the request's own
  state (users, groups, sessions, tokens, lockouts): a revoked role must not live on for the
  replication lag;
* the primary is inside a transaction (``atomic``): the transaction's own rows and locks are
  there, and a read inside it must see them;
* anything was written in this scope (read-your-writes): the replica may not have the row
  yet, so every later read of the scope stays on the primary.

A write also pins the browser that made it to the primary for ``PIN_SECONDS``
(``ReadYourWritesMiddleware``, a cookie): the page a form post redirects to must show the
row the post just wrote, which the replica may not have yet.

Everything outside a scope (services, tasks, the API, sessions, the admin, a streamed CSV
export that runs after the view returned) reads the primary, as without a replica. The scope
lives in a context variable, so each thread and each asyncio task has its own; a thread that
a page starts begins outside it, on the primary.

Why not route by URL or by app: the same selector serves a dashboard (lag of a second is
fine) and a service's check before a write (it is not), so only the caller knows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

PRIMARY = DEFAULT_DB_ALIAS
REPLICA = "replica"

# Apps that always read the primary (access decisions and per-request state).
PRIMARY_ONLY_APPS = frozenset(
    {
        "admin",
        "auth",
        "authtoken",
        "axes",
        "captcha",
        "contenttypes",
        "django_celery_beat",
        "sessions",
    }
)


@dataclass
class _Scope:
    wrote: bool = False


_scope: ContextVar[_Scope | None] = ContextVar("eduplatform_replica_reads", default=None)
# Set per request by ReadYourWritesMiddleware: this browser wrote within PIN_SECONDS.
_pinned: ContextVar[bool] = ContextVar("eduplatform_replica_pinned", default=False)

PIN_COOKIE = "eduplatform_primary_pin"
# Replication lag measured here: p95 8 ms, 126 ms after one 200,000-row commit
# (docs/bench/replica_lag.json); a few seconds cover a slow replica too and cost little,
# as only the writer's own next pages read the primary.
PIN_SECONDS = 5
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES and bool(settings.DATABASE_REPLICA_READS)


def _replica_reachable() -> bool:
    """Connect (or reuse the persistent connection); a replica that is down costs no page."""
    replica = connections[REPLICA]
    try:
        # A persistent connection the replica dropped (restart) is replaced here, not at
        # the page's first query (CONN_HEALTH_CHECKS).
        replica.close_if_health_check_failed()
        replica.ensure_connection()
    except DatabaseError as exc:
        logger.warning("read replica unreachable, reading the primary: %s", type(exc).__name__)
        return False
    return True


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads in this block may go to the replica (see the module docstring for the rules).

    Also a decorator: ``@replica_reads()``. Nested blocks share the outer scope, so a write
    anywhere inside sends every later read of the whole scope to the primary.
    """
    if _scope.get() is not None or not replica_configured():
        yield
        return
    scope = _Scope(wrote=_pinned.get() or not _replica_reachable())
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def read_alias(model: type[Any] | None = None) -> str:
    """The alias a read of ``model`` (None: raw SQL) goes to right now."""
    scope = _scope.get()
    if scope is None or scope.wrote or not replica_configured():
        return PRIMARY
    if model is not None and model._meta.app_label in PRIMARY_ONLY_APPS:
        return PRIMARY
    if connections[PRIMARY].in_atomic_block:
        return PRIMARY
    return REPLICA


def read_connection() -> BaseDatabaseWrapper:
    """The connection for a selector's raw SQL: the replica inside a page's scope."""
    return connections[read_alias()]


class ReplicaRouter:
    """DATABASE_ROUTERS entry, installed only when DATABASE_REPLICA_URL is set."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        # Explicit PRIMARY rather than None: an object loaded from the replica and used
        # after the scope (its related managers pass it as a hint) reads the primary again.
        return read_alias(model)

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        scope = _scope.get()
        if scope is not None:
            scope.wrote = True
        return PRIMARY

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # One database in two places: rows from either may be related.
        if {obj1._state.db, obj2._state.db} <= {PRIMARY, REPLICA}:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        # A standby is read-only; it receives the schema through replication.
        return False if db == REPLICA else None


class ReadYourWritesMiddleware:
    """Pins a browser that sent a write (an unsafe method) to the primary for PIN_SECONDS.

    Without it the redirect after recording an action could render from a replica that has
    not replayed the action yet. A cookie, not the session: it must work before login and
    cost no session write. It carries no data; its presence is the whole message."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not replica_configured():
            response: HttpResponse = self.get_response(request)
            return response
        token = _pinned.set(PIN_COOKIE in request.COOKIES)
        try:
            response = self.get_response(request)
        finally:
            _pinned.reset(token)
        if request.method not in SAFE_METHODS:
            response.set_cookie(
                PIN_COOKIE,
                "1",
                max_age=PIN_SECONDS,
                httponly=True,
                samesite="Lax",
                secure=request.is_secure(),
            )
        return response
