"""Monthly partitions of the event table (#28 item 2): migration result, routing of API and
COPY inserts, dedup across partitions, ensure-ahead, retention, pruning.

PostgreSQL only by design (SQLite keeps one table): those tests skip on SQLite; the
last ones check that the same calls are no-ops there.
"""

import datetime as dt
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics import partitions
from analytics.models import DailyActivity, EventClientId, LearningEvent
from analytics.partitions import (
    event_client_ids_forget,
    event_partitions_cover,
    event_partitions_ensure,
    event_partitions_expire,
    month_start,
    months_add,
    months_between,
    partition_months,
)
from analytics.selectors.activity import item_usage
from analytics.services import rollups_rebuild
from analytics.tasks import ensure_event_partitions, expire_event_partitions
from tests.analytics.ingest.conftest import ingest_client
from tests.factories import ContentItemFactory, CourseFactory

pytestmark = pytest.mark.django_db
pg_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="event partitions are PostgreSQL only by design (SQLite keeps one table)",
)
URL = "/api/v1/events"
TODAY = dt.datetime.now(dt.UTC).date()


@pytest.fixture
def api():
    course = CourseFactory(code="PART_2026J", start_date=dt.date(2020, 1, 1))
    ContentItemFactory(course=course, external_id="video-1", activity_type="video")
    return course, ingest_client("ingest")


