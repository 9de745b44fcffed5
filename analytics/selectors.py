"""Reads of learner-behaviour data."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncDate

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


# ---------------------------------------------------------------------------
# Dashboard reads. Every function takes already-authorised course ids (from
# eduplatform.core.access) and returns plain rows; each is one query whose size
# grows with days, weeks or activity types, never with learners, except the
# learner feature frame, which is one row per enrolment by design.
# ---------------------------------------------------------------------------

DAY = dt.timedelta(days=1)


def _rows(values: Iterable[Any]) -> list[dict[str, Any]]:
    """A values() queryset as plain dict rows (django-stubs types them as TypedDicts)."""
    return list(values)


class WeekOfRun(Func):
    """floor((date - start) / 7): week 0 holds days 0..6 of a run, earlier days are negative.

    Vendor SQL because Django's date subtraction yields a duration that
    neither backend can floor to whole weeks portably. Integer division
    truncates towards zero, so the day count is shifted positive first
    (+7000 days, far beyond any registration period) to make it a floor.
    """

    arity = 2
    output_field = IntegerField()

    def _sides(self, compiler: Any, connection: Any) -> tuple[str, str, list[Any]]:
        date_sql, date_params = compiler.compile(self.source_expressions[0])
        start_sql, start_params = compiler.compile(self.source_expressions[1])
        return date_sql, start_sql, [*date_params, *start_params]

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        date_sql, start_sql, params = self._sides(compiler, connection)
        return f"((({date_sql} - {start_sql}) + 7000) / 7 - 1000)", tuple(params)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, Any]:
        date_sql, start_sql, params = self._sides(compiler, connection)
        days = f"CAST(julianday({date_sql}) - julianday({start_sql}) AS INTEGER)"
        return f"((({days}) + 7000) / 7 - 1000)", tuple(params)


def week_of_run(day: dt.date, start: dt.date) -> int:
    """Python twin of WeekOfRun."""
    return (day - start).days // 7


def last_activity_date(course_ids: Sequence[int], *, until: dt.date) -> dt.date | None:
    """Latest rollup date on or before ``until`` in these runs (None: no activity)."""
    if not course_ids:
        return None
    return DailyActivity.objects.filter(course_id__in=course_ids, date__lte=until).aggregate(
        last=Max("date")
    )["last"]


def activity_kpis(course_ids: Sequence[int], *, anchor: dt.date) -> dict[str, Any]:
    """Active learners and events in the week ending ``anchor`` and the week before."""
    this_week = Q(date__gt=anchor - 7 * DAY, date__lte=anchor)
    last_week = Q(date__gt=anchor - 14 * DAY, date__lte=anchor - 7 * DAY)
    return DailyActivity.objects.filter(
        course_id__in=course_ids, date__gt=anchor - 14 * DAY, date__lte=anchor
    ).aggregate(
        active_now=Count("learner_id", distinct=True, filter=this_week),
        active_before=Count("learner_id", distinct=True, filter=last_week),
        events_now=Coalesce(Sum("events", filter=this_week), 0),
        events_before=Coalesce(Sum("events", filter=last_week), 0),
    )


def enrollment_kpis(course_ids: Sequence[int], *, anchor: dt.date) -> dict[str, Any]:
    """Enrolments and withdrawals in the week ending ``anchor`` and the week before,
    with the number enrolled at the start of each week (the withdrawal-rate base)."""
    week_start = anchor - 6 * DAY
    prev_start = week_start - 7 * DAY

    def enrolled_at(day: dt.date) -> Q:
        registered = Q(registered_on__lt=day) | Q(registered_on__isnull=True)
        staying = Q(unregistered_on__gte=day) | Q(unregistered_on__isnull=True)
        return registered & staying

    return Enrollment.objects.filter(course_id__in=course_ids).aggregate(
        enrolled_now=Count(
            "id", filter=Q(registered_on__gte=week_start, registered_on__lte=anchor)
        ),
        enrolled_before=Count(
            "id", filter=Q(registered_on__gte=prev_start, registered_on__lt=week_start)
        ),
        withdrawn_now=Count(
            "id", filter=Q(unregistered_on__gte=week_start, unregistered_on__lte=anchor)
        ),
        withdrawn_before=Count(
            "id", filter=Q(unregistered_on__gte=prev_start, unregistered_on__lt=week_start)
        ),
        base_now=Count("id", filter=enrolled_at(week_start)),
        base_before=Count("id", filter=enrolled_at(prev_start)),
    )


def daily_activity(
    course_ids: Sequence[int], *, first: dt.date, last: dt.date
) -> list[dict[str, Any]]:
    """Per day: distinct active learners, events, clicks."""
    return _rows(
        DailyActivity.objects.filter(course_id__in=course_ids, date__gte=first, date__lte=last)
        .values("date")
        .annotate(
            learners=Count("learner_id", distinct=True), events=Sum("events"), clicks=Sum("clicks")
        )
        .order_by("date")
    )


def activity_by_type(
    course_ids: Sequence[int], *, first: dt.date | None = None, last: dt.date | None = None
) -> list[dict[str, Any]]:
    """Per activity type: clicks, events and distinct learners, most clicked first."""
    rows = DailyActivity.objects.filter(course_id__in=course_ids)
    if first is not None:
        rows = rows.filter(date__gte=first)
    if last is not None:
        rows = rows.filter(date__lte=last)
    return _rows(
        rows.values("activity_type")
        .annotate(
            clicks=Sum("clicks"), events=Sum("events"), learners=Count("learner_id", distinct=True)
        )
        .order_by("-clicks", "activity_type")
    )


def weekly_activity(course_ids: Sequence[int], *, last: dt.date) -> list[dict[str, Any]]:
    """Per course run and week of run (from its start): distinct learners, clicks, events."""
    return _rows(
        DailyActivity.objects.filter(course_id__in=course_ids, date__lte=last)
        .annotate(week=WeekOfRun("date", "course__start_date"))
        .values("course_id", "week")
        .annotate(
            learners=Count("learner_id", distinct=True),
            clicks=Sum("clicks"),
            events=Sum("events"),
            last_date=Max("date"),
        )
        .order_by("course_id", "week")
    )


def enrolled_counts(course_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per course run: enrolments and withdrawals."""
    rows = (
        Enrollment.objects.filter(course_id__in=course_ids)
        .values("course_id")
        .annotate(enrolled=Count("id"), withdrawn=Count("id", filter=_withdrawn_q()))
    )
    return {r["course_id"]: {"enrolled": r["enrolled"], "withdrawn": r["withdrawn"]} for r in rows}


