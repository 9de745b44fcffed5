"""Reads of the xAPI Statement resource: one statement, or a filtered page with `more`.

Filters follow xAPI 1.0.3 (Communication 2.1.3): voided statements are left out of
filtered results; `agent` matches actor or object, `related_agents` anywhere;
`activity` the object, `related_activities` anywhere. Pages are ordered by `stored`
(newest first unless `ascending`), then by row id; `more` carries the last row's
position, so a page never repeats or skips a row stored before the first request.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import Count, Max, Min, Q, QuerySet, TextField
from django.db.models.functions import Cast

from analytics.models import LrsClient, Statement

MAX_PAGE = 100


@dataclass
class StatementQuery:
    agent_key: str | None = None
    verb: str | None = None
    activity: str | None = None
    registration: str | None = None
    related_activities: bool = False
    related_agents: bool = False
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = MAX_PAGE
    ascending: bool = False
    # (stored, row id) of the last row of the previous page
    after: tuple[dt.datetime, int] | None = None
    only_client: LrsClient | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def statement_get(*, statement_id: str, voided: bool) -> Statement | None:
    """The statement by id: `voided` False finds only unvoided ones, True only voided ones."""
    return Statement.objects.filter(statement_id=statement_id, voided=voided).first()


def json_list_has(column: str, value: str) -> Q:
    """Rows whose JSON list `column` holds `value`: jsonb containment on PostgreSQL, the
    quoted value in the list's text elsewhere (SQLite has no JSON containment)."""
    if connection.vendor == "postgresql":
        return Q(**{f"{column}__contains": [value]})
    return Q(**{f"{column}_text__contains": json.dumps(value)})


def statements_page(query: StatementQuery) -> tuple[list[Statement], bool]:
    """One page of statements matching `query`, and whether more follow.

    The filters select among all statements, voided ones included; the page holds the
    unvoided ones among them and the statements whose StatementRef object targets one
    (a voiding statement is returned with a filter its voided target matches).
    """
    rows = Statement.objects.filter(voided=False)
    if any(
        v is not None for v in (query.agent_key, query.verb, query.activity, query.registration)
    ):
        matched = _filtered(Statement.objects.all(), query)
        rows = rows.filter(
            Q(pk__in=matched.values("pk")) | Q(target__in=matched.values("statement_id"))
        )
    if query.since is not None:
        rows = rows.filter(stored__gt=query.since)
    if query.until is not None:
        rows = rows.filter(stored__lte=query.until)
    if query.only_client is not None:
        rows = rows.filter(client=query.only_client)
    if query.after is not None:
        stored, pk = query.after
        if query.ascending:
            rows = rows.filter(Q(stored__gt=stored) | Q(stored=stored, pk__gt=pk))
        else:
            rows = rows.filter(Q(stored__lt=stored) | Q(stored=stored, pk__lt=pk))
    order = ["stored", "pk"] if query.ascending else ["-stored", "-pk"]
    page = list(rows.order_by(*order).defer("agents", "related_agents")[: query.limit + 1])
    return page[: query.limit], len(page) > query.limit


def _filtered(rows: QuerySet[Statement], query: StatementQuery) -> QuerySet[Statement]:
    """The statements the agent, verb, activity and registration filters select."""
    if connection.vendor != "postgresql":
        rows = rows.annotate(
            agents_text=Cast("agents", TextField()),
            related_agents_text=Cast("related_agents", TextField()),
            related_activities_text=Cast("related_activities", TextField()),
        )
    if query.agent_key is not None:
        column = "related_agents" if query.related_agents else "agents"
        rows = rows.filter(json_list_has(column, query.agent_key))
    if query.verb is not None:
        rows = rows.filter(verb_id=query.verb)
    if query.activity is not None:
        if query.related_activities:
            rows = rows.filter(json_list_has("related_activities", query.activity))
        else:
            rows = rows.filter(activity_id=query.activity)
    if query.registration is not None:
        rows = rows.filter(registration=query.registration)
    return rows


def statements_about(pseudonym: str) -> QuerySet[Statement]:
    """The stored statements about one learner (their actor, or a member of its Group)."""
    rows = Statement.objects.all()
    if connection.vendor != "postgresql":
        rows = rows.annotate(learners_text=Cast("learners", TextField()))
    return rows.filter(json_list_has("learners", pseudonym))


def unplaced_by_iri(limit: int = 50) -> list[dict[str, Any]]:
    """Held statements per IRI (most first): count, first and last seen (data quality)."""
    return [
        dict(row)
        for row in Statement.objects.filter(course__isnull=True)
        .values("place_iri")
        .annotate(statements=Count("id"), first_seen=Min("stored"), last_seen=Max("stored"))
        .order_by("-statements", "place_iri")[:limit]
    ]