def post(client, *events):
    body = [
        {
            "client_event_id": cid,
            "learner_id": "u1",
            "course": "PART_2026J",
            "item": "video-1",
            "verb": "played",
            "occurred_at": at.isoformat(),
            "count": 2,
        }
        for cid, at in events
    ]
    response = client.post(URL, body, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def at(month: dt.date, day: int = 5) -> dt.datetime:
    return dt.datetime(month.year, month.month, day, 10, 0, tzinfo=dt.UTC)


def placed() -> dict[str, str]:
    """Client id -> the partition holding its event."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT client_event_id, tableoid::regclass::text FROM analytics_learningevent"
        )
        return dict(cursor.fetchall())


def test_month_arithmetic():
    assert months_add(dt.date(2026, 11, 1), 3) == dt.date(2027, 2, 1)
    assert months_add(dt.date(2026, 1, 1), -1) == dt.date(2025, 12, 1)
    assert months_between(dt.date(2026, 11, 20), dt.date(2027, 1, 2)) == [
        dt.date(2026, 11, 1), dt.date(2026, 12, 1), dt.date(2027, 1, 1),
    ]  # fmt: skip
    assert partitions.partition_name(dt.date(2026, 3, 1)) == "analytics_learningevent_p202603"


@pg_only
def test_migration_leaves_a_monthly_partitioned_table_with_its_indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p.partstrat, a.attname FROM pg_partitioned_table p JOIN pg_attribute a "
            "ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0] "
            "WHERE p.partrelid = 'analytics_learningevent'::regclass"
        )
        assert cursor.fetchall() == [("r", "occurred_at")]
        cursor.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'analytics_learningevent'::regclass "
            "AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'"
        )
        assert cursor.fetchall() == [("analytics_learningevent_default",)]
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'analytics_learningevent'"
        )
        indexes = dict(cursor.fetchall())
    # This month and three ahead exist from the migration on (the test database's).
    current = month_start(TODAY)
    assert {months_add(current, k) for k in range(4)} <= set(partition_months())
    assert set(indexes) == {
        "analytics_learningevent_pkey",
        "event_learner_time_idx",
        "event_course_time_brin",
        "event_client_id_idx",
    }
    assert "(id, occurred_at)" in indexes["analytics_learningevent_pkey"]
    assert "USING brin (course_id, occurred_at)" in indexes["event_course_time_brin"]


@pg_only
def test_api_events_land_in_their_month_and_defaults_rows_move_in(api):
    _, client = api
    event_partitions_cover(first=dt.date(2026, 10, 1), last=dt.date(2026, 11, 30))
    assert post(client, ("oct", at(dt.date(2026, 10, 1))), ("nov", at(dt.date(2026, 11, 1)))) == {
        "received": 2, "created": 2, "duplicates": 0,
    }  # fmt: skip
    # A back-dated event of a month without a partition waits in DEFAULT ...
    post(client, ("old", at(dt.date(2020, 1, 1))))
    assert placed() == {
        "oct": "analytics_learningevent_p202610",
        "nov": "analytics_learningevent_p202611",
        "old": "analytics_learningevent_default",
    }
    rollup = sorted(DailyActivity.objects.values_list("date", "clicks"))
    # ... until the beat task gives its month a partition and moves it in.
    created = event_partitions_ensure(months_ahead=0)
    assert dt.date(2020, 1, 1) in created
    assert placed()["old"] == "analytics_learningevent_p202001"
    assert LearningEvent.objects.count() == 3
    assert sorted(DailyActivity.objects.values_list("date", "clicks")) == rollup
    # The moved partition got the parent's indexes.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'analytics_learningevent_p202001'"
        )
        assert cursor.fetchone()[0] == 4


def test_a_retry_with_another_timestamp_is_not_stored_twice(api):
    """The API promises: same source + client_event_id, stored once (also when the retry
    carries another time, which on PostgreSQL is another partition)."""
    _, client = api
    event_partitions_cover(first=dt.date(2026, 9, 1), last=dt.date(2026, 10, 31))
    assert post(client, ("evt-1", at(dt.date(2026, 9, 1))))["created"] == 1
    again = post(client, ("evt-1", at(dt.date(2026, 10, 1))), ("evt-2", at(dt.date(2026, 10, 1))))
    assert again == {"received": 2, "created": 1, "duplicates": 1}
    assert LearningEvent.objects.filter(client_event_id="evt-1").count() == 1
    assert LearningEvent.objects.get(client_event_id="evt-1").occurred_at.month == 9
    assert sum(DailyActivity.objects.values_list("events", flat=True)) == 2
    assert set(EventClientId.objects.values_list("client_event_id", flat=True)) == {
        "evt-1",
        "evt-2",
    }


@pg_only
def test_import_copy_lands_in_month_partitions_with_rebuilt_indexes(oulad_slice):
    call_command("import_oulad", str(oulad_slice), "--no-progress")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text, "
            "to_char(date_trunc('month', occurred_at AT TIME ZONE 'UTC'), 'YYYYMM'), count(*) "
            "FROM analytics_learningevent GROUP BY 1, 2"
        )
        rows = cursor.fetchall()
        # The indexes the load dropped and rebuilt cover every partition again.
        cursor.execute(
            "SELECT count(*) FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indexrelid "
            "WHERE i.inhparent = 'event_learner_time_idx'::regclass AND x.indisvalid"
        )
        covered = cursor.fetchone()[0]
    assert rows and sum(n for *_, n in rows) == LearningEvent.objects.count()
    assert all(table == f"analytics_learningevent_p{month}" for table, month, _ in rows)
    assert covered == len(partition_months()) + 1  # and DEFAULT


@pg_only
def test_ensure_ahead_is_idempotent():
    today = dt.date(2031, 1, 15)
    assert event_partitions_ensure(months_ahead=2, today=today) == [
        dt.date(2031, 1, 1), dt.date(2031, 2, 1), dt.date(2031, 3, 1),
    ]  # fmt: skip
    assert event_partitions_ensure(months_ahead=2, today=today) == []
    # The beat task (this month and 3 ahead exist since the migration): nothing to do.
    assert ensure_event_partitions(3) == 0
    assert ensure_event_partitions.time_limit and ensure_event_partitions.max_retries


@pg_only
def test_retention_drops_only_old_months_and_keeps_the_rollup(api, settings):
    course, client = api
    current = month_start(TODAY)
    months = [months_add(current, -k) for k in (4, 3, 2, 1)]
    event_partitions_cover(first=months[0], last=current)
    post(client, *[(f"m{k}", at(month)) for k, month in enumerate(months)])
    before = sorted(DailyActivity.objects.values_list("date", "clicks"))
    assert len(before) == 4
    settings.EVENT_RETENTION_MONTHS = 2  # keep this month and the two before
    expiry = event_partitions_expire()
    assert expiry.cutoff == months[2]
    assert months[:2] == [m for m in expiry.months if m >= months[0]]
    assert all(m < months[2] for m in expiry.months)
    assert set(placed()) == {"m2", "m3"}
    assert min(partition_months()) == months[2]
    assert event_client_ids_forget() == 2
    assert set(EventClientId.objects.values_list("client_event_id", flat=True)) == {"m2", "m3"}
    assert sorted(DailyActivity.objects.values_list("date", "clicks")) == before
    # The nightly rollup repair rebuilds the kept days only.
    rollups_rebuild(course_id=course.pk)
    assert sorted(DailyActivity.objects.values_list("date", "clicks")) == before
    assert expire_event_partitions() == 0  # idempotent: nothing older is left


@pg_only
def test_a_course_time_range_read_touches_only_its_months_partition(api):
    course, _ = api
    event_partitions_cover(first=dt.date(2026, 1, 1), last=dt.date(2026, 12, 31))
    with CaptureQueriesContext(connection) as queries:
        item_usage(course, first=dt.date(2026, 3, 3), last=dt.date(2026, 3, 20))
    (sql,) = [q["sql"] for q in queries.captured_queries if "analytics_learningevent" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    scanned = set(re.findall(r"analytics_learningevent_(?:p\d{6}|default)\b", plan))
    assert scanned == {"analytics_learningevent_p202603"}, plan


@pytest.mark.skipif(connection.vendor == "postgresql", reason="the SQLite side of the above")
def test_partition_calls_are_no_ops_on_sqlite(settings):
    settings.EVENT_RETENTION_MONTHS = 1
    assert event_partitions_cover(first=dt.date(2026, 1, 1), last=dt.date(2026, 3, 1)) == []
    assert event_partitions_ensure(months_ahead=3) == []
    assert partition_months() == []
    assert partitions.retention_cutoff() is None
    assert event_partitions_expire().months == []
    assert event_client_ids_forget() == 0
    assert ensure_event_partitions(3) == 0
    assert expire_event_partitions() == 0


def test_the_partition_tasks_are_scheduled_and_routed():
    from eduplatform.celery import app
    from eduplatform.schedules import SCHEDULES

    scheduled = {s.task: s for s in SCHEDULES}
    refresh = scheduled["analytics.refresh_rollups"]
    for name in ("analytics.ensure_event_partitions", "analytics.expire_event_partitions"):
        assert app.conf.task_routes[name] == {"queue": "default"}
        # Partitions and retention settle before the rollup refresh reads the events.
        assert (scheduled[name].hour, scheduled[name].minute) < (refresh.hour, refresh.minute)