def _withdrawn_q(prefix: str = "") -> Q:
    return Q(**{f"{prefix}final_result": Enrollment.Result.WITHDRAWN}) | Q(
        **{f"{prefix}unregistered_on__isnull": False}
    )


def item_usage(course: Course, *, first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """Every content item of the run with its clicks and learners in [first, last].

    The rollup has no item, so this is the one raw-event read of the course
    page: bounded to a date range (PostgreSQL serves it from the BRIN index on
    course and time) and aggregated in the database.
    """
    since = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    until = dt.datetime.combine(last + DAY, dt.time.min, tzinfo=dt.UTC)
    usage: dict[int, dict[str, Any]] = {
        row["item_id"]: row
        for row in _rows(
            LearningEvent.objects.filter(
                course_id=course.pk,
                occurred_at__gte=since,
                occurred_at__lt=until,
                item_id__isnull=False,
            )
            .values("item_id")
            .annotate(clicks=Sum("count"), learners=Count("learner_id", distinct=True))
            .order_by()
        )
    }
    items = ContentItem.objects.filter(course_id=course.pk).values(
        "id", "title", "external_id", "activity_type"
    )
    out = []
    for item in items:
        used = usage.get(item["id"], {})
        out.append(
            {
                **item,
                "clicks": used.get("clicks", 0),
                "learners": used.get("learners", 0),
            }
        )
    return out


SCORE_BINS = tuple(range(0, 100, 10))  # 0-9, 10-19, ..., 90-100


def score_histogram(course: Course) -> list[dict[str, Any]]:
    """Submissions with a score per 10-point bin (90-100 includes 100), with distinct learners."""
    bins = Case(
        *[When(score__lt=low + 10, then=Value(low)) for low in SCORE_BINS[:-1]],
        default=Value(SCORE_BINS[-1]),
        output_field=IntegerField(),
    )
    rows: dict[int, dict[str, Any]] = {
        r["bin"]: r
        for r in _rows(
            Submission.objects.filter(assessment__course_id=course.pk, score__isnull=False)
            .annotate(bin=bins)
            .values("bin")
            .annotate(submissions=Count("id"), learners=Count("learner_id", distinct=True))
            .order_by()
        )
    }
    return [
        {
            "low": low,
            "label": f"{low}-{low + 9 if low < 90 else 100}",
            "submissions": rows.get(low, {}).get("submissions", 0),
            "learners": rows.get(low, {}).get("learners", 0),
        }
        for low in SCORE_BINS
    ]


# -- the at-risk table -------------------------------------------------------

LEARNER_STATUSES = {
    "current": "Not withdrawn",
    "withdrawn": "Withdrawn",
    "all": "All",
}
LEARNER_SORTS = {
    # key -> column label. "Last active" ascending puts never-active learners
    # (NULL) first: they are the most at risk.
    "pseudonym": "Learner",
    "last_active": "Last active",
    "activity_14d": "Activity, last 14 days",
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
    def from_params(cls, params: Mapping[str, str]) -> LearnerTableQuery:
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
        sort = params.get("sort", "activity_14d")
        descending = sort.startswith("-")
        sort = sort.lstrip("-")
        if sort not in LEARNER_SORTS:
            sort, descending = "activity_14d", False
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
        rows = rows.exclude(_withdrawn_q())
    elif query.status == "withdrawn":
        rows = rows.filter(_withdrawn_q())
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
    sorts and pages it in Python (see dashboards.course_page).
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
    with connection.cursor() as cursor:
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
    """
    tables = (LearningEvent, DailyActivity, Enrollment, Submission, ContentItem, ImportRun)
    sql = "SELECT " + ", ".join(
        [
            *(f"(SELECT MAX(id) FROM {t._meta.db_table})" for t in tables),
            f"(SELECT COUNT(*) FROM {Enrollment._meta.db_table} WHERE course_id = %s)",
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [course_id])
        return tuple(cursor.fetchone())


# -- one learner ---------------------------------------------------------------


def learner_enrollments(learner: Learner, course_ids: Sequence[int]) -> list[Enrollment]:
    return list(
        Enrollment.objects.filter(learner_id=learner.pk, course_id__in=course_ids)
        .select_related("course")
        .order_by("course__start_date", "course__code")
    )


def learner_daily_clicks(learner: Learner, course_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Per course and day: the learner's clicks (a few hundred rows at most)."""
    return _rows(
        DailyActivity.objects.filter(learner_id=learner.pk, course_id__in=course_ids)
        .values("course_id", "date")
        .annotate(clicks=Sum("clicks"))
        .order_by("course_id", "date")
    )


def learner_submissions(learner: Learner, course_ids: Sequence[int]) -> list[Submission]:
    return list(
        Submission.objects.filter(learner_id=learner.pk, assessment__course_id__in=course_ids)
        .select_related("assessment__course")
        .order_by("assessment__course__code", "submitted_on", "assessment__external_id")
    )


# -- learner features (segments, data quality) -----------------------------


def learner_feature_rows(
    course_ids: Sequence[int], *, anchor: dt.date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The three reads behind `analytics.dashboards.learner_features`.

    Returns (enrolments, per-learner activity aggregates, per-learner clicks per
    activity type), each aggregated in the database as of ``anchor``.
    """
    recent = Q(date__gt=anchor - 14 * DAY)
    prior = Q(date__gt=anchor - 28 * DAY, date__lte=anchor - 14 * DAY)
    enrolments = _rows(
        Enrollment.objects.filter(course_id__in=course_ids)
        .annotate(withdrawn=ExpressionWrapper(_withdrawn_q(), output_field=BooleanField()))
        .values("course_id", "learner_id", "withdrawn")
        .order_by("course_id", "learner_id")
    )
    activity = DailyActivity.objects.filter(course_id__in=course_ids, date__lte=anchor)
    totals = _rows(
        activity.values("course_id", "learner_id")
        .annotate(
            total_clicks=Sum("clicks"),
            active_days=Count("date", distinct=True),
            last_active=Max("date"),
            recent=Coalesce(Sum("clicks", filter=recent), 0),
            prior=Coalesce(Sum("clicks", filter=prior), 0),
        )
        .order_by()
    )
    by_type = _rows(
        activity.values("course_id", "learner_id", "activity_type")
        .annotate(type_clicks=Sum("clicks"))
        .order_by()
    )
    return enrolments, totals, by_type


# -- data quality ------------------------------------------------------------


def event_volume_by_source(course_ids: Sequence[int], *, since: dt.datetime) -> list[dict]:
    """Per source and day since ``since``: events, clicks and the latest ingestion time."""
    return _rows(
        LearningEvent.objects.filter(course_id__in=course_ids, occurred_at__gte=since)
        .annotate(day=TruncDate("occurred_at"))
        .values("source", "day")
        .annotate(events=Count("id"), clicks=Sum("count"), last_ingested=Max("ingested_at"))
        .order_by("source", "day")
    )


def last_import_by_source(course_ids: Sequence[int]) -> dict[str, dt.datetime]:
    """Latest finished bulk import (OULAD, demo seed) per source."""
    rows = (
        ImportRun.objects.filter(course_id__in=course_ids)
        .values("source")
        .annotate(last=Max("finished_at"))
        .order_by()
    )
    return {r["source"]: r["last"] for r in rows}


def learner_export(*, pseudonym: str) -> dict | None:
    """Everything stored about one learner, JSON-ready (the data subject's access request)."""
    from analytics.models import DailyActivity, Enrollment, Learner, LearningEvent, Submission

    learner = Learner.objects.filter(pseudonym=pseudonym).first()
    if learner is None:
        return None
    enrollments = list(
        Enrollment.objects.filter(learner=learner)
        .select_related("course")
        .values(
            "course__code",
            "registered_on",
            "unregistered_on",
            "final_result",
            "num_prev_attempts",
            "studied_credits",
        )
    )
    course_ids = list(
        Enrollment.objects.filter(learner=learner).values_list("course_id", flat=True)
    )
    from django.apps import apps

    predictions: dict[str, list[dict]] = {}
    for model in apps.get_models():
        if getattr(model, "exported_with_learner", False):
            predictions[model._meta.label] = list(
                model._default_manager.filter(learner=learner).values(
                    *model.export_fields  # type: ignore[attr-defined]
                )
            )
    return {
        "learner": {
            "pseudonym": learner.pseudonym,
            "name": learner.name,
            "email": learner.email,
            "gender": learner.gender,
            "region": learner.region,
            "highest_education": learner.highest_education,
            "imd_band": learner.imd_band,
            "age_band": learner.age_band,
            "disability": learner.disability,
            "created_at": learner.created_at,
        },
        "enrollments": enrollments,
        "submissions": list(
            Submission.objects.filter(learner=learner).values(
                "assessment__course__code",
                "assessment__external_id",
                "submitted_on",
                "score",
                "is_late",
                "is_banked",
            )
        ),
        "events": list(
            LearningEvent.objects.filter(learner=learner, course_id__in=course_ids)
            .order_by("occurred_at", "id")
            .values(
                "course__code",
                "item__external_id",
                "verb",
                "occurred_at",
                "count",
                "duration_seconds",
                "score",
                "source",
                "client_event_id",
            )
        ),
        "daily_activity": list(
            DailyActivity.objects.filter(course_id__in=course_ids, learner=learner)
            .order_by("date")
            .values("course__code", "date", "activity_type", "events", "clicks", "active_seconds")
        ),
        "predictions": predictions,
    }
