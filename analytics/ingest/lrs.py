"""The xAPI Statement resource's writes: store, void, place held statements. All-or-nothing.

`statements_store` validates every statement (statement_rules.py), fills `id`, `stored`,
`timestamp`, `authority` and `version`, refuses an id stored before with other content
(`StatementConflict`, 409; the same content is a no-op), keeps each statement (placed on a
known course run, or held as unplaced), voids the targets of voiding statements and
withdraws their events, and derives learner events from the placed ones
(services.events_ingest). `statement_place` places the statements held on an IRI.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from analytics.importers import pg_bulk
from analytics.ingest.lookups import item_courses_by_iri
from analytics.ingest.services import events_ingest
from analytics.ingest.statement_rules import statement_errors
from analytics.ingest.validation import NormalizedEvent, ValidationFailure
from analytics.ingest.xapi import course_of, statement_events, statement_facts
from analytics.models import (
    Course,
    DailyActivity,
    EventSource,
    LearningEvent,
    LrsClient,
    Statement,
    StatementAttachment,
)
from analytics.statement_privacy import (
    identity_pseudonym,
    learner_pseudonym,
    opened,
    sealed,
)

# Properties the LRS sets whatever the sender sent: left out when comparing a re-sent
# statement with the stored one.
LRS_SET = ("stored", "authority")


class StatementConflict(Exception):
    """A statement id already stored with different content (409)."""

    def __init__(self, statement_id: str) -> None:
        super().__init__(statement_id)
        self.statement_id = statement_id


class PlacementRefused(Exception):
    """The course run already has another IRI, or another run has this one."""


@dataclass(frozen=True)
class StoreResult:
    ids: list[str]
    stored: int
    unplaced: int
    events: int


def authority_of(client: LrsClient | None, username: str) -> dict[str, Any]:
    """The Agent the platform vouches for: the LRS client, or the token's user."""
    name = client.key if client is not None else username
    return {
        "objectType": "Agent",
        "name": client.name if client is not None else username,
        "account": {"homePage": "urn:eduplatform:lrs-client", "name": name},
    }


def _validated(statements: list[Any]) -> None:
    errors: list[dict[str, list[str]] | None] = []
    seen: set[str] = set()
    for statement in statements:
        found = statement_errors(statement)
        sid = statement.get("id") if isinstance(statement, dict) else None
        if isinstance(sid, str) and not found:
            if sid.lower() in seen:
                found.setdefault("id", []).append("Repeated statement id in this request.")
            seen.add(sid.lower())
        errors.append(found or None)
    if any(errors):
        raise ValidationFailure(errors=errors, message="invalid statements")


