"""The bulk engine: staged upserts on both databases, COPY staging on PostgreSQL."""

import datetime as dt

import pyarrow as pa
import pytest
from django.db import connection, transaction

from analytics.importers import pg_bulk
from analytics.models import DailyActivity
from tests.conftest import service_missing
from tests.factories import CourseFactory, LearnerFactory

pytestmark = pytest.mark.django_db(transaction=True)

COLUMNS = ["course_id", "learner_id", "date", "activity_type", "events", "clicks", "active_seconds"]
UPSERT = (
    f"INSERT INTO analytics_dailyactivity ({', '.join(COLUMNS)}) "
    f"SELECT {', '.join(COLUMNS)} FROM {{source}} "
    "ON CONFLICT (course_id, learner_id, date, activity_type) DO UPDATE SET "
    "clicks = analytics_dailyactivity.clicks + excluded.clicks"
)


def test_bulk_write_then_runs_the_statement_over_the_rows() -> None:
    """`then` sees exactly this call's rows, also a second time in one transaction."""
    course, learner = CourseFactory(), LearnerFactory()
    rows = pa.table(
        {
            "course_id": [course.pk] * 2,
            "learner_id": [learner.pk] * 2,
            "date": ["2026-01-05", "2026-01-06"],
            "activity_type": ["quiz", "quiz"],
            "events": [1, 1],
            "clicks": [3, 4],
            "active_seconds": [0.0, 0.0],
        }
    )
    with transaction.atomic():
        pg_bulk.bulk_write("analytics_dailyactivity", rows, then=UPSERT)
        pg_bulk.bulk_write("analytics_dailyactivity", rows, then=UPSERT)
    clicks = dict(DailyActivity.objects.values_list("date", "clicks"))
    assert clicks == {dt.date(2026, 1, 5): 6, dt.date(2026, 1, 6): 8}


def test_copy_then_returns_the_statements_rows_and_stages_per_connection() -> None:
    if connection.vendor != "postgresql":
        service_missing("COPY staging is PostgreSQL only (set DATABASE_URL)")
    course, learner = CourseFactory(), LearnerFactory()
    row = (course.pk, learner.pk, dt.date(2026, 1, 5), "quiz", 1, 2, 0.0)
    returning = UPSERT + " RETURNING clicks"
    with transaction.atomic():
        first = pg_bulk.copy_then("analytics_dailyactivity", COLUMNS, [row], returning)
        second = pg_bulk.copy_then("analytics_dailyactivity", COLUMNS, [row], returning)
    assert (first, second) == ([(2,)], [(4,)])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_class WHERE relpersistence = 't' "
            "AND relname LIKE 'bulk_analytics_dailyactivity_%%'"
        )
        assert cursor.fetchone()[0] == 1  # one staging table, kept, emptied at commit
