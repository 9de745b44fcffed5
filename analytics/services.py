"""Writes of learner-behaviour data. Every function is keyword-only and atomic."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction

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

    A concurrent request storing the same ids makes the insert fail on the
    unique constraint; the whole batch is then retried once, when the rival's
    rows are visible and get skipped as duplicates.
    """
    for attempt in (1, 2):
        try:
            return _events_ingest_once(events=events, source=source)
        except IntegrityError:
            if attempt == 2:
                raise
            logger.info("events_ingest: concurrent duplicate ids, retrying batch")
    raise AssertionError("unreachable")


@transaction.atomic
def _events_ingest_once(*, events: list[NormalizedEvent], source: str) -> IngestResult:
    """1. Resolve courses and items (errors per event, nothing written).
    2. Drop events whose client id is already stored.
    3. Create missing learners and enrolments.
    4. Insert events and add them to the daily rollup.
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

    existing = set(
        LearningEvent.objects.filter(
            source=source, client_event_id__in=[e.client_event_id for e, _ in resolved]
        ).values_list("client_event_id", flat=True)
    )
    fresh = [(e, c) for e, c in resolved if e.client_event_id not in existing]
    learners = learners_ensure(events=[e for e, _ in fresh])
    _enrollments_ensure(fresh, learners)

    rows = []
    for event, course in fresh:
        item = items.get((course.pk, event.item_external_id)) if event.item_external_id else None
        rows.append(
            LearningEvent(
                learner_id=learners[(event.learner_namespace, event.learner_identifier)],
                course=course,
                item=item,
                verb=event.verb,
                occurred_at=event.occurred_at,
                count=event.count,
                duration_seconds=event.duration_seconds,
                score=event.score,
                source=source,
                client_event_id=event.client_event_id,
            )
        )
    LearningEvent.objects.bulk_create(rows, batch_size=1000)
    rollup_add(
        rows=(
            (
                row.course_id,
                row.learner_id,
                row.occurred_at.date(),
                row.item.activity_type if row.item else row.verb,
                1,
                row.count,
                row.duration_seconds or 0.0,
            )
            for row in rows
        )
    )
    return IngestResult(
        received=len(events),
        created=len(rows),
        duplicates=len(events) - len(rows),
        event_ids=[e.client_event_id for e in events],
    )


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
    sql = (
        "INSERT INTO analytics_dailyactivity "
        "(course_id, learner_id, date, activity_type, events, clicks, active_seconds) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (course_id, learner_id, date, activity_type) DO UPDATE SET "
        "events = analytics_dailyactivity.events + excluded.events, "
        "clicks = analytics_dailyactivity.clicks + excluded.clicks, "
        "active_seconds = analytics_dailyactivity.active_seconds + excluded.active_seconds"
    )
    params = [(*key, int(v[0]), int(v[1]), float(v[2])) for key, v in totals.items()]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
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
