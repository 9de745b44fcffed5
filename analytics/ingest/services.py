"""Ingestion of learning events (events API, xAPI): resolve, store, roll up. All-or-nothing.

Every function is keyword-only and atomic. The batch's references (courses,
items, learners) are read by analytics.ingest.lookups; bulk rows reach
PostgreSQL through analytics.importers.pg_bulk, as the import's do.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection, transaction

from analytics import activity_stamps
from analytics.importers import pg_bulk
from analytics.ingest.lookups import (
    ItemRef,
    chunks,
    courses_for,
    items_for,
    learner_ids,
    pg_lookups,
    pseudonyms_for,
)
from analytics.ingest.validation import NormalizedEvent, ValidationFailure
from analytics.models import ContentItem, Course, Enrollment, Learner

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
    dropped by the database itself: the ids are claimed in analytics_eventclientid
    with INSERT ... ON CONFLICT DO NOTHING, RETURNING the ids really claimed; only
    their events are stored and reach the rollup.
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
    pseudonyms = pseudonyms_for(events)
    if connection.vendor == "postgresql":
        courses_by_code, courses_by_iri, items, known = pg_lookups(events, pseudonyms)
    else:
        courses_by_code, courses_by_iri = courses_for(events)
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
        items = items_for(resolved)
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
        items.update(items_for(resolved))

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


def _rollup_type(event: NormalizedEvent, item: ItemRef | None) -> str:
    return item.activity_type if item else event.verb


_PG_STORE = """
WITH input AS (
    SELECT (r->>0)::bigint AS learner_id, (r->>1)::bigint AS course_id,
           (r->>2)::bigint AS item_id, r->>3 AS verb, (r->>4)::timestamptz AS occurred_at,
           (r->>5)::int AS count, (r->>6)::float8 AS duration_seconds, (r->>7)::float8 AS score,
           r->>8 AS client_event_id, r->>9 AS activity_type
    FROM jsonb_array_elements(%(rows)s::jsonb) AS r
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
), claimed AS (
    -- The client ids' side table is the dedup (the event table is partitioned by
    -- time and cannot hold a unique index without occurred_at): an id already
    -- claimed, by an earlier batch or a concurrent one, is not stored again.
    INSERT INTO analytics_eventclientid (source, client_event_id, occurred_at)
    SELECT %(source)s, client_event_id, occurred_at FROM input ORDER BY client_event_id
    ON CONFLICT (source, client_event_id) DO NOTHING
    RETURNING client_event_id
), inserted AS (
    INSERT INTO analytics_learningevent
        (learner_id, course_id, item_id, verb, occurred_at, count, duration_seconds, score,
         source, client_event_id)
    SELECT learner_id, course_id, item_id, verb, occurred_at, count, duration_seconds, score,
           %(source)s, client_event_id
    FROM input JOIN claimed USING (client_event_id)
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
    items: dict[tuple[int, str], ItemRef],
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
    with pg_bulk.raw_cursor() as cursor:
        cursor.execute(_PG_STORE, {"rows": payload, "source": source})
        return {row[0] for row in cursor.fetchall()}


def _events_store(
    resolved: list[tuple[NormalizedEvent, Course]],
    items: dict[tuple[int, str], ItemRef],
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
    items: dict[tuple[int, str], ItemRef],
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
    """Claim the client ids (rows of _event_rows, all with one), then insert the events
    of the ids claimed, one statement per 90 rows (SQLite binds at most 999
    parameters); return the client ids inserted. The same dedup as _PG_STORE's."""
    claimed: set[str] = set()
    with connection.cursor() as cursor:
        for chunk in chunks(rows, 300):
            cursor.execute(
                "INSERT INTO analytics_eventclientid (source, client_event_id, occurred_at) "
                "VALUES "
                + ", ".join(["(%s, %s, %s)"] * len(chunk))
                + " ON CONFLICT (source, client_event_id) DO NOTHING RETURNING client_event_id",
                [value for row in chunk for value in (source, row[8], row[4])],
            )
            claimed.update(r[0] for r in cursor.fetchall())
        placeholder = "(" + ", ".join(["%s"] * 10) + ")"
        for chunk in chunks([row for row in rows if row[8] in claimed], 90):
            cursor.execute(
                f"INSERT INTO analytics_learningevent ({_EVENT_COLUMNS}) VALUES "
                + ", ".join([placeholder] * len(chunk)),
                [value for row in chunk for value in (*row[:8], source, row[8])],
            )
    return claimed


def _original_index(errors: list[dict[str, list[str]] | None], resolved_index: int) -> int:
    """Map an index into the resolved list back to the batch position."""
    seen = -1
    for position, error in enumerate(errors):
        if error is None:
            seen += 1
            if seen == resolved_index:
                return position
    raise IndexError(resolved_index)


def learners_ensure(
    *,
    events: Iterable[NormalizedEvent],
    known: dict[str, int] | None = None,
    pseudonyms: dict[tuple[str, str], str] | None = None,
) -> dict[tuple[str, str], int]:
    """Learner ids for the events' identities, creating learners not seen before.

    `known` (pseudonym -> id), when given, is what a lookup of every pseudonym
    of these events found already; `pseudonyms` (identity -> pseudonym), what
    `pseudonyms_for` gave for them.
    """
    identities: dict[tuple[str, str], NormalizedEvent] = {}
    for event in events:
        identities.setdefault((event.learner_namespace, event.learner_identifier), event)
    if pseudonyms is None:
        pseudonyms = pseudonyms_for(identities.values())
    pseudonyms = {key: pseudonyms[key] for key in identities}
    existing = dict(known) if known is not None else learner_ids(list(pseudonyms.values()))
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
            existing.update(learner_ids(late))
    return {key: existing[pseudonym] for key, pseudonym in pseudonyms.items()}


def _learners_insert(rows: list[tuple[str, str, str]]) -> dict[str, int]:
    """Insert (pseudonym, name, email) rows, skipping existing pseudonyms; return new ids."""
    if connection.vendor != "postgresql":
        Learner.objects.bulk_create(
            [Learner(pseudonym=p, name=n, email=e) for p, n, e in rows], ignore_conflicts=True
        )
        return learner_ids([p for p, _, _ in rows])
    # Personal data is encrypted at rest by the model fields (Fernet); empty stays empty.
    name_field = Learner._meta.get_field("name")
    email_field = Learner._meta.get_field("email")
    with pg_bulk.raw_cursor() as cursor:
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
        pg_bulk.copy_then(
            "analytics_dailyactivity",
            columns.split(", "),
            params,
            f"INSERT INTO analytics_dailyactivity ({columns}) SELECT {columns} FROM {{source}}"
            + upsert,
        )
        return len(params)
    placeholder = "(%s, %s, %s, %s, %s, %s, %s)"
    with connection.cursor() as cursor:
        for chunk in chunks(params, 140):
            cursor.execute(
                f"INSERT INTO analytics_dailyactivity ({columns}) VALUES "
                + ", ".join([placeholder] * len(chunk))
                + upsert,
                [value for row in chunk for value in row],
            )
    return len(params)
