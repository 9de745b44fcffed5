"""Writes of learner-behaviour data. Every function is keyword-only and atomic."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import psycopg
from django.conf import settings
from django.db import connection, transaction

from analytics import activity_stamps
from analytics.models import ContentItem, Course, Enrollment, Learner, LearningEvent
from analytics.validation import NormalizedEvent, ValidationFailure
from eduplatform.core.privacy import pseudonymise

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
    """1. Resolve courses and items (errors per event, nothing written) and find
       known learners: on PostgreSQL three reads in one round trip.
    2. Create missing learners (one statement).
    3. PostgreSQL: one statement adds missing enrolments, inserts the events
       (skipping stored client ids) and adds the inserted ones to the daily
       rollup, the rows bound as one JSON parameter. SQLite: the same in a
       few set-based statements.
    """
    pseudonyms = _pseudonyms(events)
    if connection.vendor == "postgresql":
        courses_by_code, courses_by_iri, items, known = _pg_lookups(events, pseudonyms)
    else:
        courses_by_code, courses_by_iri = _courses_for(events)
        items, known = {}, None
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
    if known is None:
        items = _items_for(resolved)
    to_create: dict[tuple[int, str], ContentItem] = {}
    for index, (event, course) in enumerate(resolved):
        if event.item_external_id is None:
            continue
        key = (course.id, event.item_external_id)
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

    learners = learners_ensure(events=[e for e, _ in resolved], known=known, pseudonyms=pseudonyms)
    if connection.vendor == "postgresql":
        inserted = _pg_events_store(resolved, items, learners, source)
    else:
        inserted = _events_store(resolved, items, learners, source)
    # Answers cached per learner and run (recommendations) are keyed by these;
    # nothing in this transaction reads them, so only after commit.
    activity_stamps.stamps_bump(
        pairs=[
            (course.id, pseudonyms[(event.learner_namespace, event.learner_identifier)])
            for event, course in resolved
        ],
        now=False,
    )
    return IngestResult(
        received=len(events),
        created=len(inserted),
        duplicates=len(events) - len(inserted),
        event_ids=[e.client_event_id for e in events],
    )


def _rollup_type(event: NormalizedEvent, item: _Item | None) -> str:
    return item.activity_type if item else event.verb


_PG_STORE = """
WITH input AS (
    SELECT (r->>0)::bigint AS learner_id, (r->>1)::bigint AS course_id,
           (r->>2)::bigint AS item_id, r->>3 AS verb, (r->>4)::timestamptz AS occurred_at,
           (r->>5)::int AS count, (r->>6)::float8 AS duration_seconds, (r->>7)::float8 AS score,
           r->>8 AS client_event_id, r->>9 AS activity_type
    FROM jsonb_array_elements(%s::jsonb) AS r
), days AS (
    -- Rollup days are UTC calendar days.
    SELECT *, (occurred_at AT TIME ZONE 'UTC')::date AS day FROM input
), enrolled AS (
    INSERT INTO analytics_enrollment
        (course_id, learner_id, registered_on, final_result, num_prev_attempts)
    SELECT course_id, learner_id, min(day), '', 0 FROM days d
    WHERE NOT EXISTS (
        SELECT 1 FROM analytics_enrollment e
        WHERE e.course_id = d.course_id AND e.learner_id = d.learner_id
    )
    GROUP BY course_id, learner_id ORDER BY course_id, learner_id
    ON CONFLICT (course_id, learner_id) DO NOTHING
), inserted AS (
    INSERT INTO analytics_learningevent
        (learner_id, course_id, item_id, verb, occurred_at, count, duration_seconds, score,
         source, client_event_id)
    SELECT learner_id, course_id, item_id, verb, occurred_at, count, duration_seconds, score,
           %s, client_event_id
    FROM input
    ON CONFLICT (source, client_event_id) WHERE client_event_id IS NOT NULL DO NOTHING
    RETURNING client_event_id
), rolled AS (
    INSERT INTO analytics_dailyactivity
        (course_id, learner_id, date, activity_type, events, clicks, active_seconds)
    SELECT i.course_id, i.learner_id, i.day, i.activity_type, count(*), sum(i.count),
           coalesce(sum(i.duration_seconds), 0)
    FROM days i JOIN inserted USING (client_event_id)
    GROUP BY i.course_id, i.learner_id, i.day, i.activity_type
    ORDER BY i.course_id, i.learner_id, i.day, i.activity_type
    ON CONFLICT (course_id, learner_id, date, activity_type) DO UPDATE SET
        events = analytics_dailyactivity.events + excluded.events,
        clicks = analytics_dailyactivity.clicks + excluded.clicks,
        active_seconds = analytics_dailyactivity.active_seconds + excluded.active_seconds
)
SELECT client_event_id FROM inserted
"""


def _pg_events_store(
    resolved: list[tuple[NormalizedEvent, Course]],
    items: dict[tuple[int, str], _Item],
    learners: dict[tuple[str, str], int],
    source: str,
) -> set[str]:
    """Enrolments, events and rollup in one statement; return the client ids inserted.

    Rows go in as one JSON parameter; ordered upserts keep concurrent batches
    from deadlocking.
    """
    rows = _event_rows(resolved, items, learners, when=lambda at: at.isoformat())
    # One JSON document for all rows: the C encoder and the server's JSON
    # parser beat binding ten arrays element by element in Python. The server
    # reads it as jsonb, parsed once: with json every ->> re-scans the row's
    # text (ten fields x 1,000 rows; jsonb took about 1 ms less per batch).
    payload = json.dumps(rows, allow_nan=False)
    with _raw_cursor() as cursor:
        cursor.execute(_PG_STORE, [payload, source])
        return {row[0] for row in cursor.fetchall()}


@contextmanager
def _raw_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg cursor with server-side binding on Django's connection (same transaction).

    Django's own cursor binds client-side, writing every array element into
    the SQL text; here arrays travel as parameters.
    """
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _events_store(
    resolved: list[tuple[NormalizedEvent, Course]],
    items: dict[tuple[int, str], _Item],
    learners: dict[tuple[str, str], int],
    source: str,
) -> set[str]:
    """The same as _pg_events_store in a few statements (SQLite)."""
    _enrollments_ensure(resolved, learners)
    # Raw SQL below: store datetimes exactly as the ORM would on this backend.
    rows = _event_rows(resolved, items, learners, when=connection.ops.adapt_datetimefield_value)
    inserted = _events_insert(rows, source)
    rollup_add(
        rows=(
            (row[1], row[0], event.occurred_at.date(), row[9], 1, row[5], row[6] or 0.0)
            for row, (event, _) in zip(rows, resolved, strict=True)
            if row[8] in inserted
        )
    )
    return inserted


