"""Reads of the course page's at-risk table: its query, its rows, and the data version."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from analytics.models import (
    ContentItem,
    Course,
    DailyActivity,
    Enrollment,
    ImportRun,
    Learner,
    LearningEvent,
    Submission,
)
from analytics.selectors.activity import DAY, withdrawn_q
from eduplatform.core.db_router import read_connection

LEARNER_STATUSES = {
    "current": _("Not withdrawn"),
    "withdrawn": _("Withdrawn"),
    "all": _("All"),
}
LEARNER_SORTS = {
    # key -> column label. "Last active" ascending puts never-active learners
    # (NULL) first: they are the most at risk.
    "pseudonym": _("Learner"),
    "last_active": _("Last active"),
    "activity_14d": _("Activity, last 14 days"),
}
INACTIVITY_CHOICES = (7, 14, 28)


@dataclass(frozen=True)
class LearnerTableQuery:
    """Validated filters and sort of the at-risk table (unknown values fall back to defaults)."""

    search: str = ""
    status: str = "current"
    inactive_days: int | None = None
    sort: str = "activity_14d"
    descending: bool = False

    @classmethod
    def from_params(
        cls,
        params: Mapping[str, str],
        *,
        orders: Collection[str] = (),
        default: str = "activity_14d",
    ) -> LearnerTableQuery:
        """`orders`: the registered row orders (analytics.pages.panels) also accepted as
        sorts; `default`: the sort without a ``sort`` parameter (``-risk``: riskiest first)."""
        search = params.get("q", "").strip()[:32]
        status = params.get("status", "current")
        if status not in LEARNER_STATUSES:
            status = "current"
        try:
            inactive = int(params.get("inactive", ""))
        except ValueError:
            inactive = None
        if inactive not in INACTIVITY_CHOICES:
            inactive = None
        sort = params.get("sort") or default
        descending = sort.startswith("-")
        sort = sort.lstrip("-")
        if sort not in LEARNER_SORTS and sort not in orders:
            sort, descending = default.lstrip("-"), default.startswith("-")
        return cls(
            search=search,
            status=status,
            inactive_days=inactive,
            sort=sort,
            descending=descending,
        )

    @property
    def sort_param(self) -> str:
        return f"-{self.sort}" if self.descending else self.sort

    def params(self, **override: Any) -> dict[str, str]:
        """Query-string parameters reproducing this query (for links and the CSV export)."""
        values = {
            "q": self.search,
            "status": self.status,
            "inactive": str(self.inactive_days or ""),
            "sort": self.sort_param,
        }
        values.update({k: str(v) for k, v in override.items()})
        return {k: v for k, v in values.items() if v}


def course_learner_rows(
    course: Course, *, anchor: dt.date, query: LearnerTableQuery
) -> QuerySet[Any, Any]:
    """Enrolments of the run as rows: pseudonym, status, last active, clicks in the last 14 days.

    Lazy: the paginator counts and slices it, the CSV export streams it. The two
    per-learner numbers are correlated subqueries on the rollup's unique index
    (course, learner, date, ...), so the cost follows the page, not the run.
    """
    own_rows = DailyActivity.objects.filter(
        course_id=OuterRef("course_id"), learner_id=OuterRef("learner_id"), date__lte=anchor
    )
    last_active = Subquery(own_rows.order_by("-date").values("date")[:1])
    recent = Subquery(
        own_rows.filter(date__gt=anchor - 14 * DAY)
        .values("learner_id")
        .annotate(total=Sum("clicks"))
        .values("total")[:1],
        output_field=IntegerField(),
    )
    rows = Enrollment.objects.filter(course_id=course.pk).annotate(
        pseudonym=F("learner__pseudonym"),
        last_active=last_active,
        activity_14d=Coalesce(recent, Value(0)),
    )
    if query.search:
        rows = rows.filter(learner__pseudonym__icontains=query.search)
    if query.status == "current":
        rows = rows.exclude(withdrawn_q())
    elif query.status == "withdrawn":
        rows = rows.filter(withdrawn_q())
    if query.inactive_days:
        cutoff = anchor - query.inactive_days * DAY
        rows = rows.filter(Q(last_active__lte=cutoff) | Q(last_active__isnull=True))
    key = F(query.sort)
    primary = key.desc(nulls_last=True) if query.descending else key.asc(nulls_first=True)
    return rows.order_by(primary, "learner__pseudonym").values(
        "learner_id",
        "pseudonym",
        "registered_on",
        "unregistered_on",
        "final_result",
        "last_active",
        "activity_14d",
    )


def course_learner_table(course: Course, *, anchor: dt.date) -> list[dict[str, Any]]:
    """Every enrolment of the run with the at-risk table's columns, ordered by pseudonym.

    The same rows as `course_learner_rows` without filters, in one query: the
    rollup is aggregated per learner once (a join, not two correlated
    subqueries per enrolment). The course page caches the result and filters,
    sorts and pages it in Python (see analytics.pages.course.course_page).
    """
    sql = (
        "SELECT e.learner_id, l.pseudonym, e.registered_on, e.unregistered_on, e.final_result, "
        "a.last_active, COALESCE(a.recent, 0) "
        f"FROM {Enrollment._meta.db_table} e "
        f"JOIN {Learner._meta.db_table} l ON l.id = e.learner_id "
        "LEFT JOIN (SELECT learner_id, MAX(date) AS last_active, "
        "SUM(CASE WHEN date > %s THEN clicks ELSE 0 END) AS recent "
        f"FROM {DailyActivity._meta.db_table} WHERE course_id = %s AND date <= %s "
        "GROUP BY learner_id) a ON a.learner_id = e.learner_id "
        "WHERE e.course_id = %s ORDER BY l.pseudonym"
    )
    with read_connection().cursor() as cursor:
        cursor.execute(sql, [anchor - 14 * DAY, course.pk, anchor, course.pk])
        fetched = cursor.fetchall()
    rows = []
    for learner_id, pseudonym, registered, unregistered, result, last_active, recent in fetched:
        if isinstance(last_active, str):  # SQLite returns MAX(date) as text
            last_active = dt.date.fromisoformat(last_active)
        rows.append(
            {
                "learner_id": learner_id,
                "pseudonym": pseudonym,
                "registered_on": registered,
                "unregistered_on": unregistered,
                "final_result": result,
                "last_active": last_active,
                "activity_14d": int(recent),
            }
        )
    return rows


def _is_withdrawn(row: Mapping[str, Any]) -> bool:
    return row["final_result"] == Enrollment.Result.WITHDRAWN or row["unregistered_on"] is not None


def filter_learner_table(
    rows: Sequence[Mapping[str, Any]], *, anchor: dt.date, query: LearnerTableQuery
) -> list[Mapping[str, Any]]:
    """`course_learner_rows`' filters and order applied to `course_learner_table` rows.

    The rows come ordered by pseudonym and Python's sort is stable, so ties
    keep the pseudonym order, as the SQL's second sort key does. NULLs
    (never active) sort first ascending and last descending, as there.
    """
    out: Iterable[Mapping[str, Any]] = rows
    if query.search:
        needle = query.search.casefold()
        out = (r for r in out if needle in r["pseudonym"].casefold())
    if query.status == "current":
        out = (r for r in out if not _is_withdrawn(r))
    elif query.status == "withdrawn":
        out = (r for r in out if _is_withdrawn(r))
    if query.inactive_days:
        cutoff = anchor - query.inactive_days * DAY
        out = (r for r in out if r["last_active"] is None or r["last_active"] <= cutoff)
    key = query.sort
    return sorted(
        out,
        key=lambda r: (r[key] is not None, r[key] if r[key] is not None else 0),
        reverse=query.descending,
    )


def data_version(course_id: int) -> tuple[Any, ...]:
    """A fingerprint of the behaviour data a course page reads: one cheap query.

    The newest row of each table (each MAX(id) reads one end of a primary
    key): new events, rollup rows (ingestion inserts events with them; a
    rebuild re-inserts), enrolments, submissions, items and imports change
    it. Deletions do not move a maximum, so the run's enrolment count (an
    index-only count on the (course, learner) key) is part of it: an erased
    learner leaves the run's enrolments. In-place edits (admin) are not
    seen; caches keyed by this also expire.

    Read where the rows it keys are read (the replica inside a page's scope,
    eduplatform/core/db_router.py): a version from the primary over rows from a
    lagging replica would cache old rows under the new version.
    """
    tables = (LearningEvent, DailyActivity, Enrollment, Submission, ContentItem, ImportRun)
    sql = "SELECT " + ", ".join(
        [
            *(f"(SELECT MAX(id) FROM {t._meta.db_table})" for t in tables),
            f"(SELECT COUNT(*) FROM {Enrollment._meta.db_table} WHERE course_id = %s)",
        ]
    )
    with read_connection().cursor() as cursor:
        cursor.execute(sql, [course_id])
        return tuple(cursor.fetchone())
