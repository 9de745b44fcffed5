"""Writes of learner-behaviour data. Every function is keyword-only and atomic."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection, transaction

from analytics.models import ContentItem, Course, Enrollment, Learner, LearningEvent
from analytics.validation import NormalizedEvent, ValidationFailure
from eduplatform.privacy import pseudonymise

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    received: int
    created: int
    duplicates: int
    event_ids: list[str]


def events_ingest(*, events: list[NormalizedEvent], source: str) -> IngestResult:
    """Store a batch all-or-nothing; events whose client id was already stored are skipped.

    Duplicates (a retried request, or a concurrent one with the same ids) are
    dropped by the database itself: INSERT ... ON CONFLICT DO NOTHING on the
    partial unique index, RETURNING the rows really inserted, and only those
    reach the rollup.
    """
    return _events_ingest_once(events=events, source=source)


@transaction.atomic
def _events_ingest_once(*, events: list[NormalizedEvent], source: str) -> IngestResult:
    """1. Resolve courses and items (errors per event, nothing written).
    2. Create missing learners and enrolments.
    3. Insert the events, skipping stored client ids, in one statement.
    4. Add the inserted ones to the daily rollup in one upsert.
    """
    courses_by_code, courses_by_iri = _courses_for(events)
    errors: list[dict[str, list[str]] | None] = []
    resolved: list[tuple[NormalizedEvent, Course]] = []
    for event in events:
        course = None
        if event.course_code is not None:
            course = courses_by_code.get(event.course_code)
        elif event.course_iri is not None:
            course = courses_by_iri.get(event.course_iri)
        if course is None:
            errors.append({"course": ["Unknown course."]})
            continue
        errors.append(None)
        resolved.append((event, course))
    items = _items_for(resolved)
    to_create: dict[tuple[int, str], ContentItem] = {}
    for index, (event, course) in enumerate(resolved):
        if event.item_external_id is None:
            continue
        key = (course.pk, event.item_external_id)
        if key in items or key in to_create:
            continue
        if event.new_item_type:
            to_create[key] = ContentItem(
                course=course,
                external_id=event.item_external_id,
                activity_type=event.new_item_type[:40],
                title=event.new_item_title[:200],
            )
        else:
            errors[_original_index(errors, index)] = {"item": ["Unknown item in this course."]}
    if any(errors):
        raise ValidationFailure(errors=errors)
    if to_create:
        ContentItem.objects.bulk_create(list(to_create.values()))
        items.update(_items_for(resolved))

    learners = learners_ensure(events=[e for e, _ in resolved])
    _enrollments_ensure(resolved, learners)
    # Raw SQL below: store datetimes exactly as the ORM would on this backend.
    adapt = connection.ops.adapt_datetimefield_value
    rows = []
    for event, course in resolved:
        item = items.get((course.pk, event.item_external_id)) if event.item_external_id else None
        rows.append(
            (
                learners[(event.learner_namespace, event.learner_identifier)],
                course.pk,
                item.pk if item else None,
                event.verb,
                adapt(event.occurred_at),
                event.count,
                event.duration_seconds,
                event.score,
                source,
                event.client_event_id,
                item.activity_type if item else event.verb,
            )
        )
    inserted = _events_insert(rows)
    rollup_add(
        rows=(
            (row[1], row[0], event.occurred_at.date(), row[10], 1, row[5], row[6] or 0.0)
            for row, (event, _) in zip(rows, resolved, strict=True)
            if row[9] in inserted
        )
    )
    return IngestResult(
        received=len(events),
        created=len(inserted),
        duplicates=len(events) - len(inserted),
        event_ids=[e.client_event_id for e in events],
    )


_EVENT_COLUMNS = (
    "learner_id, course_id, item_id, verb, occurred_at, count, duration_seconds, score, "
    "source, client_event_id"
)


def _events_insert(rows: list[tuple]) -> set[str]:
    """Insert events (all with client ids); return the client ids actually inserted."""
    conflict = (
        " ON CONFLICT (source, client_event_id) WHERE client_event_id IS NOT NULL "
        "DO NOTHING RETURNING client_event_id"
    )
    if connection.vendor == "postgresql":
        returned = _pg_copy_then(
            "ingest_events",
            "learner_id bigint, course_id bigint, item_id bigint, verb varchar(40), "
            "occurred_at timestamptz, count integer, duration_seconds double precision, "
            "score double precision, source varchar(8), client_event_id varchar(64)",
            [row[:10] for row in rows],
            f"INSERT INTO analytics_learningevent ({_EVENT_COLUMNS}) "
            f"SELECT {_EVENT_COLUMNS} FROM ingest_events" + conflict,
        )
        return {r[0] for r in returned}
    inserted: set[str] = set()
    placeholder = "(" + ", ".join(["%s"] * 10) + ")"
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, 90):  # SQLite allows 999 bound parameters
            cursor.execute(
                f"INSERT INTO analytics_learningevent ({_EVENT_COLUMNS}) VALUES "
                + ", ".join([placeholder] * len(chunk))
                + conflict,
                [value for row in chunk for value in row[:10]],
            )
            inserted.update(r[0] for r in cursor.fetchall())
    return inserted


def _chunks(rows: list, size: int) -> Iterable[list]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _pg_copy_then(temp: str, columns_ddl: str, rows: list[tuple], sql: str) -> list[tuple]:
    """COPY rows into a per-connection temp table, then run one set-based statement.

    Binding thousands of parameters costs more client time than the whole
    database work; COPY streams the rows instead. The temp table lives as long
    as the connection and empties itself at commit.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {temp} ({columns_ddl}) ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {temp}")
        with cursor.cursor.copy(f"COPY {temp} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(sql)
        return cursor.fetchall() if cursor.description else []


def _original_index(errors: list[dict[str, list[str]] | None], resolved_index: int) -> int:
    """Map an index into the resolved list back to the batch position."""
    seen = -1
    for position, error in enumerate(errors):
        if error is None:
            seen += 1
            if seen == resolved_index:
                return position
    raise IndexError(resolved_index)


def _courses_for(events: list[NormalizedEvent]) -> tuple[dict[str, Course], dict[str, Course]]:
    codes = {e.course_code for e in events if e.course_code is not None}
    iris = {e.course_iri for e in events if e.course_iri is not None}
    by_code = {c.code: c for c in Course.objects.filter(code__in=codes)} if codes else {}
    by_iri = {c.iri: c for c in Course.objects.filter(iri__in=iris)} if iris else {}
    return by_code, by_iri  # type: ignore[return-value]


def _items_for(
    resolved: list[tuple[NormalizedEvent, Course]],
) -> dict[tuple[int, str], ContentItem]:
    wanted = defaultdict(set)
    for event, course in resolved:
        if event.item_external_id is not None:
            wanted[course.pk].add(event.item_external_id)
    found: dict[tuple[int, str], ContentItem] = {}
    for course_id, external_ids in wanted.items():
        for item in ContentItem.objects.filter(course_id=course_id, external_id__in=external_ids):
            found[(course_id, item.external_id)] = item
    return found


def learners_ensure(*, events: Iterable[NormalizedEvent]) -> dict[tuple[str, str], int]:
    """Learner ids for the events' identities, creating learners not seen before."""
    identities: dict[tuple[str, str], NormalizedEvent] = {}
    for event in events:
        identities.setdefault((event.learner_namespace, event.learner_identifier), event)
    pseudonyms = {key: pseudonymise(*key) for key in identities}
    existing = dict(
        Learner.objects.filter(pseudonym__in=pseudonyms.values()).values_list("pseudonym", "id")
    )
    missing = [
        Learner(
            pseudonym=pseudonym,
            email=identities[key].learner_email,
            name=identities[key].learner_name,
        )
        for key, pseudonym in pseudonyms.items()
        if pseudonym not in existing
    ]
    if missing:
        Learner.objects.bulk_create(missing, ignore_conflicts=True)
        existing.update(
            Learner.objects.filter(pseudonym__in=[m.pseudonym for m in missing]).values_list(
                "pseudonym", "id"
            )
        )
    return {key: existing[pseudonym] for key, pseudonym in pseudonyms.items()}


def _enrollments_ensure(
    fresh: list[tuple[NormalizedEvent, Course]], learners: dict[tuple[str, str], int]
) -> None:
    first_seen: dict[tuple[int, int], dt.date] = {}
    for event, course in fresh:
        key = (course.pk, learners[(event.learner_namespace, event.learner_identifier)])
        day = event.occurred_at.date()
        if key not in first_seen or day < first_seen[key]:
            first_seen[key] = day
    if not first_seen:
        return
    course_ids = {c for c, _ in first_seen}
    learner_ids = {learner for _, learner in first_seen}
    existing = set(
        Enrollment.objects.filter(course_id__in=course_ids, learner_id__in=learner_ids).values_list(
            "course_id", "learner_id"
        )
    )
    Enrollment.objects.bulk_create(
        [
            Enrollment(course_id=c, learner_id=learner, registered_on=day)
            for (c, learner), day in first_seen.items()
            if (c, learner) not in existing
        ],
        ignore_conflicts=True,
    )


def rollup_add(*, rows: Iterable[tuple[int, int, dt.date, str, int, int, float]]) -> int:
    """Add (course, learner, date, activity_type, events, clicks, active_seconds) to the rollup.

    Sums in Python first, then one upsert that increments existing rows; the
    same SQL runs on PostgreSQL and SQLite (>= 3.24).
    """
    totals: dict[tuple[int, int, dt.date, str], list[float]] = {}
    for course_id, learner_id, date, activity_type, n_events, clicks, seconds in rows:
        acc = totals.setdefault((course_id, learner_id, date, activity_type), [0, 0, 0.0])
        acc[0] += n_events
        acc[1] += clicks
        acc[2] += seconds
    if not totals:
        return 0
    params = [(*key, int(v[0]), int(v[1]), float(v[2])) for key, v in totals.items()]
    upsert = (
        " ON CONFLICT (course_id, learner_id, date, activity_type) DO UPDATE SET "
        "events = analytics_dailyactivity.events + excluded.events, "
        "clicks = analytics_dailyactivity.clicks + excluded.clicks, "
        "active_seconds = analytics_dailyactivity.active_seconds + excluded.active_seconds"
    )
    columns = "course_id, learner_id, date, activity_type, events, clicks, active_seconds"
    if connection.vendor == "postgresql":
        _pg_copy_then(
            "ingest_rollup",
            "course_id bigint, learner_id bigint, date date, activity_type varchar(40), "
            "events integer, clicks integer, active_seconds double precision",
            params,
            f"INSERT INTO analytics_dailyactivity ({columns}) SELECT {columns} FROM ingest_rollup"
            + upsert,
        )
        return len(params)
    placeholder = "(%s, %s, %s, %s, %s, %s, %s)"
    with connection.cursor() as cursor:
        for chunk in _chunks(params, 140):
            cursor.execute(
                f"INSERT INTO analytics_dailyactivity ({columns}) VALUES "
                + ", ".join([placeholder] * len(chunk))
                + upsert,
                [value for row in chunk for value in row],
            )
    return len(params)


@transaction.atomic
def rollups_rebuild(*, course_id: int) -> int:
    """Recompute a course run's daily rollup from its raw events (repair / after erasure)."""
    from analytics.models import DailyActivity

    DailyActivity.objects.filter(course_id=course_id).delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO analytics_dailyactivity "
            "(course_id, learner_id, date, activity_type, events, clicks, active_seconds) "
            "SELECT e.course_id, e.learner_id, "
            + _date_sql("e.occurred_at")
            + ", COALESCE(i.activity_type, e.verb), COUNT(*), SUM(e.count), "
            "COALESCE(SUM(e.duration_seconds), 0) "
            "FROM analytics_learningevent e "
            "LEFT JOIN analytics_contentitem i ON i.id = e.item_id "
            "WHERE e.course_id = %s "
            "GROUP BY e.course_id, e.learner_id, "
            + _date_sql("e.occurred_at")
            + ", COALESCE(i.activity_type, e.verb)",
            [course_id],
        )
        return cursor.rowcount