def _event_rows(
    resolved: list[tuple[NormalizedEvent, Course]],
    items: dict[tuple[int, str], _Item],
    learners: dict[tuple[str, str], int],
    *,
    when: Callable[[dt.datetime], object],
) -> list[tuple]:
    """One tuple per event: learner, course, item, verb, when(occurred_at), count,
    duration, score, client id, rollup activity type (both stores read these)."""
    rows = []
    for event, course in resolved:
        item = items.get((course.id, event.item_external_id)) if event.item_external_id else None
        rows.append(
            (
                learners[(event.learner_namespace, event.learner_identifier)],
                course.id,
                item.pk if item else None,
                event.verb,
                when(event.occurred_at),
                event.count,
                event.duration_seconds,
                event.score,
                event.client_event_id,
                _rollup_type(event, item),
            )
        )
    return rows


_EVENT_COLUMNS = (
    "learner_id, course_id, item_id, verb, occurred_at, count, duration_seconds, score, "
    "source, client_event_id"
)


def _events_insert(rows: list[tuple], source: str) -> set[str]:
    """Insert events (rows of _event_rows, all with client ids) with one statement per
    90 rows (SQLite binds at most 999 parameters); return the client ids inserted."""
    conflict = (
        " ON CONFLICT (source, client_event_id) WHERE client_event_id IS NOT NULL "
        "DO NOTHING RETURNING client_event_id"
    )
    inserted: set[str] = set()
    placeholder = "(" + ", ".join(["%s"] * 10) + ")"
    with connection.cursor() as cursor:
        for chunk in _chunks(rows, 90):
            cursor.execute(
                f"INSERT INTO analytics_learningevent ({_EVENT_COLUMNS}) VALUES "
                + ", ".join([placeholder] * len(chunk))
                + conflict,
                [value for row in chunk for value in (*row[:8], source, row[8])],
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


def _pg_lookups(
    events: list[NormalizedEvent],
    pseudonyms_by_identity: dict[tuple[str, str], str],
) -> tuple[dict[str, Course], dict[str, Course], dict[tuple[int, str], _Item], dict[str, int]]:
    """Courses, items and known learners of a batch in one round trip (psycopg pipeline).

    Each round trip to the database costs a scheduling slice of its own on a
    busy machine; the three reads do not depend on each other (items are
    matched by course code or IRI, learners by pseudonym).
    """
    codes = sorted({e.course_code for e in events if e.course_code is not None})
    iris = sorted({e.course_iri for e in events if e.course_iri is not None})
    external_ids = sorted({e.item_external_id for e in events if e.item_external_id is not None})
    pseudonyms = sorted(set(pseudonyms_by_identity.values()))
    connection.ensure_connection()
    raw = connection.connection
    with (
        psycopg.Cursor(raw) as courses,
        psycopg.Cursor(raw) as items,
        psycopg.Cursor(raw) as learners,
    ):
        with raw.pipeline():
            courses.execute(
                "SELECT id, code, iri FROM analytics_course "
                "WHERE code = ANY(%b::text[]) OR iri = ANY(%b::text[])",
                [codes, iris],
            )
            items.execute(
                "SELECT i.course_id, i.external_id, i.id, i.activity_type "
                "FROM analytics_contentitem i JOIN analytics_course c ON c.id = i.course_id "
                "WHERE (c.code = ANY(%b::text[]) OR c.iri = ANY(%b::text[])) "
                "AND i.external_id = ANY(%b::text[])",
                [codes, iris, external_ids],
            )
            learners.execute(
                "SELECT pseudonym, id FROM analytics_learner WHERE pseudonym = ANY(%b::text[])",
                [pseudonyms],
            )
        by_code: dict[str, Course] = {}
        by_iri: dict[str, Course] = {}
        for row in courses.fetchall():
            course = Course.from_db(connection.alias, ["id", "code", "iri"], row)
            by_code[course.code] = course
            if course.iri is not None:
                by_iri[course.iri] = course
        found = {
            (course_id, external_id): _Item(pk, activity_type)
            for course_id, external_id, pk, activity_type in items.fetchall()
        }
        return by_code, by_iri, found, dict(learners.fetchall())


def _courses_for(events: list[NormalizedEvent]) -> tuple[dict[str, Course], dict[str, Course]]:
    codes = {e.course_code for e in events if e.course_code is not None}
    iris = {e.course_iri for e in events if e.course_iri is not None}
    by_code = {c.code: c for c in Course.objects.filter(code__in=codes)} if codes else {}
    by_iri = {c.iri: c for c in Course.objects.filter(iri__in=iris)} if iris else {}
    return by_code, by_iri  # type: ignore[return-value]


@dataclass(frozen=True)
class _Item:
    """What ingestion needs of a ContentItem (model instances cost more to build)."""

    pk: int
    activity_type: str


def _items_for(
    resolved: list[tuple[NormalizedEvent, Course]],
) -> dict[tuple[int, str], _Item]:
    """(course pk, external id) -> item for the events' items, in one query."""
    wanted = {
        (course.id, event.item_external_id)
        for event, course in resolved
        if event.item_external_id is not None
    }
    if not wanted:
        return {}
    course_ids = list({c for c, _ in wanted})
    external_ids = list({e for _, e in wanted})
    # Both lists together select a superset (every course x every id); keep the pairs asked.
    if connection.vendor == "postgresql":
        with _raw_cursor() as cursor:
            cursor.execute(
                "SELECT course_id, external_id, id, activity_type FROM analytics_contentitem "
                "WHERE course_id = ANY(%b::bigint[]) AND external_id = ANY(%b::text[])",
                [course_ids, external_ids],
            )
            rows = cursor.fetchall()
    else:
        rows = []
        for chunk in _chunks(external_ids, 900):
            rows.extend(
                ContentItem.objects.filter(
                    course_id__in=course_ids, external_id__in=chunk
                ).values_list("course_id", "external_id", "id", "activity_type")
            )
    return {
        (course_id, external_id): _Item(pk, activity_type)
        for course_id, external_id, pk, activity_type in rows
        if (course_id, external_id) in wanted
    }


def learners_ensure(
    *,
    events: Iterable[NormalizedEvent],
    known: dict[str, int] | None = None,
    pseudonyms: dict[tuple[str, str], str] | None = None,
) -> dict[tuple[str, str], int]:
    """Learner ids for the events' identities, creating learners not seen before.

    `known` (pseudonym -> id), when given, is what a lookup of every pseudonym
    of these events found already; `pseudonyms` (identity -> pseudonym), what
    `_pseudonyms` gave for them.
    """
    identities: dict[tuple[str, str], NormalizedEvent] = {}
    for event in events:
        identities.setdefault((event.learner_namespace, event.learner_identifier), event)
    if pseudonyms is None:
        pseudonyms = _pseudonyms(identities.values())
    pseudonyms = {key: pseudonyms[key] for key in identities}
    existing = dict(known) if known is not None else _learner_ids(list(pseudonyms.values()))
    missing = [key for key, pseudonym in pseudonyms.items() if pseudonym not in existing]
    if missing:
        rows = [
            (pseudonyms[key], identities[key].learner_name, identities[key].learner_email)
            for key in missing
        ]
        existing.update(_learners_insert(rows))
        # A concurrent request may have created some first: read those back.
        late = [pseudonyms[key] for key in missing if pseudonyms[key] not in existing]
        if late:
            existing.update(_learner_ids(late))
    return {key: existing[pseudonym] for key, pseudonym in pseudonyms.items()}


def _learner_ids(pseudonyms: list[str]) -> dict[str, int]:
    if not pseudonyms:
        return {}
    if connection.vendor == "postgresql":
        with _raw_cursor() as cursor:
            cursor.execute(
                "SELECT pseudonym, id FROM analytics_learner WHERE pseudonym = ANY(%b::text[])",
                [pseudonyms],
            )
            return dict(cursor.fetchall())
    found: dict[str, int] = {}
    for chunk in _chunks(pseudonyms, 900):
        found.update(Learner.objects.filter(pseudonym__in=chunk).values_list("pseudonym", "id"))
    return found


def _learners_insert(rows: list[tuple[str, str, str]]) -> dict[str, int]:
    """Insert (pseudonym, name, email) rows, skipping existing pseudonyms; return new ids."""
    if connection.vendor != "postgresql":
        Learner.objects.bulk_create(
            [Learner(pseudonym=p, name=n, email=e) for p, n, e in rows], ignore_conflicts=True
        )
        return _learner_ids([p for p, _, _ in rows])
    # Personal data is encrypted at rest by the model fields (Fernet); empty stays empty.
    name_field = Learner._meta.get_field("name")
    email_field = Learner._meta.get_field("email")
    with _raw_cursor() as cursor:
        cursor.execute(
            "INSERT INTO analytics_learner (pseudonym, name, email, gender, region, "
            "highest_education, imd_band, age_band, disability, created_at) "
            "SELECT p, n, e, '', '', '', '', '', '', now() "
            "FROM unnest(%b::text[], %b::text[], %b::text[]) AS t(p, n, e) ORDER BY p "
            "ON CONFLICT (pseudonym) DO NOTHING RETURNING pseudonym, id",
            [
                [p for p, _, _ in rows],
                [name_field.get_prep_value(n) for _, n, _ in rows],
                [email_field.get_prep_value(e) for _, _, e in rows],
            ],
        )
        return dict(cursor.fetchall())


@lru_cache(maxsize=65536)
def _pseudonym_cached(key_setting: str, secret: str, namespace: str, identifier: str) -> str:
    return pseudonymise(namespace, identifier)


def _pseudonyms(events: Iterable[NormalizedEvent]) -> dict[tuple[str, str], str]:
    """pseudonymise() per distinct learner identity of `events`, memoised per key
    (the same learners send event after event). The key settings are read once:
    each `settings.X` costs microseconds, which a per-event call paid thrice."""
    key, secret = settings.PSEUDONYM_KEY or "", settings.SECRET_KEY
    out: dict[tuple[str, str], str] = {}
    for event in events:
        identity = (event.learner_namespace, event.learner_identifier)
        if identity not in out:
            out[identity] = _pseudonym_cached(key, secret, *identity)
    return out


def _enrollments_ensure(
    fresh: list[tuple[NormalizedEvent, Course]], learners: dict[tuple[str, str], int]
) -> None:
    first_seen: dict[tuple[int, int], dt.date] = {}
    for event, course in fresh:
        key = (course.id, learners[(event.learner_namespace, event.learner_identifier)])
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
