"""What ingestion reads before it writes: courses, items and learners of a batch.

On PostgreSQL arrays travel as bound parameters (`pg_bulk.raw_cursor`), and
the three reads of a batch go in one round trip; SQLite reads in chunks of at
most 900 parameters.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import psycopg
from django.conf import settings
from django.db import connection

from analytics.importers import pg_bulk
from analytics.ingest.validation import NormalizedEvent
from analytics.models import ContentItem, Course, Learner
from eduplatform.core.privacy import pseudonymise


def item_courses_by_iri(external_ids: set[str]) -> dict[str, str]:
    """Course IRI of each known activity id that belongs to exactly one course with an IRI."""
    if not external_ids:
        return {}
    courses: dict[str, set[str]] = defaultdict(set)
    rows = ContentItem.objects.filter(
        external_id__in=external_ids, course__iri__isnull=False
    ).values_list("external_id", "course__iri")
    for external_id, iri in rows:
        if iri is not None:  # filtered out above; for the type checker
            courses[external_id].add(iri)
    return {ext: next(iter(iris)) for ext, iris in courses.items() if len(iris) == 1}


def chunks(rows: list, size: int) -> Iterable[list]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def pg_lookups(
    events: list[NormalizedEvent],
    pseudonyms_by_identity: dict[tuple[str, str], str],
) -> tuple[dict[str, Course], dict[str, Course], dict[tuple[int, str], ItemRef], dict[str, int]]:
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
            (course_id, external_id): ItemRef(pk, activity_type)
            for course_id, external_id, pk, activity_type in items.fetchall()
        }
        return by_code, by_iri, found, dict(learners.fetchall())


def courses_for(events: list[NormalizedEvent]) -> tuple[dict[str, Course], dict[str, Course]]:
    codes = {e.course_code for e in events if e.course_code is not None}
    iris = {e.course_iri for e in events if e.course_iri is not None}
    by_code = {c.code: c for c in Course.objects.filter(code__in=codes)} if codes else {}
    by_iri = {c.iri: c for c in Course.objects.filter(iri__in=iris)} if iris else {}
    return by_code, by_iri  # type: ignore[return-value]


@dataclass(frozen=True)
class ItemRef:
    """What ingestion needs of a ContentItem (model instances cost more to build)."""

    pk: int
    activity_type: str


def items_for(
    resolved: list[tuple[NormalizedEvent, Course]],
) -> dict[tuple[int, str], ItemRef]:
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
        with pg_bulk.raw_cursor() as cursor:
            cursor.execute(
                "SELECT course_id, external_id, id, activity_type FROM analytics_contentitem "
                "WHERE course_id = ANY(%b::bigint[]) AND external_id = ANY(%b::text[])",
                [course_ids, external_ids],
            )
            rows = cursor.fetchall()
    else:
        rows = []
        for chunk in chunks(external_ids, 900):
            rows.extend(
                ContentItem.objects.filter(
                    course_id__in=course_ids, external_id__in=chunk
                ).values_list("course_id", "external_id", "id", "activity_type")
            )
    return {
        (course_id, external_id): ItemRef(pk, activity_type)
        for course_id, external_id, pk, activity_type in rows
        if (course_id, external_id) in wanted
    }


def learner_ids(pseudonyms: list[str]) -> dict[str, int]:
    if not pseudonyms:
        return {}
    if connection.vendor == "postgresql":
        with pg_bulk.raw_cursor() as cursor:
            cursor.execute(
                "SELECT pseudonym, id FROM analytics_learner WHERE pseudonym = ANY(%b::text[])",
                [pseudonyms],
            )
            return dict(cursor.fetchall())
    found: dict[str, int] = {}
    for chunk in chunks(pseudonyms, 900):
        found.update(Learner.objects.filter(pseudonym__in=chunk).values_list("pseudonym", "id"))
    return found


@lru_cache(maxsize=65536)
def _pseudonym_cached(key_setting: str, secret: str, namespace: str, identifier: str) -> str:
    return pseudonymise(namespace, identifier)


def pseudonyms_for(events: Iterable[NormalizedEvent]) -> dict[tuple[str, str], str]:
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