def _date_sql(column: str) -> str:
    # Rollup days are UTC calendar days (TIME_ZONE is UTC).
    if connection.vendor == "postgresql":
        return f"(({column}) AT TIME ZONE 'UTC')::date"
    return f"date({column})"


@dataclass(frozen=True)
class ErasureResult:
    found: bool
    events: int = 0
    rollup_rows: int = 0
    submissions: int = 0
    enrollments: int = 0


@transaction.atomic
def learner_erase(*, pseudonym: str) -> ErasureResult:
    """Delete everything about one learner; running it again finds nothing and changes nothing.

    1. Find the learner and the course runs they were enrolled in.
    2. Delete events and rollup rows course by course (the indexes lead with
       the course), then submissions and enrolments.
    3. Delete the learner row: personal data and every prediction that
       references it (foreign keys cascade).
    4. Mark active models as due for retraining without this learner.
    """
    from analytics.models import DailyActivity, Submission
    from eduplatform.registry.services import models_mark_retrain_due

    learner = Learner.objects.filter(pseudonym=pseudonym).first()
    if learner is None:
        return ErasureResult(found=False)
    course_ids = list(
        Enrollment.objects.filter(learner=learner).values_list("course_id", flat=True)
    ) + list(
        LearningEvent.objects.filter(learner=learner).values_list("course_id", flat=True).distinct()
    )
    events, _ = LearningEvent.objects.filter(
        learner=learner, course_id__in=set(course_ids)
    ).delete()
    events += LearningEvent.objects.filter(learner=learner).delete()[0]
    rollup, _ = DailyActivity.objects.filter(
        course_id__in=set(course_ids), learner=learner
    ).delete()
    submissions, _ = Submission.objects.filter(learner=learner).delete()
    enrollments, _ = Enrollment.objects.filter(learner=learner).delete()
    learner.delete()
    models_mark_retrain_due()
    logger.info("erasure: learner %s erased (%s events)", pseudonym, events)
    return ErasureResult(
        found=True,
        events=events,
        rollup_rows=rollup,
        submissions=submissions,
        enrollments=enrollments,
    )