def normalised(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement with each context activity list as a list (the spec's canonical form,
    which GET answers), in the statement and in a SubStatement object."""
    data = dict(statement)
    for part, key in ((data, "context"), (data.get("object"), "context")):
        if not isinstance(part, dict) or not isinstance(part.get(key), dict):
            continue
        activities = part[key].get("contextActivities")
        if isinstance(activities, dict) and any(isinstance(v, dict) for v in activities.values()):
            fixed = {k: [v] if isinstance(v, dict) else v for k, v in activities.items()}
            if part is data:
                data[key] = {**data[key], "contextActivities": fixed}
            else:
                data["object"] = {**part, key: {**part[key], "contextActivities": fixed}}
    return data


def _comparable(data: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in skip}


def _resent(
    prepared: list[tuple[dict[str, Any], list[str]]],
) -> list[tuple[dict[str, Any], list[str]]]:
    """The statements not stored yet; raise StatementConflict for an id stored with other
    content (the same content again is a no-op)."""
    if not prepared:
        return []
    existing = {
        str(row.statement_id): row
        for row in Statement.objects.filter(statement_id__in=[d["id"] for d, _ in prepared])
    }
    new: list[tuple[dict[str, Any], list[str]]] = []
    for data, filled in prepared:
        row = existing.get(data["id"])
        if row is None:
            new.append((data, filled))
        # What either side left to the LRS is not compared (a re-sent statement without
        # its timestamp is the same statement).
        elif _comparable(opened(row.data), skip := {"id", *LRS_SET, *row.filled, *filled}) != (
            _comparable(data, skip)
        ):
            raise StatementConflict(data["id"])
    return new


@transaction.atomic
def statements_store(
    *,
    statements: list[Any],
    client: LrsClient | None,
    authority: dict[str, Any],
    now: dt.datetime | None = None,
    attachments: dict[str, tuple[str, bytes]] | None = None,
) -> StoreResult:
    """Store valid statements (raise ValidationFailure or StatementConflict, storing nothing)
    and the attachments' bytes sent with them (by SHA-2, once)."""
    if not statements:
        raise ValidationFailure(message="No statements.")
    _validated(statements)
    now = now or timezone.now()
    stamp = now.isoformat()
    prepared: list[tuple[dict[str, Any], list[str]]] = []
    for sent in statements:
        data = normalised(sent)
        filled = [k for k in ("id", "timestamp", "version") if k not in sent]
        data["id"] = str(sent["id"]).lower() if "id" in sent else str(uuid.uuid4())
        data.setdefault("timestamp", stamp)
        data.setdefault("version", "1.0.0")
        data["stored"], data["authority"] = stamp, authority
        prepared.append((data, filled))
    if connection.vendor == "postgresql":
        # The stored-id check rides on the insert (ON CONFLICT DO NOTHING RETURNING): only
        # the ids it did not insert are read back and compared, usually none.
        rows, events = _rows(prepared, client, now)
        inserted = _pg_insert(rows)
        _resent([p for p in prepared if p[0]["id"] not in inserted])
        rows = [row for row in rows if row["statement_id"] in inserted]
        events = [e for e in events if e.client_event_id.split(":")[0] in inserted]
    else:
        rows, events = _rows(_resent(prepared), client, now)
        if rows:
            _sqlite_insert(rows)
    if attachments:
        StatementAttachment.objects.bulk_create(
            [
                StatementAttachment(sha2=sha2, content_type=kind, length=len(data), content=data)
                for sha2, (kind, data) in attachments.items()
            ],
            ignore_conflicts=True,
        )
    targets = [str(row["voids"]) for row in rows if row["voids"] is not None]
    if targets:
        _void(targets)
        voided = {str(t) for t in targets}
        events = [e for e in events if e.client_event_id.split(":")[0] not in voided]
    created = events_ingest(events=events, source=EventSource.XAPI).created if events else 0
    return StoreResult(
        ids=[d["id"] for d, _ in prepared],
        stored=len(rows),
        unplaced=sum(1 for row in rows if row["course_id"] is None),
        events=created,
    )


_PG_INSERT = """
INSERT INTO analytics_statement
    (statement_id, data, filled, stored, timestamp, voided, verb_id, activity_id, registration,
     actor_key, agents, related_agents, related_activities, learners, voids, target, client_id,
     course_id, place_iri, placed_at)
SELECT r.statement_id, r.data, r.filled, r.stored, r.timestamp, false, r.verb_id, r.activity_id,
       r.registration, r.actor_key, r.agents, r.related_agents, r.related_activities, r.learners,
       r.voids, r.target, r.client_id, r.course_id, r.place_iri, r.placed_at
FROM jsonb_to_recordset(%s::jsonb) AS r(
    statement_id uuid, data jsonb, filled jsonb, stored timestamptz, timestamp timestamptz,
    verb_id text, activity_id text, registration uuid, actor_key text, agents jsonb,
    related_agents jsonb, related_activities jsonb, learners jsonb, voids uuid, target uuid,
    client_id bigint,
    course_id bigint, place_iri text, placed_at timestamptz)
ON CONFLICT (statement_id) DO NOTHING
RETURNING statement_id
"""


def _sqlite_insert(rows: list[dict[str, Any]]) -> None:
    """Store the rows (SQLite); a concurrent request that stored one of the ids first is a
    conflict."""
    try:
        with transaction.atomic():
            Statement.objects.bulk_create([Statement(**row) for row in rows])
    except IntegrityError as exc:
        raise StatementConflict(str(rows[0]["statement_id"])) from exc


def _pg_insert(rows: list[dict[str, Any]]) -> set[str]:
    """Store the rows whose id is not stored yet; return the ids inserted.

    The rows travel as one JSON parameter bound server-side: Django's bulk_create quotes
    every value into the SQL text in Python (about 1 ms per statement) and builds a model
    instance per row.
    """
    payload = json.dumps(rows, default=_json_value, allow_nan=False)
    with pg_bulk.raw_cursor() as cursor:
        cursor.execute(_PG_INSERT, [payload])
        return {str(r[0]) for r in cursor.fetchall()}


def _json_value(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(type(value))


def _rows(
    new: list[tuple[dict[str, Any], list[str]]], client: LrsClient | None, now: dt.datetime
) -> tuple[list[dict[str, Any]], list[NormalizedEvent]]:
    """Statement rows as column values (placed when their course is known) and the placed
    ones' events."""
    facts = [statement_facts(data) for data, _ in new]
    candidates = {iri for f in facts for iri in f.candidates}
    courses, items = _places(candidates, {f.activity_id for f in facts if f.activity_id})
    rows, events = [], []
    for (data, filled), fact in zip(new, facts, strict=True):
        course_iri = course_of(fact, set(courses), items)
        course_id = courses.get(course_iri) if course_iri else None
        timestamp = parse_datetime(data["timestamp"]) or now
        rows.append(
            {
                "statement_id": data["id"],
                "data": sealed(data),
                "filled": filled,
                "stored": now,
                "timestamp": timestamp,
                "verb_id": fact.verb_id,
                "activity_id": fact.activity_id,
                "registration": fact.registration,
                "actor_key": identity_pseudonym(fact.actor_key),
                "agents": [identity_pseudonym(k) for k in fact.agents],
                "related_agents": [identity_pseudonym(k) for k in fact.related_agents],
                "related_activities": fact.related_activities,
                "learners": sorted({learner_pseudonym(*identity) for identity in fact.learners}),
                "voids": fact.voids,
                "target": fact.target,
                "client_id": client.pk if client is not None else None,
                "course_id": course_id,
                "place_iri": "" if course_id else (fact.candidates[0] if fact.candidates else ""),
                "placed_at": now if course_id else None,
            }
        )
        if course_id is not None and course_iri is not None:
            # A statement dated in the future is an event of the moment it was stored.
            at = min(timestamp, now)
            events += statement_events(data, course_iri=course_iri, occurred_at=at)
    return rows, events


_PG_PLACES = """
WITH items AS (
    SELECT i.external_id, c.iri FROM analytics_contentitem i
    JOIN analytics_course c ON c.id = i.course_id
    WHERE i.external_id = ANY(%(activities)s::text[]) AND c.iri IS NOT NULL
)
SELECT external_id, iri, NULL FROM items
UNION ALL
SELECT NULL, iri, id FROM analytics_course
WHERE iri = ANY(%(candidates)s::text[]) OR iri IN (SELECT iri FROM items)
"""


def _places(candidates: set[str], activities: set[str]) -> tuple[dict[str, int], dict[str, str]]:
    """({course IRI: run id} of the known candidates and item courses, {activity id: course
    IRI} of the activities known in exactly one run with an IRI): one round trip on
    PostgreSQL."""
    if connection.vendor != "postgresql":
        items = item_courses_by_iri(activities)
        known = Course.objects.filter(iri__in=(candidates | set(items.values())) or [""])
        return {str(iri): pk for iri, pk in known.values_list("iri", "pk")}, items
    with pg_bulk.raw_cursor() as cursor:
        cursor.execute(
            _PG_PLACES, {"activities": sorted(activities), "candidates": sorted(candidates)}
        )
        found = cursor.fetchall()
    courses = {iri: pk for external_id, iri, pk in found if external_id is None}
    by_item: dict[str, set[str]] = defaultdict(set)
    for external_id, iri, _ in found:
        if external_id is not None:
            by_item[external_id].add(iri)
    return courses, {ext: next(iter(iris)) for ext, iris in by_item.items() if len(iris) == 1}


def _void(targets: list[str]) -> None:
    """Mark the targets voided (not voiding statements: those cannot be voided) and
    withdraw their events."""
    voidable = Statement.objects.filter(statement_id__in=targets, voids__isnull=True)
    ids = [str(s) for s in voidable.values_list("statement_id", flat=True)]
    voidable.update(voided=True)
    if ids:
        events_withdraw(statement_ids=ids)


def events_withdraw(*, statement_ids: list[str]) -> int:
    """Delete the learner events of these statements and take them out of the rollup."""
    match = Q()
    for sid in statement_ids:
        match |= Q(client_event_id=sid) | Q(client_event_id__startswith=f"{sid}:")
    events = LearningEvent.objects.filter(match, source=EventSource.XAPI)
    totals: dict[tuple[int, int, dt.date, str], list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for course_id, learner_id, at, kind, verb, count, seconds in events.values_list(
        "course_id", "learner_id", "occurred_at", "item__activity_type", "verb", "count",
        "duration_seconds",
    ):  # fmt: skip
        total = totals[(course_id, learner_id, at.astimezone(dt.UTC).date(), kind or verb)]
        total[0] += 1
        total[1] += count
        total[2] += seconds or 0.0
    deleted, _ = events.delete()
    for (course_id, learner_id, day, kind), (n, clicks, seconds) in sorted(totals.items()):
        rollup = DailyActivity.objects.filter(
            course_id=course_id, learner_id=learner_id, date=day, activity_type=kind
        )
        rollup.update(
            events=F("events") - n, clicks=F("clicks") - clicks,
            active_seconds=F("active_seconds") - seconds,
        )  # fmt: skip
        rollup.filter(events__lte=0).delete()
    return deleted


@transaction.atomic
def statement_place(*, iri: str, course: Course, now: dt.datetime | None = None) -> int:
    """Map `iri` to the course run and turn the statements held on it into events.

    Idempotent: placed statements are no longer held, and event client ids are unique.
    Returns how many statements were placed.
    """
    course = Course.objects.select_for_update().get(pk=course.pk)
    if course.iri not in (None, "", iri):
        raise PlacementRefused(course.iri)
    if course.iri != iri:
        if Course.objects.filter(iri=iri).exclude(pk=course.pk).exists():
            raise PlacementRefused(iri)
        course.iri = iri
        course.save(update_fields=["iri"])
    held = list(
        Statement.objects.select_for_update()
        .filter(course__isnull=True, place_iri=iri)
        .order_by("pk")
    )
    events: list[NormalizedEvent] = []
    for row in held:
        if not row.voided:
            data = opened(copy.deepcopy(row.data))
            at = min(row.timestamp, row.stored)
            events += statement_events(data, course_iri=iri, occurred_at=at)
    if events:
        events_ingest(events=events, source=EventSource.XAPI)
    Statement.objects.filter(pk__in=[r.pk for r in held]).update(
        course=course, placed_at=now or timezone.now()
    )
    return len(held)
