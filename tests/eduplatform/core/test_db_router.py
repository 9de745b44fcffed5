"""The read replica (eduplatform/core/db_router.py) against a real PostgreSQL streaming replica.

CI (.ci/run) starts one on 127.0.0.1:5433 (.ci/pg_replica.sh) and sets DATABASE_REPLICA_URL;
the alias mirrors the primary's test database, which reaches the replica by replication.
Without a replica the tests that need one skip (and fail in CI). They are transactional: rows
of a test's open transaction never reach the replica.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections, transaction
from django.http import HttpResponse
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext

from analytics.models import Course
from eduplatform.core.db_router import (
    PIN_COOKIE,
    PIN_SECONDS,
    PRIMARY,
    REPLICA,
    ReadYourWritesMiddleware,
    read_alias,
    replica_reads,
)
from eduplatform.settings.env import parse_database_url, parse_replica_url
from tests.conftest import REPLICA_CATCH_UP_SECONDS, wait_for_replica
from tests.factories import CourseFactory

ROOT = Path(__file__).resolve().parents[3]
# Without a replica alias the `replica` fixture skips; a test may not name a missing alias.
BOTH = [PRIMARY, REPLICA] if REPLICA in django_settings.DATABASES else [PRIMARY]
PG = parse_database_url("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/app")


def queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries]


# --- settings: no database needed ----------------------------------------------------------


def test_replica_url_names_the_primary_database_and_mirrors_it_in_tests() -> None:
    replica = parse_replica_url("DATABASE_REPLICA_URL", "postgres://ro@127.0.0.1:5433", PG)
    assert (replica["NAME"], replica["USER"], replica["PORT"]) == ("app", "ro", "5433")
    assert replica["TEST"] == {"MIRROR": "default"}
    same = parse_replica_url("R", "postgres://postgres@127.0.0.1:5433/app?connect_timeout=2", PG)
    assert same["NAME"] == "app" and same["OPTIONS"] == {"connect_timeout": "2"}
    with pytest.raises(ImproperlyConfigured, match="same database"):
        parse_replica_url("R", "postgres://postgres@127.0.0.1:5433/other", PG)
    sqlite = parse_database_url("DATABASE_URL", "sqlite:///db.sqlite3")
    with pytest.raises(ImproperlyConfigured, match="PostgreSQL"):
        parse_replica_url("R", "postgres://postgres@127.0.0.1:5433", sqlite)


@pytest.mark.parametrize("url", ["", "postgres://postgres@127.0.0.1:5433"])
def test_unset_means_no_replica_alias_and_no_router(url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_REPLICA_URL"}
    env.update(PYTHONPATH=str(ROOT), DATABASE_URL="postgres://postgres@127.0.0.1:5432/app")
    if url:
        env["DATABASE_REPLICA_URL"] = url
    code = (
        "import eduplatform.settings.base as s; "
        "print(sorted(s.DATABASES), getattr(s, 'DATABASE_ROUTERS', []))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    if url:
        assert out == "['default', 'replica'] ['eduplatform.core.db_router.ReplicaRouter']"
    else:
        assert out == "['default'] []"


def test_outside_a_scope_or_without_a_replica_reads_stay_on_the_primary(settings) -> None:
    assert read_alias(Course) == PRIMARY
    settings.DATABASE_REPLICA_READS = False
    with replica_reads():
        assert read_alias(Course) == PRIMARY


# --- a real streaming replica ------------------------------------------------------------

pg_replica = pytest.mark.django_db(transaction=True, databases=BOTH)


@pg_replica
def test_the_replica_streams_rows_committed_on_the_primary(replica) -> None:
    with connections[PRIMARY].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        assert cursor.fetchone()[0] is False
    course = CourseFactory(code="STREAMED_2026J")
    deadline = time.monotonic() + REPLICA_CATCH_UP_SECONDS
    while not Course.objects.using(REPLICA).filter(pk=course.pk).exists():
        assert time.monotonic() < deadline, "the row never reached the replica"
        time.sleep(0.05)
    with pytest.raises(DatabaseError, match="read-only"), transaction.atomic(using=REPLICA):
        Course.objects.using(REPLICA).filter(pk=course.pk).update(title="x")


@pg_replica
def test_scope_reads_go_to_the_replica_and_writes_to_the_primary(replica) -> None:
    CourseFactory(code="BEFORE_2026J")
    wait_for_replica()
    with (
        CaptureQueriesContext(connections[PRIMARY]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as standby,
        replica_reads(),
    ):
        codes = list(Course.objects.values_list("code", flat=True))
        assert len(queries(standby)) == 1 and queries(primary) == []
        Course.objects.filter(code="BEFORE_2026J").update(title="Renamed")
    assert codes == ["BEFORE_2026J"]
    assert len(queries(standby)) == 1
    assert [q.split()[0] for q in queries(primary)] == ["UPDATE"]


@pg_replica
def test_a_read_after_a_write_in_the_scope_stays_on_the_primary(replica) -> None:
    wait_for_replica()
    with (
        CaptureQueriesContext(connections[REPLICA]) as standby,
        replica_reads(),
    ):
        assert not Course.objects.exists()  # before the write: the replica
        course = CourseFactory(code="JUST_WRITTEN_2026J")
        # The replica may not have the row yet; the primary has it.
        assert read_alias(Course) == PRIMARY
        assert Course.objects.get(code="JUST_WRITTEN_2026J") == course
        with replica_reads():  # a nested scope is the same scope
            assert read_alias(Course) == PRIMARY
    assert len(queries(standby)) == 1


@pg_replica
def test_reads_inside_a_transaction_and_of_users_stay_on_the_primary(replica) -> None:
    user = get_user_model().objects.create(username="replica_reader")
    wait_for_replica()
    with (
        CaptureQueriesContext(connections[REPLICA]) as standby,
        replica_reads(),
    ):
        assert read_alias(Course) == REPLICA
        with transaction.atomic():
            assert read_alias(Course) == PRIMARY
            list(Course.objects.all())
        assert get_user_model().objects.get(pk=user.pk) == user
        assert read_alias(get_user_model()) == PRIMARY
    assert queries(standby) == []


@pg_replica
def test_an_unreachable_replica_sends_the_scope_to_the_primary(replica, caplog) -> None:
    standby = connections[REPLICA]
    standby.close()
    port = standby.settings_dict["PORT"]
    standby.settings_dict["PORT"] = "9"  # nothing listens on the discard port
    try:
        with replica_reads():
            assert read_alias(Course) == PRIMARY
            assert list(Course.objects.all()) == []
    finally:
        standby.settings_dict["PORT"] = port
        standby.close()
    assert "read replica unreachable" in caplog.text


def _through_middleware(request) -> tuple[str, object]:
    """(the alias a page's read takes, the response) for a request through the middleware."""
    seen: list[str] = []

    def page(req):
        with replica_reads():
            seen.append(read_alias(Course))
        return HttpResponse("ok")

    response = ReadYourWritesMiddleware(page)(request)
    return seen[0], response


def test_without_a_replica_the_middleware_sets_no_cookie(settings) -> None:
    settings.DATABASE_REPLICA_READS = False
    alias, response = _through_middleware(RequestFactory().post("/anything"))
    assert alias == PRIMARY and PIN_COOKIE not in response.cookies


@pg_replica
def test_a_write_pins_the_browser_to_the_primary_for_its_next_pages(replica) -> None:
    """The redirect after a form post renders from the primary: the replica may not have
    replayed the post's row yet. Other browsers keep reading the replica."""
    factory = RequestFactory()
    alias, response = _through_middleware(factory.post("/learners/1/actions"))
    pin = response.cookies[PIN_COOKIE]
    assert pin["max-age"] == PIN_SECONDS and pin["httponly"] and pin["samesite"] == "Lax"
    follow = factory.get("/learners/1")
    follow.COOKIES[PIN_COOKIE] = pin.value
    assert _through_middleware(follow)[0] == PRIMARY
    alias, response = _through_middleware(factory.get("/learners/1"))
    assert alias == REPLICA and PIN_COOKIE not in response.cookies
