"""Reads behind the dashboard pages: rollup aggregates per day, week, type and run.

Every function takes already-authorised course ids (from eduplatform.core.access)
and returns plain rows; each is one query whose size grows with days, weeks or
activity types, never with learners, except the learner feature frame, which
is one row per enrolment by design.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import (
    BooleanField,
    Case,
    Count,
    ExpressionWrapper,
    Func,
    IntegerField,
    Max,
    Q,
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
    LearningEvent,
    Submission,
)

DAY = dt.timedelta(days=1)


def value_rows(values: Iterable[Any]) -> list[dict[str, Any]]:
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
    return value_rows(
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
    return value_rows(
        rows.values("activity_type")
        .annotate(
            clicks=Sum("clicks"), events=Sum("events"), learners=Count("learner_id", distinct=True)
        )
        .order_by("-clicks", "activity_type")
    )


def weekly_activity(course_ids: Sequence[int], *, last: dt.date) -> list[dict[str, Any]]:
    """Per course run and week of run (from its start): distinct learners, clicks, events."""
    return value_rows(
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
        .annotate(enrolled=Count("id"), withdrawn=Count("id", filter=withdrawn_q()))
    )
    return {r["course_id"]: {"enrolled": r["enrolled"], "withdrawn": r["withdrawn"]} for r in rows}


def withdrawn_q(prefix: str = "") -> Q:
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
        for row in value_rows(
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
        for r in value_rows(
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


# -- learner features (segments, data quality) -----------------------------


def learner_feature_rows(
    course_ids: Sequence[int], *, anchor: dt.date
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The three reads behind `analytics.pages.features.learner_features`.

    Returns (enrolments, per-learner activity aggregates, per-learner clicks per
    activity type), each aggregated in the database as of ``anchor``.
    """
    recent = Q(date__gt=anchor - 14 * DAY)
    prior = Q(date__gt=anchor - 28 * DAY, date__lte=anchor - 14 * DAY)
    enrolments = value_rows(
        Enrollment.objects.filter(course_id__in=course_ids)
        .annotate(withdrawn=ExpressionWrapper(withdrawn_q(), output_field=BooleanField()))
        .values("course_id", "learner_id", "withdrawn")
        .order_by("course_id", "learner_id")
    )
    activity = DailyActivity.objects.filter(course_id__in=course_ids, date__lte=anchor)
    totals = value_rows(
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
    by_type = value_rows(
        activity.values("course_id", "learner_id", "activity_type")
        .annotate(type_clicks=Sum("clicks"))
        .order_by()
    )
    return enrolments, totals, by_type


# -- data quality ------------------------------------------------------------


def event_volume_by_source(course_ids: Sequence[int], *, since: dt.datetime) -> list[dict]:
    """Per source and day since ``since``: events, clicks and the latest ingestion time."""
    return value_rows(
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
